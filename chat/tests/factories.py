"""Build real keys, epoch keys and signed encrypted messages for service-level tests."""

import time
import uuid
from dataclasses import dataclass

from accounts.models import User
from chat.models import WrappedKey
from chat.services.messages import OutgoingMessage
from cryptokit import encoding, signing, wrapping
from keys.demo import certify_new_keys


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
        sequence=sequence,
        timestamp_ms=timestamp,
    )
    iv, ciphertext = wrapping.aes_gcm_encrypt(key, text.encode(), header)
    signed = encoding.message_signed_bytes(header=header, iv=iv, ciphertext=ciphertext)
    return OutgoingMessage(
        conversation_id=str(conversation_id),
        client_id=uuid.uuid4(),
        epoch=number,
        sequence=sequence,
        timestamp_ms=timestamp,
        sender_serial=member.signing_serial,
        iv=iv,
        ciphertext=ciphertext,
        signature=signing.sign(member.signing_key, signed),
    )
