"""Accepting a message (every check of DESIGN.md §5, then store, then announce), history
and delivery receipts."""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from accounts.models import User
from chat.errors import ChatError
from chat.events import publish_to_conversation, publish_to_users
from chat.models import Conversation, DeviceSequence, KeyEpoch, Membership, Message, WrappedKey
from chat.serializers import message_json
from chat.services.conversations import membership_of
from chat.services.epochs import rotation_due, start_epoch
from cryptokit import encoding, signing
from cryptokit.errors import CryptoError
from keys.services import require_usable_certificate

IV_BYTES = 12


@dataclass(frozen=True)
class OutgoingMessage:
    conversation_id: str
    client_id: uuid.UUID
    epoch: int
    sequence: int
    timestamp_ms: int
    sender_serial: str
    device: str
    iv: bytes
    ciphertext: bytes
    signature: bytes


@dataclass(frozen=True)
class Accepted:
    order: int
    conversation_id: str
    client_id: str
    members: dict[int, str]  # user id -> username, current members (for "offline" notices)


def _check_sizes(message: OutgoingMessage) -> None:
    if len(message.iv) != IV_BYTES:
        raise ChatError("bad_iv", "The IV must be 12 bytes.")
    if not message.ciphertext or len(message.ciphertext) > settings.MESSAGE_MAX_BYTES:
        raise ChatError("too_large", f"Ciphertext must be 1 to {settings.MESSAGE_MAX_BYTES} bytes.")


def _check_epoch(conversation: Conversation, number: int) -> KeyEpoch:
    if conversation.pending_epoch is not None:
        raise ChatError("epoch_pending", "A new key is being made; send again in a moment.")
    epochs = {
        e.number: e
        for e in KeyEpoch.objects.filter(
            conversation=conversation, number__in=[number, conversation.current_epoch]
        )
    }
    current = epochs.get(conversation.current_epoch)
    if number == conversation.current_epoch and current:
        return current
    # Only a join keeps the previous key valid, briefly, for messages already in flight;
    # after a leave or removal the old key must not carry anything new.
    in_grace = (
        current is not None
        and number == conversation.current_epoch - 1
        and current.reason == KeyEpoch.Reason.JOINED
        and (timezone.now() - current.created).total_seconds() < settings.EPOCH_GRACE_SECONDS
    )
    if in_grace and number in epochs:
        return epochs[number]
    raise ChatError("stale_epoch", f"Use the current epoch {conversation.current_epoch}.")


def _check_signature(sender: User, conversation: Conversation, message: OutgoingMessage) -> None:
    # A refusal here is a PkiError (certificate_revoked, ...): the consumer replies with it.
    certificate = require_usable_certificate(message.sender_serial, kind="signing", owner=sender)
    header = encoding.message_header(
        conversation_id=str(conversation.id),
        epoch=message.epoch,
        sender=sender.username,
        sender_serial=message.sender_serial,
        device=message.device,
        sequence=message.sequence,
        timestamp_ms=message.timestamp_ms,
    )
    signed = encoding.message_signed_bytes(
        header=header, iv=message.iv, ciphertext=message.ciphertext
    )
    try:
        signing.verify(bytes(certificate.spki_der), message.signature, signed)
    except CryptoError:
        raise ChatError("bad_signature", "The message signature does not verify.") from None


def _already_stored(sender: User, message: OutgoingMessage) -> Message | None:
    return Message.objects.filter(sender=sender, client_id=message.client_id).first()


def accept_message(sender: User, message: OutgoingMessage) -> Accepted:
    """Check, store and (after commit) announce one message; a retried client_id is
    acknowledged again without being stored twice."""
    _check_sizes(message)
    try:
        return _store_message(sender, message)
    except IntegrityError:  # the same client_id raced in twice: the first one won
        stored = _already_stored(sender, message)
        if stored is None:
            raise
        return _acknowledge_again(stored, message)


def _acknowledge_again(stored: Message, message: OutgoingMessage) -> Accepted:
    """A retry is acknowledged with the original order; a client_id reused for another
    conversation is refused (it names one message in one conversation)."""
    if str(stored.conversation_id) != message.conversation_id:
        raise ChatError("client_id_reused", "This client_id names a message elsewhere.")
    return Accepted(stored.order, message.conversation_id, str(message.client_id), {})


def _advance_sequence(conversation: Conversation, sender: User, message: OutgoingMessage) -> None:
    counter, _ = DeviceSequence.objects.select_for_update().get_or_create(
        conversation=conversation, sender=sender, device=message.device
    )
    if message.sequence <= counter.last_sequence:
        raise ChatError("replayed", "This sequence number was already used by this device.")
    counter.last_sequence = message.sequence
    counter.save(update_fields=["last_sequence"])


@transaction.atomic
def _store_message(sender: User, message: OutgoingMessage) -> Accepted:
    membership = membership_of(message.conversation_id, sender, lock=True)
    conversation = membership.conversation
    stored = _already_stored(sender, message)
    if stored is not None:
        return _acknowledge_again(stored, message)
    epoch = _check_epoch(conversation, message.epoch)
    _check_signature(sender, conversation, message)
    _advance_sequence(conversation, sender, message)
    conversation.last_order += 1
    conversation.save(update_fields=["last_order"])
    stored = Message.objects.create(
        conversation=conversation,
        order=conversation.last_order,
        epoch=message.epoch,
        sender=sender,
        sender_serial=message.sender_serial,
        device=message.device,
        sequence=message.sequence,
        client_id=message.client_id,
        timestamp_ms=message.timestamp_ms,
        iv=message.iv,
        ciphertext=message.ciphertext,
        signature=message.signature,
        size=len(message.ciphertext),
    )
    publish_to_conversation(
        conversation.id, {"type": "message.new", "message": message_json(stored, sender.username)}
    )
    epoch.message_count += 1
    epoch.save(update_fields=["message_count"])
    if epoch.number == conversation.current_epoch and rotation_due(epoch):
        start_epoch(conversation, KeyEpoch.Reason.ROTATION)
    members = dict(
        Membership.objects.filter(conversation=conversation, left__isnull=True).values_list(
            "user_id", "user__username"
        )
    )
    return Accepted(stored.order, str(conversation.id), str(message.client_id), members)


def readable_epochs(conversation_id: str, user: User) -> list[int]:
    """Epochs the user held a key for: exactly the epochs they were a member in."""
    return list(
        WrappedKey.objects.filter(epoch__conversation_id=conversation_id, member=user)
        .exclude(certificate_serial="")  # listed without a key: not readable
        .values_list("epoch__number", flat=True)
    )


def history(
    conversation_id: str, user: User, *, since: int | None, before: int | None, limit: int
) -> tuple[list[dict], bool]:
    """Messages by order (ascending), only from epochs the reader was a member of."""
    membership_of(conversation_id, user)
    query = Message.objects.filter(
        conversation_id=conversation_id, epoch__in=readable_epochs(conversation_id, user)
    ).select_related("sender")
    if before is not None:
        page = list(query.filter(order__lt=before).order_by("-order")[: limit + 1])
        has_more, page = len(page) > limit, page[:limit]
        page.reverse()
    else:
        page = list(query.filter(order__gt=since or 0).order_by("order")[: limit + 1])
        has_more, page = len(page) > limit, page[:limit]
    return [message_json(m, m.sender.username) for m in page], has_more


def undelivered(user: User, limit: int | None = None) -> list[dict]:
    """Messages stored while the user was away, across conversations, each conversation's in
    order: one query, at most BACKLOG_MAX_MESSAGES in all (the work at connect is bounded;
    a client fetches the rest with `conversation.history since`, as after any reconnect)."""
    active = Membership.objects.filter(user=user, left__isnull=True)
    cursor = active.filter(conversation_id=OuterRef("conversation_id")).values("delivered_upto")[:1]
    readable = (
        WrappedKey.objects.filter(
            member=user,
            epoch__conversation_id=OuterRef("conversation_id"),
            epoch__number=OuterRef("epoch"),
        ).exclude(certificate_serial="")  # listed without a key: not readable
    )
    messages = (
        Message.objects.filter(conversation_id__in=active.values("conversation_id"))
        .exclude(sender=user)
        .annotate(cursor=Subquery(cursor))
        .filter(order__gt=F("cursor"))
        .filter(Exists(readable))
        .select_related("sender")
        .order_by("conversation_id", "order")[: limit or settings.BACKLOG_MAX_MESSAGES]
    )
    return [message_json(m, m.sender.username) for m in messages]


@transaction.atomic
def acknowledge_delivery(conversation_id: str, user: User, up_to: int) -> int:
    """Move the user's delivery cursor and tell each sender, in one frame per sender,
    which of their messages reached this user."""
    membership = membership_of(conversation_id, user)
    previous = membership.delivered_upto
    up_to = min(up_to, membership.conversation.last_order)
    if up_to <= previous:
        return previous
    Membership.objects.filter(pk=membership.pk).update(delivered_upto=up_to)
    by_sender: dict[int, list[int]] = {}
    for sender_id, order in (
        Message.objects.filter(
            conversation_id=conversation_id,
            order__gt=previous,
            order__lte=up_to,
            # a receipt only for what this member can read: not the past before they joined
            epoch__in=readable_epochs(conversation_id, user),
        )
        .exclude(sender=user)
        .values_list("sender_id", "order")
    ):
        by_sender.setdefault(sender_id, []).append(order)
    for sender_id, orders in by_sender.items():
        publish_to_users(
            [sender_id],
            {
                "type": "message.delivered",
                "conversation": conversation_id,
                "recipient": user.username,
                "orders": sorted(orders),
            },
        )
    return up_to
