"""Bad frames get an `error` with a stable code; the socket and everyone else carry on."""

import asyncio
import json

import pytest
import websockets

from chat.tests.conftest import login_cookie


@pytest.fixture(scope="module")
def frank(stack):
    stack.seed("frank", "grace")
    return login_cookie(stack.url, "frank", stack.password("frank"))


async def open_socket(stack, cookie):
    return await websockets.connect(
        f"{stack.workers[0].ws_url}/ws/chat/",
        origin=stack.url,
        additional_headers={"Cookie": cookie},
    )


async def reply_to(socket, frame, *, raw=None, request_id=None):
    await socket.send(raw if raw is not None else json.dumps(frame))
    while True:
        answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if request_id is None and answer["type"] == "error":
            return answer
        if request_id is not None and answer.get("id") == request_id:
            return answer


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (json.dumps({"type": "launch.missiles", "id": "x"}), "unknown_type"),
        (json.dumps({"id": "x"}), "unknown_type"),
        (json.dumps({"type": "invite.send", "id": "x", "conversation": "c"}), "invalid_frame"),
        (json.dumps({"type": "users.search", "id": "x", "page": "one"}), "invalid_frame"),
        (json.dumps({"type": "ping", "id": "x", "extra": True}), "invalid_frame"),
        (json.dumps({"type": "ping", "id": "x", "pad": "a" * 300_000}), "frame_too_large"),
    ],
    ids=[
        "invalid-json",
        "not-an-object",
        "unknown-type",
        "missing-type",
        "missing-fields",
        "wrong-type",
        "extra-field",
        "over-size-limit",
    ],
)
def test_a_bad_frame_gets_an_error_and_the_socket_carries_on(stack, frank, raw, code):
    async def exchange():
        socket = await open_socket(stack, frank)
        error = await reply_to(socket, None, raw=raw)
        pong = await reply_to(socket, {"type": "ping", "id": "after"}, request_id="after")
        await socket.close()
        return error, pong

    error, pong = asyncio.run(exchange())
    assert error["type"] == "error" and error["code"] == code
    assert error["message"] and "a" * 50 not in error["message"]
    assert pong["type"] == "pong"


def test_a_flood_is_throttled_then_closed_with_4008(stack, frank):
    async def flood():
        socket = await open_socket(stack, frank)
        frames = [json.dumps({"type": "ping", "id": str(n)}) for n in range(400)]
        for frame in frames:
            await socket.send(frame)
        codes = []
        try:
            while True:
                answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
                codes.append(answer.get("code") or answer["type"])
        except websockets.ConnectionClosed as closed:
            return codes, closed.rcvd.code

    codes, close_code = asyncio.run(flood())
    assert "pong" in codes and "rate_limited" in codes
    assert close_code == 4008


def test_others_are_unaffected_by_a_flooding_socket(stack, frank):
    grace = login_cookie(stack.url, "grace", stack.password("grace"))

    async def both():
        flooder, calm = await open_socket(stack, frank), await open_socket(stack, grace)
        for n in range(200):
            await flooder.send(json.dumps({"type": "ping", "id": str(n)}))
        answer = await reply_to(calm, {"type": "ping", "id": "calm"}, request_id="calm")
        await flooder.close()
        await calm.close()
        return answer

    assert asyncio.run(both())["type"] == "pong"
