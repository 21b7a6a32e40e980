"""The outbox: events are rows of the transaction that announces them; a row is claimed by
one worker at a time, given back when its sending fails, and never sent twice once
marked."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from chat import outbox
from chat.events import publish_to_users
from chat.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=False)


def test_an_event_of_a_rolled_back_change_is_never_announced():
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_to_users([1], {"type": "member.joined"})
        raise RuntimeError("the change fails")
    assert not OutboxEvent.objects.exists()


def test_a_claimed_event_goes_to_one_worker_until_released_or_its_lease_ends(settings):
    publish_to_users([1, 2], {"type": "member.joined"})
    first = outbox._claim_batch()
    assert [row.groups for row in first] == [["user.1", "user.2"]]
    assert outbox._claim_batch() == []  # another worker finds nothing to send
    outbox._release([row.pk for row in first])
    again = outbox._claim_batch()
    assert [row.pk for row in again] == [row.pk for row in first]
    OutboxEvent.objects.update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    assert len(outbox._claim_batch()) == 1  # the claiming worker died: the lease ran out


def test_a_sent_event_is_not_sent_again_and_old_ones_are_deleted(settings):
    publish_to_users([1], {"type": "member.joined"})
    publish_to_users([2], {"type": "member.left"})
    claimed = outbox._claim_batch()
    outbox._mark_sent([claimed[0].pk])
    outbox._release([claimed[1].pk])
    assert [row.event["type"] for row in outbox._claim_batch()] == ["member.left"]
    settings.OUTBOX_KEEP_SECONDS = 0
    outbox._mark_sent([claimed[1].pk])
    OutboxEvent.objects.update(sent_at=timezone.now() - dt.timedelta(seconds=5))
    outbox._mark_sent([])
    assert not OutboxEvent.objects.exists()


def test_a_process_without_a_publisher_sends_at_commit_and_keeps_its_transaction(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):  # a command or a script
        publish_to_users([1], {"type": "member.joined"})
    sent = OutboxEvent.objects.get()  # this connection still works after the send
    assert sent.sent_at is not None
