"""Delivery under faults, on two real daphne workers sharing a Redis of their own and the
database: Redis stopped mid-conversation, a worker killed, a removal whose event is lost,
two tabs of one user. The database is the record; every client ends with every message
it may read exactly once (docs/reliability.md)."""

import asyncio
import json
import sqlite3
import subprocess
import sys

import pytest

from client.securechat_client.client import ChatClient
from client.securechat_client.errors import ProtocolError
from testing.processes import ROOT, ChatStack, RedisServer

NAMES = ("alice", "bob", "carol")
# Liveness bound for catching up after an outage: probe interval (1 s) + detection (1 s)
# + resync and history; generous for a loaded CI machine. Not a speed claim.
CATCH_UP_SECONDS = 60


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("fault-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis):
    server = ChatStack(tmp_path_factory.mktemp("faults"), redis.url, workers=2)
    server.seed(*NAMES, "dave")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyring(stack):
    async def register():
        keys = {}
        for name in (*NAMES, "dave"):
            client = await open_client(stack, name, 0)
            keys[name] = client.keys
            await client.close()
        return keys

    return asyncio.run(register())


async def open_client(stack, name: str, worker: int, keys=None) -> ChatClient:
    urls = [w.url for w in stack.workers]
    client = ChatClient(urls[worker], other_urls=[u for u in urls if u != urls[worker]])
    await client.login(name, stack.password(name))
    await client.load_trust()
    if keys is None:
        await client.register_keys(rsa_bits=2048)
    else:
        client.use_keys(keys)
    await client.connect()
    return client


async def collect(client: ChatClient, conversation: str, expected: set[int]) -> list[int]:
    """The orders of the messages from others this client receives (its own are skipped
    by receive_text), in arrival order, until it holds all of `expected`."""
    received = []
    while not expected <= set(received):
        message = await client.receive_text(conversation, timeout=CATCH_UP_SECONDS)
        received.append(message.order)
    return received


def stored_client_ids(stack, conversation: str) -> list[str]:
    with sqlite3.connect(stack.database_path) as db:
        rows = db.execute(
            "SELECT client_id FROM chat_message WHERE conversation_id = ?",
            (conversation.replace("-", ""),),
        ).fetchall()
    return [row[0] for row in rows]


def test_redis_stopped_while_three_users_send_200_messages(stack, redis, keyring):
    logs_before = [worker.log() for worker in stack.workers]

    async def scenario():
        alice = await open_client(stack, "alice", 0, keyring["alice"])
        bob = await open_client(stack, "bob", 1, keyring["bob"])
        carol = await open_client(stack, "carol", 0, keyring["carol"])
        conversation = await alice.create_conversation(["bob", "carol"], title="outage")
        for member in (bob, carol):
            await member.wait_for_epoch(conversation, 1)
        acks = []
        quarter = asyncio.Event()

        async def send(client: ChatClient, count: int) -> None:
            for n in range(count):
                ack = await client.send_text(conversation, f"{client.username} {n}")
                acks.append((client.username, ack["order"]))
                if len(acks) >= 50:
                    quarter.set()
                await asyncio.sleep(0.05)  # within the per-socket rate limit

        senders = asyncio.gather(send(alice, 67), send(bob, 67), send(carol, 66))
        await quarter.wait()
        redis.stop()  # live delivery down; the database goes on
        await asyncio.sleep(2)
        redis.start()
        await senders
        orders = {order for _, order in acks}
        assert len(acks) == 200 and orders == set(range(1, 201))
        received = {}
        for client in (alice, bob, carol):
            others = {order for name, order in acks if name != client.username}
            received[client.username] = await collect(client, conversation, others)
        for client in (alice, bob, carol):
            await client.close()
        return conversation, received

    conversation, received = asyncio.run(scenario())
    for name, orders in received.items():
        assert len(orders) == len(set(orders)), f"{name} got a message twice"
    stored = stored_client_ids(stack, conversation)
    assert len(stored) == len(set(stored)) == 200
    for worker, before in zip(stack.workers, logs_before, strict=True):
        during = worker.log()[len(before) :]
        assert "Traceback" not in during  # an outage is logged in lines, not stack dumps


def test_a_killed_worker_s_clients_reconnect_and_lose_nothing(stack, keyring):
    async def scenario():
        alice = await open_client(stack, "alice", 1, keyring["alice"])  # on the doomed one
        bob = await open_client(stack, "bob", 0, keyring["bob"])
        conversation = await alice.create_conversation(["bob"], title="crash")
        await bob.wait_for_epoch(conversation, 1)
        by_bob, by_alice = set(), set()
        for n in range(10):
            by_bob.add((await bob.send_text(conversation, f"before {n}"))["order"])
        stack.kill_worker(1)
        for n in range(10):  # alice's socket is gone: she reconnects to worker 0
            by_bob.add((await bob.send_text(conversation, f"during {n}"))["order"])
        for n in range(10):
            by_alice.add((await alice.send_text(conversation, f"after {n}"))["order"])
        states = [e["state"] for e in alice.inbox if e["type"] == "connection.state"]
        from_bob = await collect(alice, conversation, by_bob)
        from_alice = await collect(bob, conversation, by_alice)
        for client in (alice, bob):
            await client.close()
        return conversation, states, from_bob, from_alice

    conversation, states, from_bob, from_alice = asyncio.run(scenario())
    try:
        assert states[:2] == ["reconnecting", "connected"]
        assert sorted(from_bob) == sorted(set(from_bob)) and len(from_bob) == 20
        assert sorted(from_alice) == sorted(set(from_alice)) and len(from_alice) == 10
        assert len(stored_client_ids(stack, conversation)) == 30
    finally:
        stack.restart_worker(1)


def remove_without_announcing(stack, conversation: str, owner: str, member: str) -> None:
    """The owner removes `member`, and the events of it are lost (marked sent, never
    published): what a Redis that drops them would do."""
    code = f"""
import django
django.setup()
from django.db import transaction
from django.utils import timezone
from accounts.models import User
from chat.models import OutboxEvent
from chat.services.conversations import remove_member
with transaction.atomic():
    newest = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    remove_member({conversation!r}, User.objects.get(username={owner!r}), {member!r})
    OutboxEvent.objects.filter(id__gt=newest).update(sent_at=timezone.now())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], env=stack.env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_removed_member_receives_nothing_when_the_removal_event_is_lost(stack, keyring):
    async def scenario():
        alice = await open_client(stack, "alice", 0, keyring["alice"])
        bob = await open_client(stack, "bob", 0, keyring["bob"])
        dave = await open_client(stack, "dave", 1, keyring["dave"])
        conversation = await alice.create_conversation(["bob", "dave"], title="removal")
        for member in (bob, dave):
            await member.wait_for_epoch(conversation, 1)
        await alice.send_text(conversation, "all three of us")
        for member in (bob, dave):
            assert (await member.receive_text(conversation)).text == "all three of us"
        remove_without_announcing(stack, conversation, "alice", "dave")
        await alice.wait_for_epoch(conversation, 1)
        # alice's client has not heard of epoch 2 either: it fetches it on the refusal
        with pytest.raises(ProtocolError):
            await alice.send_text(conversation, "dave is gone", attempts=1)
        await alice.fetch_epochs(conversation, [2])
        await alice.send_text(conversation, "dave is gone")
        assert (await bob.receive_text(conversation)).text == "dave is gone"
        with pytest.raises(TimeoutError):
            await dave.next_event("message.new", timeout=2)
        for client in (alice, bob, dave):
            await client.close()

    asyncio.run(scenario())


def test_two_tabs_of_one_user_interleave_300_sends_and_a_replay_is_refused(stack, keyring):
    async def scenario():
        tab1 = await open_client(stack, "alice", 0, keyring["alice"])
        tab2 = await open_client(stack, "alice", 1, keyring["alice"])
        bob = await open_client(stack, "bob", 0, keyring["bob"])
        conversation = await tab1.create_conversation(["bob"], title="tabs")
        await tab2.wait_for_epoch(conversation, 1)
        refused = []
        bodies = []
        for n in range(150):
            for tab in (tab1, tab2):
                body = tab.state(conversation).encrypt(
                    f"tab message {n}",
                    sender="alice",
                    device=tab.device,
                    signing_key=tab.keys.signing_key,
                    signing_serial=tab.keys.signing_serial,
                )
                bodies.append(body)
                try:
                    await tab.request("message.send", **body)
                except ProtocolError as refusal:
                    refused.append(refusal.code)
        replay = {**bodies[10], "client_id": "00000000-0000-4000-8000-00000000beef"}
        with pytest.raises(ProtocolError) as replayed:
            await tab2.request("message.send", **replay)
        orders = await collect(bob, conversation, set(range(1, 301)))
        for client in (tab1, tab2, bob):
            await client.close()
        return refused, replayed.value.code, orders

    refused, replay_code, orders = asyncio.run(scenario())
    assert refused == []
    assert replay_code == "replayed"
    assert sorted(orders) == list(range(1, 301))


def test_deep_json_is_refused_without_a_traceback(stack, keyring):
    async def scenario():
        client = await open_client(stack, "carol", 0, keyring["carol"])
        await client.connection.send_raw("[" * 10_000 + "]" * 10_000)
        error = await client.next_event("error", timeout=10)
        pong = await client.request("ping")
        await client.close()
        return error, pong

    before = stack.workers[0].log()
    error, pong = asyncio.run(scenario())
    assert error["code"] == "invalid_json" and pong["type"] == "pong"
    assert "Traceback" not in stack.workers[0].log()[len(before) :]
    assert json.dumps(error)


def test_after_an_outage_sockets_get_resync_and_every_stored_message(stack, redis, keyring):
    async def scenario():
        alice = await open_client(stack, "alice", 0, keyring["alice"])
        bob = await open_client(stack, "bob", 1, keyring["bob"])
        conversation = await alice.create_conversation(["bob"], title="quiet after")
        await bob.wait_for_epoch(conversation, 1)
        redis.stop()
        sent = {
            (await alice.send_text(conversation, f"in the dark {n}"))["order"] for n in range(5)
        }
        await asyncio.sleep(2.5)  # longer than two probe periods: the workers notice
        redis.start()  # nothing is sent afterwards: no gap for bob to notice
        received = await collect(bob, conversation, sent)
        resync = await bob.next_event("resync", timeout=CATCH_UP_SECONDS)
        for client in (alice, bob):
            await client.close()
        return sent, received, resync

    sent, received, resync = asyncio.run(scenario())
    assert sorted(received) == sorted(sent)
    assert resync["reason"] == "layer_recovered"


def test_the_first_connect_after_a_redis_restart_succeeds(stack, redis, keyring):
    async def scenario():
        warm = [await open_client(stack, "carol", index, keyring["carol"]) for index in (0, 1)]
        redis.stop()
        redis.start()  # the workers' pools still hold connections to the old process
        opened = [await open_client(stack, "dave", index, keyring["dave"]) for index in (0, 1)]
        pongs = [await client.request("ping") for client in opened]
        for client in (*warm, *opened):
            await client.close()
        return pongs

    assert [pong["type"] for pong in asyncio.run(scenario())] == ["pong", "pong"]


def test_a_client_acts_on_a_conversation_whose_events_it_has_not_seen(stack, keyring):
    async def scenario():
        alice = await open_client(stack, "alice", 0, keyring["alice"])
        bob = await open_client(stack, "bob", 1, keyring["bob"])
        conversation = await alice.create_conversation(["bob"], title="late events")
        bob.conversations.clear()  # as if conversation.created were still held back
        await bob.leave(conversation)  # no KeyError: the client asks for the list
        invitation = await alice.invite(conversation, "bob")
        bob.conversations.clear()
        assert await bob.accept_invitation(invitation) == conversation  # key fetched
        for client in (alice, bob):
            await client.close()

    asyncio.run(scenario())
