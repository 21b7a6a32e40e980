"""Bad frames get an `error` with a stable code; the socket and everyone else carry on."""

import asyncio
import contextlib
import json

import pytest
import websockets

from chat.tests.conftest import login_cookie
from testing.processes import ChatStack

CONVERSATION = "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b"
STATEMENT = {
    "action": "leave",
    "subject": "frank",
    "actor": "frank",
    "actor_serial": "0a",
    "roster_epoch": 1,
    "nonce": "AAAAAAAAAAAAAAAAAAAAAA==",
    "signature": "AAAA",
    "subject_signing_sha256": "",
    "subject_encryption_sha256": "",
}
LEAVE = {"type": "conversation.leave", "id": "x", "conversation": CONVERSATION}
REPORT = {"type": "epoch.report", "id": "x", "conversation": CONVERSATION, "epoch": 1}
MESSAGE = {
    "type": "message.send",
    "id": "x",
    "conversation": CONVERSATION,
    "client_id": CONVERSATION,
    "epoch": 1,
    "sequence": 1,
    "timestamp_ms": 1,
    "sender_serial": "0a",
    "iv": "AAAAAAAAAAAAAAAA",
    "ciphertext": "AAAA",
    "signature": "AAAA",
}


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
        (json.dumps({**MESSAGE, "sequence": 2**53}), "invalid_frame"),
        (json.dumps({**REPORT, "epoch": 0}), "invalid_frame"),
        (json.dumps({**LEAVE, "statement": {**STATEMENT, "action": "join"}}), "invalid_frame"),
        (json.dumps({**LEAVE, "statement": {**STATEMENT, "nonce": "AAAA"}}), "invalid_frame"),
        (json.dumps({**LEAVE, "statement": {**STATEMENT, "extra": 1}}), "invalid_frame"),
        (json.dumps(REPORT), "not_member"),
        (json.dumps({**LEAVE, "statement": STATEMENT}), "not_member"),
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
        "integer-beyond-javascript",
        "epoch-zero",
        "unknown-statement-action",
        "short-nonce",
        "statement-extra-field",
        "report-of-a-stranger",
        "signed-leave-of-a-stranger",
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


def test_a_refusal_for_flooding_carries_the_request_id(stack, frank):
    async def flood():
        socket = await open_socket(stack, frank)
        for n in range(90):
            await socket.send(json.dumps({"type": "ping", "id": f"p{n}"}))
        answers = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in range(90)]
        await socket.close()
        return answers

    answers = asyncio.run(flood())
    limited = [a for a in answers if a.get("code") == "rate_limited"]
    assert limited and all(a["id"] and a["id"].startswith("p") for a in limited)
    assert len({a["id"] for a in answers}) == 90  # every request got its own reply


def test_frames_queued_behind_a_flood_close_are_dropped(tmp_path, redis_server):
    # A bucket that refills fast: after the close, many queued frames would pass it, so
    # only the socket's closing state can keep them from being fanned out.
    fast = ChatStack(
        tmp_path,
        redis_server.url,
        WS_RATE_PER_SECOND="150",
        WS_RATE_BURST="10",
        WS_RATE_STRIKES="5",
    )
    try:
        fast.seed("frank", "grace")
        frank_cookie = login_cookie(fast.url, "frank", fast.password("frank"))
        grace_cookie = login_cookie(fast.url, "grace", fast.password("grace"))

        async def scenario():
            flooder = await open_socket(fast, frank_cookie)
            watcher = await open_socket(fast, grace_cookie)
            created = await reply_to(
                flooder,
                {"type": "conversation.create", "id": "c", "usernames": ["grace"]},
                request_id="c",
            )
            frame = {"type": "typing", "conversation": created["conversation"]}
            while json.loads(await asyncio.wait_for(watcher.recv(), 10))["type"] != (
                "conversation.created"
            ):
                pass  # grace's socket joins the conversation's group on this event
            for n in range(2000):
                await flooder.send(json.dumps({**frame, "id": f"t{n}"}))
            acknowledged = 0
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    answer = json.loads(await asyncio.wait_for(flooder.recv(), 10))
                    acknowledged += answer["type"] == "typing.sent"
            seen = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    event = json.loads(await asyncio.wait_for(watcher.recv(), 3))
                    seen += event["type"] == "typing"
            await watcher.close()
            return acknowledged, seen

        acknowledged, seen = asyncio.run(scenario())
        assert 0 < acknowledged < 2000
        assert seen == acknowledged  # each typing fanned out was answered before the close
    finally:
        fast.stop()
