"""Sockets die with their session (issue 15, item 2), on two real daphne workers sharing a
Redis of their own and the database: logout closes that session's sockets, a password
change, a deactivation and a deletion close every socket of the user, on both workers,
within 2 s, with close code 4003; and a socket whose ending event was lost is refused at
its next request (and, idle, at its next heartbeat)."""

import asyncio
import json
import sqlite3
import sys
import time

import httpx
import pytest
import websockets

from chat.tests.conftest import RawSocket, login_cookie
from testing.processes import ROOT, ChatStack, RedisServer

SESSION_ENDED = 4003
UNAUTHENTICATED = 4001
BOUND_SECONDS = 2  # the bound, from the end of the request that ended the session


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("session-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis):
    server = ChatStack(tmp_path_factory.mktemp("session-bound"), redis.url, workers=2)
    server.seed("bob", "lou", "dee", "pat", "dan", "rex", "ray")
    yield server
    server.stop()


class Browser:
    """One login session over real HTTP, as a browser holds it (cookies follow changes)."""

    def __init__(self, stack, name: str) -> None:
        self.url = stack.url
        self.client = httpx.Client(base_url=self.url)
        page = self.client.get("/accounts/login/")
        assert page.status_code == 200
        response = self.post(
            "/accounts/login/", username=name, password=stack.password(name), field=True
        )
        assert response.status_code == 302, f"login of {name} failed"

    @property
    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())

    @property
    def session_key(self) -> str:
        return self.client.cookies["sessionid"]

    def post(self, path: str, *, field: bool = False, **data: str) -> httpx.Response:
        token = self.client.cookies.get("csrftoken", "")
        if field:
            data["csrfmiddlewaretoken"] = token
        return self.client.post(
            path, data=data, headers={"X-CSRFToken": token, "Referer": f"{self.url}{path}"}
        )


async def open_socket(stack, worker: int, cookie: str) -> RawSocket:
    # each worker is its own origin in tests (its own port): the socket says its own
    return await RawSocket.open(stack.workers[worker], stack.workers[worker].url, cookie)


async def close_code(socket: RawSocket, timeout: float) -> int:
    """Read (and drop) frames until the server closes the socket; its close code."""
    deadline = time.monotonic() + timeout
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(socket.socket.recv(), max(0.01, deadline - time.monotonic()))
    return closed.value.rcvd.code


async def closes_within_bound(*sockets: RawSocket) -> list[int]:
    started = time.monotonic()
    codes = await asyncio.gather(*(close_code(s, BOUND_SECONDS) for s in sockets))
    assert time.monotonic() - started < BOUND_SECONDS + 0.1
    return list(codes)


async def code_of_new_socket(stack, worker: int, cookie: str) -> int | None:
    """The close code a fresh socket with `cookie` gets; None if it stays open."""
    socket = await open_socket(stack, worker, cookie)
    try:
        return await close_code(socket, 3)
    except TimeoutError:  # still open
        await socket.close()
        return None


async def frame_is_refused_by_closed_socket(socket: RawSocket) -> bool:
    try:
        await socket.socket.send(json.dumps({"type": "ping", "id": "late"}))
    except websockets.ConnectionClosed:
        return True
    return False


def conversations_created_by(stack, name: str) -> int:
    with sqlite3.connect(stack.database_path) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM chat_conversation c JOIN accounts_user u"
            " ON c.created_by_id = u.id WHERE u.username = ?",
            (name,),
        ).fetchone()
    return count


async def run_in_server(stack, code: str) -> None:
    """Django code in a separate process of the server (as the admin or a command runs
    it): its outbox events are published from there."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import django\ndjango.setup()\n" + code,
        env=stack.env,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


async def other_events(socket: RawSocket, seconds: float) -> list[dict]:
    """What reaches `socket` in `seconds`, presence aside."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = json.loads(await asyncio.wait_for(socket.socket.recv(), left))
        except TimeoutError:
            break
        got.append(frame)
    got += socket.events
    socket.events.clear()
    return [f for f in got if not f["type"].startswith("presence.")]


def test_logout_closes_that_session_s_sockets_on_both_workers_within_2_s(stack):
    browser, other_session = Browser(stack, "lou"), Browser(stack, "lou")

    async def scenario():
        bob = await open_socket(stack, 0, login_cookie(stack.url, "bob", stack.password("bob")))
        tab0 = await open_socket(stack, 0, browser.cookie)
        tab1 = await open_socket(stack, 1, browser.cookie)
        elsewhere = await open_socket(stack, 1, other_session.cookie)
        created = await tab0.request("conversation.create", usernames=["bob"], title="before")
        assert created["type"] == "conversation.created", created
        assert await other_events(bob, 1), "the live socket's conversation reached bob"

        assert browser.post("/accounts/logout/").status_code == 302
        codes = await closes_within_bound(tab0, tab1)
        assert await frame_is_refused_by_closed_socket(tab0)
        assert (await elsewhere.request("ping"))["type"] == "pong"  # another session lives on
        new_code = await code_of_new_socket(stack, 0, browser.cookie)
        await elsewhere.close()
        await bob.close()
        return codes, new_code

    codes, new_code = asyncio.run(scenario())
    assert codes == [SESSION_ENDED, SESSION_ENDED]
    assert new_code == UNAUTHENTICATED
    assert conversations_created_by(stack, "lou") == 1


def test_deactivation_by_an_admin_style_save_closes_every_socket_of_the_user(stack):
    first, second = Browser(stack, "dee"), Browser(stack, "dee")

    async def scenario():
        sockets = [
            await open_socket(stack, 0, first.cookie),
            await open_socket(stack, 1, first.cookie),
            await open_socket(stack, 1, second.cookie),
        ]
        await run_in_server(
            stack,
            "from accounts.models import User\n"
            "user = User.objects.get(username='dee')\n"
            "user.is_active = False\n"
            "user.save()\n",  # what the admin's change form does
        )
        codes = await closes_within_bound(*sockets)
        return codes, await code_of_new_socket(stack, 1, second.cookie)

    codes, new_code = asyncio.run(scenario())
    assert codes == [SESSION_ENDED] * 3
    assert new_code == UNAUTHENTICATED
    assert conversations_created_by(stack, "dee") == 0


def test_a_password_change_closes_every_socket_of_the_user_on_both_workers(stack):
    changer, other_session = Browser(stack, "pat"), Browser(stack, "pat")
    old_cookie = changer.cookie

    async def scenario():
        sockets = [
            await open_socket(stack, 0, changer.cookie),
            await open_socket(stack, 1, changer.cookie),
            await open_socket(stack, 0, other_session.cookie),
            await open_socket(stack, 1, other_session.cookie),
        ]
        changed = changer.post(
            "/accounts/password/",
            field=True,
            old_password=stack.password("pat"),
            new_password1="another-long-passphrase-7",
            new_password2="another-long-passphrase-7",
        )
        assert changed.status_code == 302, changed.text[:2000]
        codes = await closes_within_bound(*sockets)
        return codes, [
            await code_of_new_socket(stack, 0, other_session.cookie),
            await code_of_new_socket(stack, 0, old_cookie),
            # Django kept the changing session under a new key: a reload reconnects
            await code_of_new_socket(stack, 1, changer.cookie),
        ]

    codes, new_codes = asyncio.run(scenario())
    assert codes == [SESSION_ENDED] * 4
    assert new_codes == [UNAUTHENTICATED, UNAUTHENTICATED, None]


def test_deleting_a_user_closes_their_sockets_on_both_workers(stack):
    browser = Browser(stack, "dan")

    async def scenario():
        sockets = [
            await open_socket(stack, 0, browser.cookie),
            await open_socket(stack, 1, browser.cookie),
        ]
        await run_in_server(
            stack, "from accounts.models import User\nUser.objects.get(username='dan').delete()\n"
        )
        codes = await closes_within_bound(*sockets)
        assert await frame_is_refused_by_closed_socket(sockets[1])
        return codes

    assert asyncio.run(scenario()) == [SESSION_ENDED, SESSION_ENDED]


def end_without_event(stack, how: str, name: str, session_key: str) -> None:
    """End the session the way no signal sees (a raw SQL write), so no event is sent."""
    with sqlite3.connect(stack.database_path) as db:
        if how == "session deleted":
            db.execute("DELETE FROM django_session WHERE session_key = ?", (session_key,))
        else:
            db.execute("UPDATE accounts_user SET is_active = 0 WHERE username = ?", (name,))


@pytest.mark.parametrize(("how", "name"), [("session deleted", "rex"), ("user deactivated", "ray")])
def test_a_request_after_an_unannounced_end_is_refused_and_closes_the_socket(stack, how, name):
    browser = Browser(stack, name)

    async def scenario():
        bob = await open_socket(stack, 1, login_cookie(stack.url, "bob", stack.password("bob")))
        socket = await open_socket(stack, 0, browser.cookie)
        assert (await socket.request("ping"))["type"] == "pong"
        end_without_event(stack, how, name, browser.session_key)
        await asyncio.sleep(1.2)  # past WS_SESSION_CHECK_SECONDS since the last check
        refused = await socket.request("conversation.create", usernames=["bob"], title="after")
        code = await close_code(socket, BOUND_SECONDS)
        reached_bob = await other_events(bob, 1)
        await bob.close()
        return refused, code, reached_bob

    refused, code, reached_bob = asyncio.run(scenario())
    assert refused["type"] == "error" and refused["code"] == "session_ended", refused
    assert code == SESSION_ENDED
    assert reached_bob == []
    assert conversations_created_by(stack, name) == 0


def test_an_idle_socket_whose_end_was_not_announced_closes_at_its_heartbeat(tmp_path, redis_server):
    stack = ChatStack(tmp_path, redis_server.url, PRESENCE_HEARTBEAT_SECONDS="1")
    try:
        stack.seed("ivy")
        browser = Browser(stack, "ivy")

        async def scenario():
            socket = await open_socket(stack, 0, browser.cookie)
            end_without_event(stack, "session deleted", "ivy", browser.session_key)
            return await close_code(socket, 3)  # one heartbeat, with slack

        assert asyncio.run(scenario()) == SESSION_ENDED
    finally:
        stack.stop()
