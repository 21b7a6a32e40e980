"""Consent: someone who is not your mutual contact can start a conversation with you, but it
is a message request (no presence flows through it) until you accept; and you can block
them, after which they can neither start one with you nor invite you."""

import pytest

from accounts.services import add_contact
from chat.errors import ChatError
from chat.models import Membership
from chat.services import conversations

pytestmark = pytest.mark.django_db


def membership(conversation, user) -> Membership:
    return Membership.objects.get(conversation=conversation, user=user, left__isnull=True)


def test_a_stranger_starts_a_message_request_a_mutual_contact_does_not(pki, users):
    alice, bob, charlie = users["alice"], users["bob"], users["charlie"]
    add_contact(alice, "bob")
    add_contact(bob, "alice")
    started = conversations.create_conversation(alice, ["bob", "charlie"])
    assert membership(started, bob).accepted is True
    assert membership(started, charlie).accepted is False
    members = {
        m["username"]: m["accepted"] for m in conversations.conversation_json(started)["members"]
    }
    assert members == {"alice": True, "bob": True, "charlie": False}


def test_a_request_shares_no_presence_until_accepted(pki, users):
    alice, charlie = users["alice"], users["charlie"]
    started = conversations.create_conversation(charlie, ["alice"])
    assert alice.pk not in conversations.presence_audience(charlie)
    assert charlie.pk not in conversations.presence_audience(alice)
    conversations.accept_request(str(started.id), alice)
    assert membership(started, alice).accepted
    assert charlie.pk in conversations.presence_audience(alice)


def test_a_blocked_user_can_neither_start_a_conversation_nor_invite(pki, users):
    alice, bob, charlie = users["alice"], users["bob"], users["charlie"]
    conversations.block_user(alice, "charlie")
    with pytest.raises(ChatError) as refused:
        conversations.create_conversation(charlie, ["alice", "bob"])
    assert refused.value.code == "blocked"
    assert not Membership.objects.filter(user=charlie).exists()
    shared = conversations.create_conversation(charlie, ["bob"])
    with pytest.raises(ChatError) as refused:
        conversations.invite(str(shared.id), charlie, "alice")
    assert refused.value.code == "blocked"
    conversations.unblock_user(alice, "charlie")
    conversations.invite(str(shared.id), charlie, "alice")
    assert bob.pk  # bob was never affected by alice's block


def test_accepting_someone_elses_request_is_refused(pki, users):
    started = conversations.create_conversation(users["alice"], ["bob"])
    with pytest.raises(ChatError) as refused:
        conversations.accept_request(str(started.id), users["charlie"])
    assert refused.value.code == "not_member"


@pytest.mark.django_db(transaction=False)
def test_the_frames_accept_a_request_and_block_over_a_real_socket(stack):
    import asyncio

    from chat.tests.conftest import RawSocket, login_cookie

    stack.seed("quinn", "rosa")
    quinn_cookie = login_cookie(stack.url, "quinn", stack.password("quinn"))
    rosa_cookie = login_cookie(stack.url, "rosa", stack.password("rosa"))
    worker = stack.workers[0]

    async def scenario():
        quinn = await RawSocket.open(worker, stack.url, quinn_cookie)
        rosa = await RawSocket.open(worker, stack.url, rosa_cookie)
        created = await quinn.request(
            "conversation.create", usernames=["rosa"], key_origin="server"
        )
        conversation = created["conversation"]
        listed = await rosa.request("conversation.list")
        members = {m["username"]: m["accepted"] for m in listed["conversations"][0]["members"]}
        accepted = await rosa.request("conversation.accept", conversation=conversation)
        blocked = await rosa.request("user.block", username="quinn")
        refused = await quinn.request(
            "conversation.create", usernames=["rosa"], key_origin="server"
        )
        bad = await rosa.request("user.block", username="")
        await quinn.close()
        await rosa.close()
        return members, accepted, blocked, refused, bad

    members, accepted, blocked, refused, bad = asyncio.run(scenario())
    assert members == {"quinn": True, "rosa": False}
    assert accepted["type"] == "conversation.accepted"
    assert blocked == {"type": "user.blocked", "id": blocked["id"], "username": "quinn"}
    assert (refused["type"], refused["code"]) == ("error", "blocked")
    assert (bad["type"], bad["code"]) == ("error", "invalid_frame")
