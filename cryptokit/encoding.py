"""Byte-exact encodings that get signed or authenticated (a JS port must match them).

Every field is u32be(length) || bytes. Integers are fields of 8 bytes, big-endian
unsigned (so `00 00 00 08` + 8 bytes), in [0, 2**64). Strings are UTF-8. Binary fields
are raw bytes. Each encoding opens with a domain tag field, so a signature made for one
purpose can never be replayed as another; the second field is PROTOCOL_VERSION where a
version is carried.

* message_header: tag "securechat.message-header.v2", version 2, conversation_id, epoch,
  sender, sender_serial, device (32 lowercase hex), sequence, timestamp_ms. The AES-GCM
  associated data.
* message_signed_bytes: tag "securechat.message.v1", header, iv, ciphertext (with tag).
  What the sender signs.
* distribution_record: tag "securechat.epoch.v2", version 2, conversation_id, epoch,
  previous_epoch, roster_epoch, key_origin, signer, signer_serial, member count, then
  for each member sorted by the UTF-8 bytes of the username: username, encryption
  serial, SHA-256(wrapped key) (both empty for a member who holds no key), then the
  count of membership statements applied and their SHA-256 digests sorted bytewise.
* membership_statement: tag "securechat.membership.v1", version 1, conversation_id,
  key_origin, roster_epoch, action, subject, SHA-256(subject signing SPKI), SHA-256(
  subject encryption SPKI) (both empty unless action is "add"), actor, actor_serial,
  nonce.
* pop_challenge: tag "securechat.pop.v1", username, nonce, signing_spki, encryption_spki.

Serials are certificate serial numbers as lowercase hex, and conversation ids lowercase
UUID strings; anything else is refused so the two sides can never sign different
spellings of one value.
"""

import hashlib
import re
import struct
from collections.abc import Sequence

PROTOCOL_VERSION = 2  # messages (header and signed bytes); 2 added the sending device
RECORD_VERSION = 2  # distribution records
STATEMENT_VERSION = 1  # membership statements
KEY_ORIGINS = ("server", "members")
MEMBERSHIP_ACTIONS = ("add", "leave", "remove")
MAX_INT = 2**64 - 1
_SERIAL = re.compile(r"[0-9a-f]+")
_DEVICE = re.compile(r"[0-9a-f]{32}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

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


def _conversation(value: str) -> str:
    # One spelling only: a signature over "ABC..." must not verify for "abc...".
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError("a conversation id is a lowercase UUID string")
    return value


def _device(value: str) -> str:
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise ValueError("a device id is 32 lowercase hex characters")
    return value


def message_header(
    *,
    conversation_id: str,
    epoch: int,
    sender: str,
    sender_serial: str,
    device: str,
    sequence: int,
    timestamp_ms: int,
) -> bytes:
    """The AES-GCM associated data of a message. `sequence` counts per sending device
    (a tab, a client session), so several devices of one user never collide."""
    return encode(
        b"securechat.message-header.v2",
        PROTOCOL_VERSION,
        _conversation(conversation_id),
        epoch,
        sender,
        _serial(sender_serial),
        _device(device),
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
    previous_epoch: int,
    roster_epoch: int,
    key_origin: str,
    signer: str,
    signer_serial: str,
    members: list[tuple[str, str, bytes]],
    changes: Sequence[bytes] = (),
) -> bytes:
    """What the distributor of an epoch key signs: the chain link (previous epoch, the
    epoch whose record last changed the member list), every member with the serial and
    key hash it was given (serial "" and no key for a member without a usable key), and
    the membership statements this record applies (as SHA-256 of their signed bytes)."""
    if key_origin not in KEY_ORIGINS:
        raise ValueError("key_origin is 'server' or 'members'")
    names = [member[0] for member in members]
    if len(set(names)) != len(names):
        raise ValueError("duplicate member in a distribution record")
    if not 0 <= previous_epoch < epoch or not 1 <= roster_epoch <= epoch:
        raise ValueError("previous_epoch < epoch and 1 <= roster_epoch <= epoch")
    fields: list[Field] = [
        b"securechat.epoch.v2",
        RECORD_VERSION,
        _conversation(conversation_id),
        epoch,
        previous_epoch,
        roster_epoch,
        str(key_origin),  # a Django TextChoices member is a str; encode its plain value
        signer,
        _serial(signer_serial),
        len(members),
    ]
    # Sorted so the record does not depend on the order the members arrived in; bytewise
    # on UTF-8 because JavaScript's default sort (UTF-16 units) differs beyond U+FFFF.
    for username, serial, wrapped in sorted(members, key=lambda m: m[0].encode()):
        if (serial == "") != (len(wrapped) == 0):
            raise ValueError("a member has a serial and a wrapped key, or neither")
        digest = hashlib.sha256(bytes(wrapped)).digest() if serial else b""
        fields += [username, _serial(serial) if serial else "", digest]
    digests = sorted(hashlib.sha256(bytes(change)).digest() for change in changes)
    if len(set(digests)) != len(digests):
        raise ValueError("duplicate membership statement in a distribution record")
    fields += [len(digests), *digests]
    return encode(*fields)


def membership_statement(
    *,
    conversation_id: str,
    key_origin: str,
    roster_epoch: int,
    action: str,
    subject: str,
    subject_signing_sha256: bytes,
    subject_encryption_sha256: bytes,
    actor: str,
    actor_serial: str,
    nonce: bytes,
) -> bytes:
    """What a member signs to add someone ("add": the invitee's key hashes, SHA-256 of each
    SPKI), to leave ("leave": actor == subject) or to remove someone ("remove": the
    owner). Bound to the member list it was made against (`roster_epoch`), so it applies
    once: the record that applies it starts a new roster."""
    if action not in MEMBERSHIP_ACTIONS:
        raise ValueError("action is 'add', 'leave' or 'remove'")
    hashes = (bytes(subject_signing_sha256), bytes(subject_encryption_sha256))
    if action == "add" and any(len(h) != 32 for h in hashes):
        raise ValueError("an addition names the invitee's two 32-byte key hashes")
    if action != "add" and any(hashes):
        raise ValueError("only an addition names key hashes")
    if action == "leave" and actor != subject:
        raise ValueError("only the member who leaves signs a leave")
    if not 16 <= len(nonce) <= 64:
        raise ValueError("the nonce is 16 to 64 bytes")
    if roster_epoch < 1:
        raise ValueError("roster_epoch starts at 1")
    return encode(
        b"securechat.membership.v1",
        STATEMENT_VERSION,
        _conversation(conversation_id),
        str(key_origin),
        roster_epoch,
        action,
        subject,
        *hashes,
        actor,
        _serial(actor_serial),
        bytes(nonce),
    )


def pop_challenge(
    *, username: str, nonce: bytes, signing_spki: bytes, encryption_spki: bytes
) -> bytes:
    """What a client signs to prove possession of its signing key at registration."""
    return encode(b"securechat.pop.v1", username, nonce, signing_spki, encryption_spki)
