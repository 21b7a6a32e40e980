"""End to end through real daphne workers, Redis and SQLite with the Python client:
three signing algorithms in one conversation, joins and leaves, and ciphertext at rest."""

import asyncio
import sqlite3

import pytest

from client.securechat_client.client import ChatClient
from client.securechat_client.conversation import unb64
from client.securechat_client.errors import TrustError
from cryptokit import encoding, wrapping
from cryptokit.errors import CryptoError
from testing.processes import ChatStack

USERS = {
    "alice": "ed25519",
    "bob": "rsa-pss",
    "carol": "dsa",
    "dave": "ecdsa-p256",
    "mallory": "ed25519",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(tmp_path_factory.mktemp("flow"), redis_server.url, workers=2)
    server.seed(*USERS)
    yield server
    server.stop()


async def connected(stack, name: str, worker: int = 0, *, keys=None) -> ChatClient:
    """A logged-in, connected client; with `keys`, a new session of the same device."""
    client = ChatClient(stack.workers[worker].url)
    await client.login(name, stack.password(name))
    await client.load_trust()
    if keys is None:
        await client.register_keys(signing_algorithm=USERS[name], rsa_bits=2048)
    else:
        client.use_keys(keys)
    await client.connect()
    return client


def database_bytes(stack) -> bytes:
    """Every byte SQLite holds for us: the main file and the write-ahead log."""
    files = [stack.database_path, stack.database_path.with_name("db.sqlite3-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_three_algorithms_chat_and_the_database_holds_no_plaintext(stack):
    async def scenario():
        alice = await connected(stack, "alice", 0)
        bob = await connected(stack, "bob", 1)  # another worker: relayed through Redis
        carol = await connected(stack, "carol", 0)
        conversation = await alice.create_conversation(["bob", "carol"], title="launch")
        for member in (bob, carol):
            await member.wait_for_epoch(conversation)
        lines = {
            alice: "alice says the eagle flies at dawn",
            bob: "bob signs with RSA-PSS and agrees",
            carol: "carol signs with DSA and concurs",
        }
        received = {client: [] for client in lines}
        for sender, text in lines.items():
            ack = await sender.send_text(conversation, text)
            assert ack["order"] >= 1
            for reader in lines:
                if reader is not sender:
                    message = await reader.receive_text(conversation)
                    assert message.sender == sender.username
                    received[reader].append(message.text)
        for client in lines:
            await client.close()
        return lines, received

    lines, received = asyncio.run(scenario())
    for reader, texts in received.items():
        assert sorted(texts) == sorted(
            text for client, text in lines.items() if client is not reader
        )
    stored = database_bytes(stack)
    for text in lines.values():
        assert text.encode() not in stored
    with sqlite3.connect(stack.database_path) as db:
        count = db.execute("select count(*) from chat_message").fetchone()[0]
    assert count == 3


def test_a_newcomer_reads_only_new_messages_and_a_leaver_no_new_ones(stack):
    async def scenario():
        alice = await connected(stack, "alice")
        carol = await connected(stack, "carol", 1)
        dave = await connected(stack, "dave", 1)
        conversation = await alice.create_conversation(["carol"], title="before dave")
        await carol.wait_for_epoch(conversation)
        await alice.send_text(conversation, "secret from before dave joined")
        await carol.receive_text(conversation)
        invitation = await alice.invite(conversation, "dave")
        invited = await dave.next_event("invite.received")
        assert invited["invitation"]["id"] == invitation
        await dave.accept_invitation(invitation)
        await alice.wait_for_epoch(conversation, 2)
        await carol.wait_for_epoch(conversation, 2)
        await alice.send_text(conversation, "welcome dave")
        assert (await dave.receive_text(conversation)).text == "welcome dave"
        assert (await carol.receive_text(conversation)).text == "welcome dave"
        history = await dave.history(conversation)
        assert [m.text for m in history if not isinstance(m, TrustError)] == ["welcome dave"]
        assert 1 not in dave.state(conversation).epoch_keys
        refused = await dave.request("epoch.get", conversation=conversation, epochs=[1])
        assert refused["epochs"] == []  # the server hands him no key to the past either

        carol_keys_before = dict(carol.state(conversation).epoch_keys)
        await carol.leave(conversation)
        await alice.wait_for_epoch(conversation, 3)
        await alice.send_text(conversation, "after carol left")
        after = await dave.receive_text(conversation)
        assert after.text == "after carol left" and after.epoch == 3
        raw = await alice.request(
            "conversation.history", conversation=conversation, since=after.order - 1
        )
        for client in (alice, carol, dave):
            await client.close()
        return carol_keys_before, raw["messages"][0]

    carol_keys, sealed = asyncio.run(scenario())
    assert set(carol_keys) == {1, 2}
    header = encoding.message_header(
        conversation_id=sealed["conversation"],
        epoch=3,
        sender="alice",
        sender_serial=sealed["sender_serial"],
        device=sealed["device"],
        sequence=sealed["sequence"],
        timestamp_ms=sealed["timestamp_ms"],
    )
    for old_key in carol_keys.values():
        with pytest.raises(CryptoError):
            wrapping.aes_gcm_decrypt(
                old_key, unb64(sealed["iv"]), unb64(sealed["ciphertext"]), header
            )
