"""Byte-exact encodings that get signed or authenticated.

Every field is u32be(length) + bytes. Integers are 8-byte big-endian unsigned, strings
UTF-8, binary fields raw. Each encoding opens with a domain tag field, so a signature
made for one purpose can never be replayed as another.
"""

import hashlib
import struct

PROTOCOL_VERSION = 1


def _field(value: bytes | str | int) -> bytes:
    if isinstance(value, bool):
        raise TypeError("booleans are not encodable")
    if isinstance(value, int):
        if not 0 <= value < 2**64:
            raise ValueError("integers must be in [0, 2**64)")
        value = value.to_bytes(8, "big")
    elif isinstance(value, str):
        value = value.encode()
    return struct.pack(">I", len(value)) + bytes(value)


def encode(*fields: bytes | str | int) -> bytes:
    return b"".join(_field(value) for value in fields)


def message_header(
    *,
    conversation_id: str,
    epoch: int,
    sender: str,
    sender_serial: str,
    sequence: int,
    timestamp_ms: int,
) -> bytes:
    """The AES-GCM associated data of a message."""
    return encode(
        b"securechat.message-header.v1",
        PROTOCOL_VERSION,
        conversation_id,
        epoch,
        sender,
        sender_serial,
        sequence,
        timestamp_ms,
    )


def message_signed_bytes(*, header: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """What the sender signs."""
    return encode(b"securechat.message.v1", header, iv, ciphertext)


def distribution_record(
    *,
    conversation_id: str,
    epoch: int,
    key_origin: str,
    signer: str,
    signer_serial: str,
    members: list[tuple[str, str, bytes]],
) -> bytes:
    """What the distributor of an epoch key signs: the exact member list, each member's
    encryption certificate serial and the SHA-256 of the key wrapped for them."""
    names = [member[0] for member in members]
    if len(set(names)) != len(names):
        raise ValueError("duplicate member in a distribution record")
    fields: list[bytes | str | int] = [
        b"securechat.epoch.v1",
        PROTOCOL_VERSION,
        conversation_id,
        epoch,
        key_origin,
        signer,
        signer_serial,
        len(members),
    ]
    for username, serial, wrapped in sorted(members, key=lambda m: m[0].encode()):
        fields += [username, serial, hashlib.sha256(wrapped).digest()]
    return encode(*fields)


def pop_challenge(
    *, username: str, nonce: bytes, signing_spki: bytes, encryption_spki: bytes
) -> bytes:
    """What a client signs to prove possession of its signing key at registration."""
    return encode(b"securechat.pop.v1", username, nonce, signing_spki, encryption_spki)
