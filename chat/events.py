"""Events leave only after the transaction that caused them commits, through the channel
layer: to a user's personal group (every open tab) or to a conversation's group."""

from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id) -> str:
    """Accepts a UUID or its string form; both name the same group."""
    return f"conversation.{conversation_id}"


def _send(groups: list[str], event: dict) -> None:
    layer = get_channel_layer()
    for group in groups:
        async_to_sync(layer.group_send)(group, {"type": "chat.event", "event": event})


def publish_to_users(user_ids: Iterable[int], event: dict) -> None:
    groups = [user_group(user_id) for user_id in sorted(set(user_ids))]
    transaction.on_commit(lambda: _send(groups, {**event, "id": None}))


def publish_to_conversation(conversation_id, event: dict) -> None:
    group = conversation_group(conversation_id)
    transaction.on_commit(lambda: _send([group], {**event, "id": None}))
