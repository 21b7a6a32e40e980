"""Key epochs: a fresh AES-256 key whenever membership changes, keys change, or the
rotation bound is reached, so a newcomer cannot read the past and a leaver the future.

Every record is a signed chain link (cryptokit.encoding.distribution_record): the epoch it
follows, the roster it starts or keeps, every member (with or without a key), and in
members mode the member-signed statements it applies."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from chat.errors import ChatError
from chat.events import publish_to_users
from chat.models import Conversation, KeyEpoch, Membership, MembershipChange, WrappedKey
from chat.presence import online_among_sync
from chat.serializers import epoch_json
from chat.services.statements import pending_changes, statement_json, statement_of
from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from cryptokit.membership import roster_after
from keys.models import Certificate
from keys.services import (
    active_encryption_certificates,
    require_usable_certificate,
    server_signer,
)
from securechat.jsonapi import b64

# Reasons whose server-mode record changes the member list (starts a new roster).
ROSTER_REASONS = {
    KeyEpoch.Reason.CREATED,
    KeyEpoch.Reason.JOINED,
    KeyEpoch.Reason.LEFT,
    KeyEpoch.Reason.REMOVED,
}


def current_member_ids(conversation: Conversation) -> list[int]:
    return list(
        Membership.objects.filter(conversation=conversation, left__isnull=True).values_list(
            "user_id", flat=True
        )
    )


def member_keys(conversation: Conversation) -> list[tuple[int, str, Certificate | None]]:
    """(user id, username, usable encryption certificate or None) of every current member,
    sorted by username."""
    members = dict(
        Membership.objects.filter(conversation=conversation, left__isnull=True).values_list(
            "user_id", "user__username"
        )
    )
    certificates = active_encryption_certificates(list(members))
    return sorted(
        ((pk, name, certificates.get(pk)) for pk, name in members.items()), key=lambda m: m[1]
    )


def _store_epoch(
    conversation: Conversation,
    number: int,
    reason: str,
    *,
    signer: str,
    signer_serial: str,
    signature: bytes,
    wrapped: list[tuple[int, str, bytes]],
    roster_epoch: int,
    changes: list[MembershipChange],
) -> None:
    """Persist an epoch and its wrapped keys, make it current, announce it after commit."""
    epoch = KeyEpoch.objects.create(
        conversation=conversation,
        number=number,
        reason=reason,
        signer=signer,
        signer_serial=signer_serial,
        signature=signature,
        key_origin=conversation.key_origin,
        previous_epoch=conversation.current_epoch,
        roster_epoch=roster_epoch,
    )
    WrappedKey.objects.bulk_create(
        WrappedKey(epoch=epoch, member_id=user_id, certificate_serial=serial, wrapped_key=key)
        for user_id, serial, key in wrapped
    )
    MembershipChange.objects.filter(pk__in=[c.pk for c in changes]).update(
        state=MembershipChange.State.APPLIED, applied_in=epoch
    )
    conversation.current_epoch = number
    conversation.roster_epoch = roster_epoch
    conversation.pending_epoch = None
    conversation.pending_asked = None
    conversation.save(
        update_fields=["current_epoch", "roster_epoch", "pending_epoch", "pending_asked"]
    )
    publish_to_users(
        [user_id for user_id, _, _ in wrapped],
        {"type": "epoch.new", "epoch": epoch_json(epoch, conversation)},
    )


def _server_epoch(conversation: Conversation, number: int, reason: str) -> None:
    members = member_keys(conversation)
    key = wrapping.new_epoch_key()
    wrapped = [
        (pk, cert.serial, wrapping.oaep_encrypt(bytes(cert.spki_der), key))
        if cert
        else (pk, "", b"")
        for pk, _, cert in members
    ]
    del key  # the plaintext key lives only for the wrapping above
    names = {pk: name for pk, name, _ in members}
    roster = roster_after(
        number, conversation.roster_epoch, changes_members=reason in ROSTER_REASONS
    )
    serial, private_key = server_signer()
    record = encoding.distribution_record(
        conversation_id=str(conversation.id),
        epoch=number,
        previous_epoch=conversation.current_epoch,
        roster_epoch=roster,
        key_origin=Conversation.KeyOrigin.SERVER,
        signer="server",
        signer_serial=serial,
        members=[(names[pk], s, w) for pk, s, w in wrapped],
    )
    _store_epoch(
        conversation,
        number,
        reason,
        signer="server",
        signer_serial=serial,
        signature=signing.sign(private_key, record),
        wrapped=wrapped,
        roster_epoch=roster,
        changes=[],
    )


def _choose_key_maker(conversation: Conversation, trigger: User | None) -> int:
    """The member asked to make the key: the one who triggered the change if online, else
    the first online member by username, else (nobody online) the trigger or the first;
    a member who connects later takes over a request whose member is offline."""
    members = [pk for pk, _, _ in member_keys(conversation)]
    online = online_among_sync(members)
    if trigger is not None and trigger.pk in members and trigger.pk in online:
        return trigger.pk
    for pk in members:
        if pk in online:
            return pk
    return trigger.pk if trigger is not None and trigger.pk in members else members[0]


def _request_member_epoch(
    conversation: Conversation, number: int, reason: str, trigger: User | None
) -> None:
    """Members mode: messages wait until the asked member's client submits the key."""
    conversation.pending_epoch = number
    conversation.pending_reason = reason
    conversation.pending_asked_id = _choose_key_maker(conversation, trigger)
    conversation.save(update_fields=["pending_epoch", "pending_reason", "pending_asked"])
    publish_to_users([conversation.pending_asked_id], epoch_request_json(conversation))


@transaction.atomic
def claim_key_request(conversation_id, user: User) -> dict | None:
    """At connect: the pending key request of a members-mode conversation, if this user is
    the member asked, or takes over from an asked member who is offline."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.pending_epoch is None or conversation.key_origin != "members":
        return None
    asked = conversation.pending_asked_id
    if asked != user.pk and asked is not None and online_among_sync([asked]):
        return None
    if asked != user.pk:
        conversation.pending_asked_id = user.pk
        conversation.save(update_fields=["pending_asked"])
    return epoch_request_json(conversation)


def _next_roster(conversation: Conversation, number: int, changes: list) -> int:
    return roster_after(number, conversation.roster_epoch, changes_members=bool(changes))


def epoch_request_json(conversation: Conversation) -> dict:
    changes = pending_changes(conversation)
    return {
        "type": "epoch.request",
        "conversation": str(conversation.id),
        "epoch": conversation.pending_epoch,
        "previous_epoch": conversation.current_epoch,
        "roster_epoch": _next_roster(conversation, conversation.pending_epoch, changes),
        "reason": conversation.pending_reason,
        "members": [
            {
                "username": name,
                "serial": cert.serial if cert else "",
                "certificate": b64(cert.certificate_der) if cert else "",
            }
            for _, name, cert in member_keys(conversation)
        ],
        "changes": [statement_json(change) for change in changes],
    }


def start_epoch(conversation: Conversation, reason: str, trigger: User | None = None) -> None:
    """Begin the next epoch (call inside the transaction that changed membership);
    `trigger` is the member whose action caused it, asked first in members mode."""
    number = max(conversation.current_epoch, conversation.pending_epoch or 0) + 1
    if conversation.key_origin == Conversation.KeyOrigin.SERVER:
        _server_epoch(conversation, number, reason)
    else:
        _request_member_epoch(conversation, number, reason, trigger)


def _require_wrapped_keys(
    members: list[tuple[str, str, bytes]], expected: list[tuple[int, str, Certificate | None]]
) -> list[tuple[int, str, bytes]]:
    """The submitted keys, if they give every current member (nobody else) a key of the
    right size for their active certificate, and no key to a member without one."""
    given = {username: (serial, key) for username, serial, key in members}
    if len(given) != len(members) or set(given) != {name for _, name, _ in expected}:
        raise ChatError("bad_distribution", "Every current member, and nobody else, is listed.")
    wrapped = []
    for pk, name, cert in expected:
        serial, key = given[name]
        if cert is None:
            if serial or key:
                raise ChatError("bad_distribution", f"{name} has no usable key to wrap for.")
        elif serial != cert.serial or len(key) != (cert.key_size + 7) // 8:
            raise ChatError("bad_distribution", f"{name}'s key is not for their certificate.")
        wrapped.append((pk, serial, key))
    return wrapped


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
    """Accept a members-mode key record from the member asked to make it, if it gives
    exactly every current member a key and its signature covers the chain link and the
    pending statements."""
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
    if conversation.pending_asked_id != user.pk:
        raise ChatError("not_asked", "Another member was asked to make this key.")
    certificate = require_usable_certificate(signer_serial, kind="signing", owner=user)
    wrapped = _require_wrapped_keys(members, member_keys(conversation))
    changes = pending_changes(conversation)
    roster = _next_roster(conversation, number, changes)
    try:
        record = encoding.distribution_record(
            conversation_id=str(conversation.id),
            epoch=number,
            previous_epoch=conversation.current_epoch,
            roster_epoch=roster,
            key_origin=Conversation.KeyOrigin.MEMBERS,
            signer=user.username,
            signer_serial=signer_serial,
            members=members,
            changes=[statement_of(c).signed_bytes(str(conversation.id)) for c in changes],
        )
        signing.verify(bytes(certificate.spki_der), signature, record)
    except (CryptoError, ValueError):
        raise ChatError("bad_distribution", "The distribution record's signature fails.") from None
    _store_epoch(
        conversation,
        number,
        conversation.pending_reason,
        signer=user.username,
        signer_serial=signer_serial,
        signature=signature,
        wrapped=wrapped,
        roster_epoch=roster,
        changes=changes,
    )
    return number


@transaction.atomic
def report_unreadable_epoch(conversation_id: str, user: User, number: int) -> int | None:
    """A member's key in the current members-mode epoch does not open (or its record does
    not verify for them): the reporter, who is not its maker, is asked for a new key, once
    per epoch, so no single member can leave the conversation without a working key.
    Returns the epoch now awaited, or None when this epoch was already reported."""
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    if conversation is None or not Membership.objects.filter(
        conversation=conversation, user=user, left__isnull=True
    ):
        raise ChatError("not_member", "You are not a member of this conversation.")
    if conversation.key_origin != Conversation.KeyOrigin.MEMBERS:
        raise ChatError("not_members_mode", "The server makes this conversation's keys.")
    epoch = KeyEpoch.objects.filter(conversation=conversation, number=number).first()
    if epoch is None or number != conversation.current_epoch or conversation.pending_epoch:
        raise ChatError("stale_epoch", "Only the current, settled epoch can be reported.")
    if epoch.signer == user.username:
        raise ChatError("bad_distribution", "You made this key; make a new one by leaving.")
    if epoch.reported:
        return None
    epoch.reported = True
    epoch.save(update_fields=["reported"])
    start_epoch(conversation, KeyEpoch.Reason.KEY_FAILED, trigger=user)
    return conversation.pending_epoch


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
    found = (
        KeyEpoch.objects.filter(
            conversation=conversation,
            number__in=numbers,
            wrapped_keys__member=user,
            wrapped_keys__certificate_serial__gt="",  # same row: listed with a key
        )
        .order_by("number")
        .distinct()
    )
    return [epoch_json(epoch, conversation) for epoch in found]
