"""Key epochs: a fresh AES-256 key whenever membership changes, keys change, or the
rotation bound is reached, so a newcomer cannot read the past and a leaver the future."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from chat.errors import ChatError
from chat.events import publish_to_users
from chat.models import Conversation, KeyEpoch, Membership, WrappedKey
from chat.presence import online_among_sync
from chat.serializers import epoch_json
from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from keys.services import (
    active_encryption_certificates,
    require_usable_certificate,
    server_signer,
)
from securechat.jsonapi import b64


def current_member_ids(conversation: Conversation) -> list[int]:
    return list(
        Membership.objects.filter(conversation=conversation, left__isnull=True).values_list(
            "user_id", flat=True
        )
    )


def _store_epoch(conversation, number, reason, signer, signer_serial, signature, wrapped) -> None:
    """Persist an epoch and its wrapped keys, make it current, announce it after commit."""
    epoch = KeyEpoch.objects.create(
        conversation=conversation,
        number=number,
        reason=reason,
        signer=signer,
        signer_serial=signer_serial,
        signature=signature,
    )
    WrappedKey.objects.bulk_create(
        WrappedKey(epoch=epoch, member_id=user_id, certificate_serial=serial, wrapped_key=key)
        for user_id, serial, key in wrapped
    )
    conversation.current_epoch = number
    conversation.pending_epoch = None
    conversation.save(update_fields=["current_epoch", "pending_epoch"])
    publish_to_users(
        [user_id for user_id, _, _ in wrapped],
        {"type": "epoch.new", "epoch": epoch_json(epoch, conversation)},
    )


def _server_epoch(conversation: Conversation, number: int, reason: str) -> None:
    member_ids = current_member_ids(conversation)
    certificates = active_encryption_certificates(member_ids)
    usernames = dict(User.objects.filter(pk__in=certificates).values_list("pk", "username"))
    key = wrapping.new_epoch_key()
    wrapped = [
        (user_id, cert.serial, wrapping.oaep_encrypt(bytes(cert.spki_der), key))
        for user_id, cert in certificates.items()
    ]
    del key  # the plaintext key lives only for the wrapping above
    serial, private_key = server_signer()
    record = encoding.distribution_record(
        conversation_id=str(conversation.id),
        epoch=number,
        key_origin=Conversation.KeyOrigin.SERVER,
        signer="server",
        signer_serial=serial,
        members=[(usernames[user_id], s, w) for user_id, s, w in wrapped],
    )
    _store_epoch(
        conversation, number, reason, "server", serial, signing.sign(private_key, record), wrapped
    )


def _request_member_epoch(
    conversation: Conversation, number: int, reason: str, trigger: User | None
) -> None:
    """Members mode: messages wait until a member's client submits the key. The member
    who triggered the change is asked; if there is none (a leave, a revoked key) or they
    are offline, every online member is, and the first valid answer wins."""
    conversation.pending_epoch = number
    conversation.pending_reason = reason
    conversation.save(update_fields=["pending_epoch", "pending_reason"])
    members = current_member_ids(conversation)
    asked = [trigger.pk] if trigger is not None and trigger.pk in members else []
    if not asked or not online_among_sync(asked):
        asked = members
    publish_to_users(asked, epoch_request_json(conversation, reason))


def epoch_request_json(conversation: Conversation, reason: str = "") -> dict:
    member_ids = current_member_ids(conversation)
    certificates = active_encryption_certificates(member_ids)
    return {
        "type": "epoch.request",
        "conversation": str(conversation.id),
        "epoch": conversation.pending_epoch,
        "reason": reason,
        "members": [
            {
                "username": cert.owner.username,
                "serial": cert.serial,
                "certificate": b64(cert.certificate_der),
            }
            for cert in sorted(certificates.values(), key=lambda c: c.owner.username)
        ],
    }


def start_epoch(conversation: Conversation, reason: str, trigger: User | None = None) -> None:
    """Begin the next epoch (call inside the transaction that changed membership);
    `trigger` is the member whose action caused it, asked first in members mode."""
    number = max(conversation.current_epoch, conversation.pending_epoch or 0) + 1
    if conversation.key_origin == Conversation.KeyOrigin.SERVER:
        _server_epoch(conversation, number, reason)
    else:
        _request_member_epoch(conversation, number, reason, trigger)


@transaction.atomic
def submit_member_epoch(
    conversation_id: str,
    user: User,
    *,
    number: int,
    signer_serial: str,
    signature: bytes,
    members: list[tuple[str, str, bytes]],
) -> int:
    """Accept a members-mode key distribution if it gives exactly every current member
    (with usable keys) a key for their active encryption certificate, signed by the
    submitting member's own signing certificate."""
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    if (
        conversation is None
        or not Membership.objects.filter(
            conversation=conversation, user=user, left__isnull=True
        ).exists()
    ):
        raise ChatError("not_member", "You are not a member of this conversation.")
    if conversation.key_origin != Conversation.KeyOrigin.MEMBERS:
        raise ChatError("bad_distribution", "The server makes this conversation's keys.")
    if conversation.pending_epoch != number:
        raise ChatError("stale_epoch", "No key is awaited for this epoch.")
    certificate = require_usable_certificate(signer_serial, kind="signing", owner=user)
    expected = {
        cert.owner.username: (user_id, cert.serial)
        for user_id, cert in active_encryption_certificates(
            current_member_ids(conversation)
        ).items()
    }
    given = {username: serial for username, serial, _ in members}
    if len(given) != len(members) or given != {u: s for u, (_, s) in expected.items()}:
        raise ChatError("bad_distribution", "Every current member, and nobody else, needs a key.")
    record = encoding.distribution_record(
        conversation_id=str(conversation.id),
        epoch=number,
        key_origin=Conversation.KeyOrigin.MEMBERS,
        signer=user.username,
        signer_serial=signer_serial,
        members=members,
    )
    try:
        signing.verify(bytes(certificate.spki_der), signature, record)
    except CryptoError:
        raise ChatError("bad_distribution", "The distribution record's signature fails.") from None
    wrapped = [(expected[u][0], s, w) for u, s, w in members]
    reason = conversation.pending_reason
    _store_epoch(conversation, number, reason, user.username, signer_serial, signature, wrapped)
    return number


def rotation_due(epoch: KeyEpoch) -> bool:
    age = (timezone.now() - epoch.created).total_seconds()
    return (
        epoch.message_count >= settings.EPOCH_MAX_MESSAGES or age >= settings.EPOCH_MAX_AGE_SECONDS
    )


def rekey_conversations_of(user: User, reason: str) -> list[Conversation]:
    """A member's keys changed or were revoked: every conversation of theirs starts a new
    epoch, each in its own transaction."""
    conversations = list(
        Conversation.objects.filter(memberships__user=user, memberships__left__isnull=True)
    )
    for conversation in conversations:
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
            start_epoch(locked, reason)
    return conversations


def readable_epoch_records(conversation_id: str, user: User, numbers: list[int]) -> list[dict]:
    """The requested epoch records that hold a key for `user` (its past stays closed)."""
    if not Membership.objects.filter(
        conversation_id=conversation_id, user=user, left__isnull=True
    ).exists():
        raise ChatError("not_member", "You are not a member of this conversation.")
    conversation = Conversation.objects.get(pk=conversation_id)
    found = KeyEpoch.objects.filter(
        conversation=conversation, number__in=numbers, wrapped_keys__member=user
    ).order_by("number")
    return [epoch_json(epoch, conversation) for epoch in found]
