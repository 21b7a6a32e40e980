"""Offline delivery exactly once, acknowledgements, and members key origin end to end."""

import asyncio

import pytest

from chat.tests.test_chat_flow import USERS, connected
from client.securechat_client.errors import ProtocolError
from testing.processes import ChatStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(tmp_path_factory.mktemp("delivery"), redis_server.url)
    server.seed(*USERS)
    yield server
    server.stop()


def test_a_message_to_an_offline_member_is_delivered_once_when_they_connect(stack):
    async def scenario():
        alice, bob = await connected(stack, "alice"), await connected(stack, "bob")
        conversation = await alice.create_conversation(["bob"])
        await bob.wait_for_epoch(conversation)
        bob_keys = bob.keys
        await bob.close()

        ack = await alice.send_text(conversation, "while you were away")
        assert ack["offline"] == ["bob"] and ack["order"] == 1

        bob = await connected(stack, "bob", keys=bob_keys)  # back online: backlog from the database
        message = await bob.receive_text(conversation)
        assert (message.text, message.order) == ("while you were away", 1)
        delivered = await alice.next_event("message.delivered")
        assert delivered == {
            "type": "message.delivered",
            "id": None,
            "conversation": conversation,
            "recipient": "bob",
            "orders": [1],
        }
        with pytest.raises(TimeoutError):
            await bob.next_event("message.new", timeout=1)  # exactly once
        await bob.close()

        bob = await connected(stack, "bob", keys=bob_keys)  # acknowledged: not delivered again
        with pytest.raises(TimeoutError):
            await bob.next_event("message.new", timeout=1)
        ack = await alice.send_text(conversation, "now you are here")
        assert ack["offline"] == []
        assert (await bob.receive_text(conversation)).order == 2
        for client in (alice, bob):
            await client.close()

    asyncio.run(scenario())


def test_members_key_origin_chat_works_end_to_end(stack):
    async def scenario():
        alice, bob = await connected(stack, "alice"), await connected(stack, "bob")
        conversation = await alice.create_conversation(["bob"], key_origin="members")
        try:
            await bob.wait_for_epoch(conversation, 1)
        except TimeoutError:
            raise AssertionError(f"{bob.problems} {bob.inbox}") from None
        record = alice.state(conversation)
        assert record.key_origin == "members"
        assert alice.state(conversation).epoch_keys[1] == bob.state(conversation).epoch_keys[1]
        await bob.send_text(conversation, "no server ever saw this key")
        assert (await alice.receive_text(conversation)).text == "no server ever saw this key"
        # bob leaves while carol joins: the server asks the members for the next key
        carol = await connected(stack, "carol")
        invitation = await alice.invite(conversation, "carol")
        await carol.accept_invitation(invitation)
        await alice.send_text(conversation, "hello carol")
        message = await carol.receive_text(conversation)
        assert message.text == "hello carol" and message.epoch == 2
        assert not alice.problems and not bob.problems and not carol.problems
        for client in (alice, bob, carol):
            await client.close()

    asyncio.run(scenario())


def test_typing_reaches_the_other_members_only(stack):
    async def scenario():
        alice, bob = await connected(stack, "alice"), await connected(stack, "bob")
        conversation = await alice.create_conversation(["bob"])
        await bob.wait_for_epoch(conversation)
        assert (await alice.request("typing", conversation=conversation))["type"] == "typing.sent"
        seen = await bob.next_event("typing")
        assert (seen["conversation"], seen["username"]) == (conversation, "alice")
        with pytest.raises(TimeoutError):
            await alice.next_event("typing", timeout=1)
        mallory = await connected(stack, "mallory")
        with pytest.raises(ProtocolError) as refusal:
            await mallory.request("typing", conversation=conversation)
        assert refusal.value.code == "not_member"
        for client in (alice, bob, mallory):
            await client.close()

    asyncio.run(scenario())
