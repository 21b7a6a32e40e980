"""Presence over two daphne workers sharing one Redis and one database."""

import asyncio

import httpx
import pytest

from chat.tests.conftest import RawSocket, login_cookie
from testing.processes import ChatStack


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, redis_server):
    stack = ChatStack(tmp_path_factory.mktemp("presence"), redis_server.url, workers=2)
    stack.seed("alice", "bob", "erin")
    yield stack
    stack.stop()


def make_contacts(stack, owner: str, contact: str) -> str:
    cookie = login_cookie(stack.url, owner, stack.password(owner))
    with httpx.Client(base_url=stack.url, headers={"Cookie": cookie}) as client:
        csrf = dict(kv.split("=", 1) for kv in cookie.split("; "))["csrftoken"]
        response = client.post(
            "/accounts/contacts/",
            data={"username": contact, "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{stack.url}/accounts/contacts/"},
        )
        assert response.status_code == 302
    return cookie


def test_two_tabs_on_two_workers_and_contacts_see_it(two_workers):
    stack = two_workers
    first, second = stack.workers
    bob_cookie = make_contacts(stack, "bob", "alice")
    alice_cookie = make_contacts(stack, "alice", "bob")  # presence needs both to consent

    async def scenario():
        bob = await RawSocket.open(second, second.url, bob_cookie)
        snapshot = await bob.event("presence.snapshot")
        assert {"username": "alice", "online": False} in snapshot["users"]

        tab1 = await RawSocket.open(first, first.url, alice_cookie)
        assert (await bob.event("presence.changed", username="alice"))["online"] is True
        tab2 = await RawSocket.open(second, second.url, alice_cookie)
        await tab1.close()
        # alice still has a tab: no offline event, and search on either worker says online
        try:
            extra = await bob.event("presence.changed", timeout=1.5, username="alice")
        except TimeoutError:
            extra = None
        assert extra is None, extra
        found = await bob.request("users.search", query="ali")
        assert found["users"] == [{"username": "alice", "display_name": "Alice", "online": True}]
        await tab2.close()
        assert (await bob.event("presence.changed", username="alice"))["online"] is False
        found = await bob.request("users.search", query="ali", online_only=False)
        assert found["users"][0]["online"] is False
        await bob.close()

    asyncio.run(scenario())


def test_presence_is_not_shown_to_strangers(two_workers):
    stack = two_workers
    erin_cookie = login_cookie(stack.url, "erin", stack.password("erin"))
    alice_cookie = login_cookie(stack.url, "alice", stack.password("alice"))

    async def scenario():
        erin = await RawSocket.open(stack.workers[0], stack.workers[0].url, erin_cookie)
        snapshot = await erin.event("presence.snapshot")
        assert snapshot["users"] == []
        alice = await RawSocket.open(stack.workers[1], stack.workers[1].url, alice_cookie)
        with pytest.raises(asyncio.TimeoutError):
            await erin.event("presence.changed", timeout=1.5)
        await alice.close()
        await erin.close()

    asyncio.run(scenario())


def test_users_of_a_crashed_worker_go_offline_within_the_heartbeat_bound(tmp_path, redis_server):
    import signal

    stack = ChatStack(
        tmp_path,
        redis_server.url,
        workers=2,
        PRESENCE_HEARTBEAT_SECONDS="1",
        PRESENCE_TTL_SECONDS="2",
    )
    try:
        stack.seed("alice", "bob")
        bob_cookie = make_contacts(stack, "bob", "alice")
        alice_cookie = make_contacts(stack, "alice", "bob")  # presence needs both to consent

        async def scenario():
            bob = await RawSocket.open(stack.workers[0], stack.workers[0].url, bob_cookie)
            await RawSocket.open(stack.workers[1], stack.workers[1].url, alice_cookie)
            assert (await bob.event("presence.changed", username="alice"))["online"] is True
            stack.workers[1].process.send_signal(signal.SIGKILL)  # no close, no cleanup
            # the bound: TTL (2 s) + one heartbeat (1 s), with slack for a loaded machine
            offline = await bob.event("presence.changed", timeout=8, username="alice")
            await bob.close()
            return offline

        assert asyncio.run(scenario())["online"] is False
    finally:
        stack.stop()
