"""Refused over the wire with a stable code, nothing stored, nobody else affected."""

import asyncio
import base64
import json
import sqlite3

import pytest

from chat.tests.test_chat_flow import USERS, connected
from client.securechat_client.errors import ProtocolError
from testing.processes import ChatStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(tmp_path_factory.mktemp("refusals"), redis_server.url)
    server.seed(*USERS)
    yield server
    server.stop()


def stored_messages(stack) -> int:
    with sqlite3.connect(stack.database_path) as db:
        return db.execute("select count(*) from chat_message").fetchone()[0]


async def refused(client, code: str, **frame) -> None:
    with pytest.raises(ProtocolError) as error:
        await client.request("message.send", **frame)
    assert error.value.code == code, error.value.message


def flip(value: str) -> str:
    data = bytearray(base64.b64decode(value))
    data[0] ^= 1
    return base64.b64encode(bytes(data)).decode()


def test_bad_messages_are_refused_and_the_conversation_carries_on(stack):

    async def scenario():
        alice, bob = await connected(stack, "alice"), await connected(stack, "bob")
        mallory = await connected(stack, "mallory")
        conversation = await alice.create_conversation(["bob"])
        await bob.wait_for_epoch(conversation)
        good = alice.state(conversation).encrypt(
            "a good message",
            sender="alice",
            device=alice.device,
            signing_key=alice.keys.signing_key,
            signing_serial=alice.keys.signing_serial,
        )
        await alice.request("message.send", **good)
        await bob.receive_text(conversation)
        before = stored_messages(stack)

        # a replayed message: same sequence, new client id
        await refused(
            alice, "replayed", **{**good, "client_id": "00000000-0000-4000-8000-000000000001"}
        )
        # tampered ciphertext, tampered IV
        fresh = alice.state(conversation).encrypt(
            "to be tampered",
            sender="alice",
            device=alice.device,
            signing_key=alice.keys.signing_key,
            signing_serial=alice.keys.signing_serial,
        )
        await refused(alice, "bad_signature", **{**fresh, "ciphertext": flip(fresh["ciphertext"])})
        await refused(alice, "bad_signature", **{**fresh, "iv": flip(fresh["iv"])})
        # signed by another user's key: bob's serial on alice's message
        await refused(
            alice, "wrong_certificate", **{**fresh, "sender_serial": bob.keys.signing_serial}
        )
        # a non-member, with a well-formed frame
        await refused(
            mallory, "not_member", **{**fresh, "sender_serial": mallory.keys.signing_serial}
        )
        # an old epoch: after dave joins and leaves, epoch 1 is closed for good
        invitation = await alice.invite(conversation, "dave")
        dave = await connected(stack, "dave")
        await dave.accept_invitation(invitation)
        await dave.leave(conversation)
        await alice.wait_for_epoch(conversation, 3)
        old = dict(
            fresh,
            epoch=1,
            client_id="00000000-0000-4000-8000-000000000002",
            sequence=fresh["sequence"] + 5,
        )
        await refused(alice, "stale_epoch", **old)
        # invitations: a user who does not exist, someone else's invitation
        with pytest.raises(ProtocolError) as error:
            await alice.invite(conversation, "nobody-here")
        assert error.value.code == "unknown_user"
        invitation = await alice.invite(conversation, "carol")
        with pytest.raises(ProtocolError) as error:
            await mallory.accept_invitation(invitation)
        assert error.value.code == "not_found"
        assert stored_messages(stack) == before

        # nobody else was affected: bob still sends, alice still reads
        await bob.send_text(conversation, "still here")
        assert (await alice.receive_text(conversation)).text == "still here"
        for client in (alice, bob, mallory, dave):
            await client.close()

    asyncio.run(scenario())


def test_a_revoked_signer_is_refused(stack):
    async def scenario():
        alice, bob = await connected(stack, "alice"), await connected(stack, "bob")
        conversation = await alice.create_conversation(["bob"])
        await bob.wait_for_epoch(conversation)
        revoked = await bob.http.post_json("/api/keys/revoke/", {"reason": "lost phone"})
        assert bob.keys.signing_serial in revoked["revoked"]
        event = await alice.next_event("cert.revoked", predicate=lambda e: e["username"] == "bob")
        assert event["serials"]
        # The revocation re-keyed the conversation without bob; a thief holding bob's
        # signing key signs for the current epoch anyway and must still be refused.
        await alice.wait_for_epoch(conversation, 2)
        assert 2 not in bob.state(conversation).epoch_keys
        bob.state(conversation).epoch_keys[2] = bytes(32)
        stolen = bob.state(conversation).encrypt(
            "signed with a revoked key",
            sender="bob",
            device=bob.device,
            signing_key=bob.keys.signing_key,
            signing_serial=bob.keys.signing_serial,
        )
        await refused(bob, "certificate_revoked", **stolen)
        for client in (alice, bob):
            await client.close()

    asyncio.run(scenario())


def test_raw_frames_about_messages_are_validated(stack):
    async def scenario():
        alice = await connected(stack, "alice")
        await alice.connection.send_raw(
            json.dumps({"type": "message.send", "id": "x1", "conversation": 5})
        )
        error = None
        while error is None:
            event = await alice.next_event("error")
            error = event if event.get("id") == "x1" else None
        await alice.close()
        return error

    assert asyncio.run(scenario())["code"] == "invalid_frame"
