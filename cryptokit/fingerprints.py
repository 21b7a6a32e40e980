"""Key fingerprints and pairwise safety numbers (a JS port must follow these exactly)."""

import hashlib
import struct

SAFETY_TAG = b"securechat.safety-number.v1"


def fingerprint(spki_der: bytes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, uppercase hex in 16 groups of 4."""
    digest = hashlib.sha256(spki_der).hexdigest().upper()
    return " ".join(digest[i : i + 4] for i in range(0, 64, 4))


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def safety_number(user_a: str, spki_a: bytes, user_b: str, spki_b: bytes) -> str:
    """Same for both parties: sort the (username UTF-8, spki) pairs ascending; SHA-512 of
    the tag followed by u32be-length-prefixed username and spki of each pair; the first 30
    bytes as six big-endian 5-byte integers mod 100000, zero-padded, space-separated."""
    pairs = sorted([(user_a.encode(), bytes(spki_a)), (user_b.encode(), bytes(spki_b))])
    data = SAFETY_TAG + b"".join(_lp(name) + _lp(spki) for name, spki in pairs)
    digest = hashlib.sha512(data).digest()
    chunks = (int.from_bytes(digest[i : i + 5], "big") % 100000 for i in range(0, 30, 5))
    return " ".join(f"{chunk:05d}" for chunk in chunks)
