"""Per user, not per socket: a user holds at most WS_SOCKETS_PER_USER live sockets (parallel
opens included), and more sockets on a worker do not buy more frames."""

import asyncio
import json

import pytest
import websockets

from chat.tests.conftest import login_cookie
from testing.processes import ChatStack

SOCKETS = 3


@pytest.fixture(scope="module")
def limited(tmp_path_factory, redis_server):
    stack = ChatStack(
        tmp_path_factory.mktemp("limits"),
        redis_server.url,
        WS_SOCKETS_PER_USER=str(SOCKETS),
        WS_RATE_PER_SECOND="1000",
        WS_RATE_BURST="1000",
        WS_USER_RATE_PER_SECOND="5",
        WS_USER_RATE_BURST="20",
    )
    stack.seed("frank", "grace")
    yield stack
    stack.stop()


async def connect(stack, cookie):
    return await websockets.connect(
        f"{stack.workers[0].ws_url}/ws/chat/",
        origin=stack.url,
        additional_headers={"Cookie": cookie},
    )


async def outcome(socket) -> str:
    """ "open" when the socket stays up (it answers a ping), else the refusal it got."""
    try:
        await socket.send(json.dumps({"type": "ping", "id": "probe"}))
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if frame.get("code") == "too_many_connections":
                await asyncio.wait_for(socket.recv(), 10)  # the close follows
            if frame.get("id") == "probe":
                return "open"
    except websockets.ConnectionClosed as closed:
        return f"closed {closed.rcvd.code if closed.rcvd else None}"


def test_parallel_opens_get_at_most_the_cap_and_the_rest_4009(limited):
    cookie = login_cookie(limited.url, "frank", limited.password("frank"))

    async def scenario():
        sockets = await asyncio.gather(*(connect(limited, cookie) for _ in range(8)))
        results = await asyncio.gather(*(outcome(s) for s in sockets))
        opened = [s for s, r in zip(sockets, results, strict=True) if r == "open"]
        await opened[0].close()
        await asyncio.sleep(0.3)
        again = await outcome(await connect(limited, cookie))  # room for one more now
        for socket in sockets:
            await socket.close()
        return results, again

    results, again = asyncio.run(scenario())
    assert sorted(results) == ["closed 4009"] * 5 + ["open"] * SOCKETS
    assert again == "open"


def test_more_sockets_do_not_buy_more_frames(limited):
    cookie = login_cookie(limited.url, "grace", limited.password("grace"))

    async def scenario():
        sockets = [await connect(limited, cookie) for _ in range(SOCKETS)]
        for index, socket in enumerate(sockets):
            for n in range(20):
                await socket.send(json.dumps({"type": "ping", "id": f"{index}-{n}"}))
        answers = []
        for socket in sockets:
            replies = 0
            while replies < 20:  # replies carry our ids; events (presence) carry none
                frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if frame.get("id") is not None:
                    answers.append(frame)
                    replies += 1
            await socket.close()
        return answers

    answers = asyncio.run(scenario())
    pongs = [a for a in answers if a["type"] == "pong"]
    limited_ = [a for a in answers if a.get("code") == "rate_limited"]
    # 60 pings, each socket's own budget (1000/s) would pass them all; the user's (burst 20,
    # 5/s) passes about 20 in the second this takes.
    assert 20 <= len(pongs) <= 30, len(pongs)
    assert len(pongs) + len(limited_) == 60
