"""Events are written to the outbox in the transaction of the change they announce and
leave after it commits (chat/outbox.py), to a user's personal group (every open tab) or
to a conversation's group. A rollback leaves nothing to announce; a Redis outage delays
announcements but loses none."""

from collections.abc import Iterable

from django.db import transaction

from chat import outbox
from chat.models import OutboxEvent


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id) -> str:
    """Accepts a UUID or its string form; both name the same group."""
    return f"conversation.{conversation_id}"


def _write(groups: list[str], event: dict) -> None:
    if not groups:
        return
    OutboxEvent.objects.create(groups=groups, event={**event, "id": None})
    transaction.on_commit(outbox.wake)


def publish_to_users(user_ids: Iterable[int], event: dict) -> None:
    _write([user_group(user_id) for user_id in sorted(set(user_ids))], event)


def publish_to_conversation(conversation_id, event: dict) -> None:
    _write([conversation_group(conversation_id)], event)
