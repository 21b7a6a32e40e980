"""Byte-exact encodings that get signed or authenticated (a JS port must match them).

Every field is u32be(length) || bytes. Integers are fields of 8 bytes, big-endian
unsigned (so `00 00 00 08` + 8 bytes), in [0, 2**64). Strings are UTF-8. Binary fields
are raw bytes. Each encoding opens with a domain tag field, so a signature made for one
purpose can never be replayed as another; the second field is PROTOCOL_VERSION where a
version is carried.

* message_header: tag "securechat.message-header.v1", version, conversation_id, epoch,
  sender, sender_serial, sequence, timestamp_ms. The AES-GCM associated data.
* message_signed_bytes: tag "securechat.message.v1", header, iv, ciphertext (with tag).
  What the sender signs.
* distribution_record: tag "securechat.epoch.v1", version, conversation_id, epoch,
  key_origin, signer, signer_serial, member count, then for each member sorted by the
  UTF-8 bytes of the username: username, encryption serial, SHA-256(wrapped key).
* pop_challenge: tag "securechat.pop.v1", username, nonce, signing_spki, encryption_spki.

Serials are certificate serial numbers as lowercase hex; anything else is refused so the
two sides can never sign different spellings of one serial.
"""

import hashlib
import re
import struct

PROTOCOL_VERSION = 1
KEY_ORIGINS = ("server", "members")
MAX_INT = 2**64 - 1
_SERIAL = re.compile(r"[0-9a-f]+")

Field = bytes | bytearray | memoryview | str | int


def _field(value: Field) -> bytes:
    # bool is an int subclass; True encoding as 1 would hide a caller's mistake.
    if isinstance(value, bool):
        raise TypeError("booleans are not encodable")
    if isinstance(value, int):
        if not 0 <= value <= MAX_INT:
            raise ValueError("integers must be in [0, 2**64)")
        data = value.to_bytes(8, "big")
    elif isinstance(value, str):
        data = value.encode()
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    else:
        raise TypeError(f"cannot encode a {type(value).__name__}")
    if len(data) > 0xFFFFFFFF:
        raise ValueError("a field is limited to 2**32 - 1 bytes")
    return struct.pack(">I", len(data)) + data


def encode(*fields: Field) -> bytes:
    """Concatenate length-prefixed fields (the building block of every encoding)."""
    return b"".join(_field(value) for value in fields)


def _serial(value: str) -> str:
    if not isinstance(value, str) or not _SERIAL.fullmatch(value):
        raise ValueError("a serial is lowercase hex")
    return value


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
        _serial(sender_serial),
        sequence,
        timestamp_ms,
    )


def message_signed_bytes(*, header: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """What the sender of a message signs."""
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
    """What the distributor of an epoch key signs: members, their serials, key hashes."""
    if key_origin not in KEY_ORIGINS:
        raise ValueError("key_origin is 'server' or 'members'")
    names = [member[0] for member in members]
    if len(set(names)) != len(names):
        raise ValueError("duplicate member in a distribution record")
    fields: list[Field] = [
        b"securechat.epoch.v1",
        PROTOCOL_VERSION,
        conversation_id,
        epoch,
        str(key_origin),  # a Django TextChoices member is a str; encode its plain value
        signer,
        _serial(signer_serial),
        len(members),
    ]
    # Sorted so the record does not depend on the order the members arrived in; bytewise
    # on UTF-8 because JavaScript's default sort (UTF-16 units) differs beyond U+FFFF.
    for username, serial, wrapped in sorted(members, key=lambda m: m[0].encode()):
        fields += [username, _serial(serial), hashlib.sha256(bytes(wrapped)).digest()]
    return encode(*fields)


def pop_challenge(
    *, username: str, nonce: bytes, signing_spki: bytes, encryption_spki: bytes
) -> bytes:
    """What a client signs to prove possession of its signing key at registration."""
    return encode(b"securechat.pop.v1", username, nonce, signing_spki, encryption_spki)
