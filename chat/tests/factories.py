"""Build real keys, epoch keys and signed encrypted messages for service-level tests."""

import os
import time
import uuid
from dataclasses import dataclass

from accounts.models import User
from chat.models import Conversation, WrappedKey
from chat.services import epochs
from chat.services.messages import OutgoingMessage
from chat.services.statements import pending_changes, statement_of
from client.securechat_client.conversation import encode_body
from cryptokit import encoding, signing, wrapping
from cryptokit.membership import Statement, key_hashes, roster_after
from keys.demo import certify_new_keys

DEVICE = "d" * 32  # one sending device per member in service tests


@dataclass
class Member:
    user: User
    signing_key: object
    encryption_key: object
    signing_serial: str
    encryption_serial: str
    sequence: int = 0


def make_member(user: User, algorithm: str = "ed25519") -> Member:
    signing_key, encryption_key, signing_cert, encryption_cert = certify_new_keys(
        user, algorithm, rsa_bits=2048
    )
    return Member(user, signing_key, encryption_key, signing_cert.serial, encryption_cert.serial)


def epoch_key(member: Member, conversation_id, number: int) -> bytes:
    wrapped = WrappedKey.objects.get(
        epoch__conversation_id=conversation_id, epoch__number=number, member=member.user
    )
    return wrapping.oaep_decrypt(member.encryption_key, bytes(wrapped.wrapped_key))


def seal(
    member: Member,
    conversation_id,
    number: int,
    text: str,
    *,
    key: bytes | None = None,
    sequence: int | None = None,
    device: str = DEVICE,
) -> OutgoingMessage:
    """Encrypt and sign `text` as `member` would, for epoch `number`."""
    key = key or epoch_key(member, conversation_id, number)
    if sequence is None:
        member.sequence += 1
        sequence = member.sequence
    timestamp = int(time.time() * 1000)
    header = encoding.message_header(
        conversation_id=str(conversation_id),
        epoch=number,
        sender=member.user.username,
        sender_serial=member.signing_serial,
        device=device,
        sequence=sequence,
        timestamp_ms=timestamp,
    )
    iv, ciphertext = wrapping.aes_gcm_encrypt(key, encode_body(text), header)
    signed = encoding.message_signed_bytes(header=header, iv=iv, ciphertext=ciphertext)
    return OutgoingMessage(
        conversation_id=str(conversation_id),
        client_id=uuid.uuid4(),
        epoch=number,
        sequence=sequence,
        timestamp_ms=timestamp,
        sender_serial=member.signing_serial,
        device=device,
        iv=iv,
        ciphertext=ciphertext,
        signature=signing.sign(member.signing_key, signed),
    )


def sign_statement(
    actor: Member, conversation: Conversation, action: str, subject: Member
) -> Statement:
    """`actor`'s signed membership statement about `subject`, against the current roster."""
    conversation.refresh_from_db()
    hashes = (b"", b"")
    if action == "add":
        hashes = key_hashes(subject.signing_key.public_key(), subject.encryption_key.public_key())
    return Statement.create(
        str(conversation.id),
        actor.signing_key,
        action=action,
        subject=subject.user.username,
        actor=actor.user.username,
        actor_serial=actor.signing_serial,
        roster_epoch=conversation.roster_epoch,
        key_hashes=hashes,
    )


def member_record(
    maker: Member, conversation: Conversation, members: list[Member], *, garbage_for=()
) -> tuple[list[tuple[str, str, bytes]], bytes]:
    """(members, signature) of the pending members-mode epoch, made by `maker` as an honest
    client would (a random 256-byte blob instead of the key for `garbage_for`)."""
    conversation.refresh_from_db()
    changes = pending_changes(conversation)
    number = conversation.pending_epoch
    key = wrapping.new_epoch_key()
    wrapped = [
        (
            m.user.username,
            m.encryption_serial,
            os.urandom(256)
            if m.user.username in garbage_for
            else wrapping.oaep_encrypt(m.encryption_key.public_key(), key),
        )
        for m in members
    ]
    record = encoding.distribution_record(
        conversation_id=str(conversation.id),
        epoch=number,
        previous_epoch=conversation.current_epoch,
        roster_epoch=roster_after(number, conversation.roster_epoch, changes_members=bool(changes)),
        key_origin="members",
        signer=maker.user.username,
        signer_serial=maker.signing_serial,
        members=wrapped,
        changes=[statement_of(c).signed_bytes(str(conversation.id)) for c in changes],
    )
    return wrapped, signing.sign(maker.signing_key, record)


def submit_key(maker: Member, conversation: Conversation, members: list[Member], **kwargs) -> int:
    wrapped, signature = member_record(maker, conversation, members, **kwargs)
    return epochs.submit_member_epoch(
        str(conversation.id),
        maker.user,
        number=conversation.pending_epoch,
        signer_serial=maker.signing_serial,
        signature=signature,
        members=wrapped,
    )
