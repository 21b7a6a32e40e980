"""What one account may make the server do: conversations an hour, memberships per user,
and a conversation list that costs the same few queries however many a user is in."""

import threading
import time

import pytest
from django.db import OperationalError, connection

from accounts.models import User
from chat.errors import ChatError
from chat.models import Conversation, Membership
from chat.services import conversations


def refused(code, call, *args, **kwargs) -> str:
    with pytest.raises(ChatError) as error:
        call(*args, **kwargs)
    assert error.value.code == code, error.value.message
    return error.value.message


@pytest.mark.django_db
def test_conversation_creation_is_capped_per_hour(pki, users, settings):
    settings.CONVERSATIONS_PER_HOUR = 3
    alice = users["alice"]
    for n in range(3):
        conversations.create_conversation(alice, ["bob"], title=f"c{n}")
    refused("too_many_conversations", conversations.create_conversation, alice, ["bob"])
    # another creator has a budget of their own
    conversations.create_conversation(users["bob"], ["alice"], title="bob's")


@pytest.mark.django_db(transaction=True)
def test_parallel_creations_cannot_exceed_the_hourly_cap(pki, users, settings):
    settings.CONVERSATIONS_PER_HOUR = 3
    alice = users["alice"]
    outcomes: list[str] = []

    def create(n: int) -> None:
        # Retried like a client would when the database answers "locked" (SQLite's way of
        # refusing a concurrent writer); each racer ends created or refused.
        try:
            for _attempt in range(200):
                try:
                    conversations.create_conversation(alice, ["bob"], title=f"racer {n}")
                    outcomes.append("created")
                    return
                except ChatError as refusal:
                    outcomes.append(refusal.code)
                    return
                except OperationalError:
                    time.sleep(0.01)
            outcomes.append("gave up")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Conversation.objects.filter(created_by=alice).count() == 3
    assert sorted(outcomes) == ["created"] * 3 + ["too_many_conversations"] * 9


@pytest.mark.django_db
def test_nobody_is_put_in_more_conversations_than_the_cap(pki, users, settings):
    settings.MEMBERSHIPS_PER_USER = 2
    alice, bob, charlie = users["alice"], users["bob"], users["charlie"]
    conversations.create_conversation(alice, ["bob"])
    conversations.create_conversation(charlie, ["bob"])
    message = refused("membership_limit", conversations.create_conversation, alice, ["bob"])
    assert "bob" in message
    assert Membership.objects.filter(user=bob, left__isnull=True).count() == 2


@pytest.mark.django_db
def test_accepting_an_invitation_respects_the_membership_cap(pki, users, settings):
    alice, charlie = users["alice"], users["charlie"]
    target = conversations.create_conversation(alice, ["bob"])
    invitation = conversations.invite(str(target.id), alice, "charlie")
    conversations.create_conversation(charlie, [User.objects.create_user("dave").username])
    settings.MEMBERSHIPS_PER_USER = 1
    refused("membership_limit", conversations.accept_invitation, invitation.pk, charlie)
    assert not Membership.objects.filter(conversation=target, user=charlie).exists()


@pytest.mark.django_db
def test_the_conversation_list_is_paged_in_a_constant_number_of_queries(
    pki, users, settings, django_assert_max_num_queries
):
    settings.CONVERSATION_LIST_PAGE = 10
    alice = users["alice"]
    extra = [User.objects.create_user(f"user{n}") for n in range(3)]
    for n in range(25):
        conversations.create_conversation(
            alice, ["bob", *(u.username for u in extra)], title=f"{n}"
        )
    with django_assert_max_num_queries(2):
        first, more = conversations.list_conversations(alice, 1)
    assert (len(first), more) == (10, True)
    assert all(len(c["members"]) == 5 for c in first)
    _, _ = conversations.list_conversations(alice, 2)
    last, more = conversations.list_conversations(alice, 3)
    assert (len(last), more) == (5, False)
    seen = {c["id"] for page in (1, 2, 3) for c in conversations.list_conversations(alice, page)[0]}
    assert len(seen) == 25


@pytest.mark.django_db
def test_the_backlog_at_connect_is_one_query_bounded_in_all_and_in_order(
    pki, users, settings, django_assert_max_num_queries
):
    from chat.services import messages
    from chat.tests.factories import make_member, seal

    settings.BACKLOG_MAX_MESSAGES = 7
    alice, bob = make_member(users["alice"]), make_member(users["bob"])
    first = conversations.create_conversation(alice.user, ["bob"], title="first")
    second = conversations.create_conversation(alice.user, ["bob"], title="second")
    for conversation in (first, second):
        for n in range(5):
            messages.accept_message(alice.user, seal(alice, conversation.id, 1, f"m{n}"))
    messages.acknowledge_delivery(str(first.id), bob.user, 2)  # bob had the first two
    with django_assert_max_num_queries(1):
        backlog = messages.undelivered(bob.user)
    assert len(backlog) == 7  # 3 + 5 waiting, bounded to 7
    by_conversation: dict[str, list[int]] = {}
    for message in backlog:
        by_conversation.setdefault(message["conversation"], []).append(message["order"])
    for orders in by_conversation.values():
        assert orders == sorted(orders)
    assert by_conversation.get(str(first.id), [3, 4, 5])[0] == 3  # nothing already delivered
    assert messages.undelivered(alice.user) == []  # never your own messages
