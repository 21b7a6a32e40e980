"""Key fingerprints and pairwise safety numbers (a JS port must follow these exactly).

fingerprint(spki): SHA-256 of the SubjectPublicKeyInfo DER, uppercase hex, 16 groups of
4 characters separated by single spaces.

safety_number(user_a, spki_a, user_b, spki_b):

1. Make the pairs (UTF-8 bytes of username, SPKI DER) for both users and sort them
   ascending, comparing usernames bytewise first and SPKIs bytewise on a tie. Byte order
   matters: JavaScript's default string comparison uses UTF-16 code units and disagrees
   with UTF-8 byte order for characters beyond U+FFFF, so compare encoded bytes.
2. data = b"securechat.safety-number.v1" (raw, no length prefix), then for each pair in
   order: u32be(len(username)) || username || u32be(len(spki)) || spki.
3. digest = SHA-512(data).
4. Take digest[0:30] as six 5-byte chunks; each chunk read as a big-endian unsigned
   integer, mod 100000, zero-padded to 5 decimal digits.
5. Join the six groups with single spaces: "01234 56789 ..." (35 characters).

Both parties get the same number whichever side computes it; it changes whenever either
user's key (or name) changes.
"""

import hashlib
import struct

SAFETY_TAG = b"securechat.safety-number.v1"
SAFETY_GROUPS = 6
SAFETY_GROUP_BYTES = 5


def fingerprint(spki_der: bytes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, uppercase hex in 16 groups of 4."""
    digest = hashlib.sha256(bytes(spki_der)).hexdigest().upper()
    return " ".join(digest[i : i + 4] for i in range(0, 64, 4))


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def safety_number(user_a: str, spki_a: bytes, user_b: str, spki_b: bytes) -> str:
    """Six groups of five digits, the same for both users (see the module docstring)."""
    # Python compares bytes bytewise, which is the order the definition fixes.
    pairs = sorted([(user_a.encode(), bytes(spki_a)), (user_b.encode(), bytes(spki_b))])
    data = SAFETY_TAG + b"".join(_lp(name) + _lp(spki) for name, spki in pairs)
    digest = hashlib.sha512(data).digest()
    chunks = (
        int.from_bytes(digest[i : i + SAFETY_GROUP_BYTES], "big") % 100000
        for i in range(0, SAFETY_GROUPS * SAFETY_GROUP_BYTES, SAFETY_GROUP_BYTES)
    )
    return " ".join(f"{chunk:05d}" for chunk in chunks)
