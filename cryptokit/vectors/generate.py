"""Write the shared test vectors: `python -m cryptokit.vectors.generate [--new-keys]`.

The JSON files are the contract with the JavaScript implementation; bytes are lowercase
hex. Deterministic outputs (encodings, fingerprints, safety numbers) are recomputed from
fixed inputs; the tests recompute them again from the JSON, so any drift fails.

Signatures need private keys, which are never stored: keys are generated, used to sign
and thrown away, and only public SPKIs and signatures are written. Without --new-keys the
existing signatures.json is kept and its public keys are reused for the safety-number
vectors, so adding an encoding case does not churn keys; pass --new-keys only when a
signature format changes.
"""

import argparse
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, utils

from cryptokit import encoding, signing
from cryptokit.fingerprints import fingerprint, safety_number
from cryptokit.keys import SIGNING_ALGORITHMS, spki_der

HERE = Path(__file__).parent
CONVERSATION = "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b"
# U+FA0E sorts before U+20000 in UTF-8 bytes (and code points) but after it in UTF-16
# code units, which is what JavaScript's default string comparison uses.
BMP_HIGH_NAME = "user\ufa0e"
ASTRAL_NAME = "user\U00020000"
MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer a JSON number carries exactly in JS
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493


def _header_cases() -> list[dict]:
    return [
        {
            "name": "basic",
            "input": {
                "conversation_id": CONVERSATION,
                "epoch": 3,
                "sender": "alice",
                "sender_serial": "5f3a9c",
                "device": "0123456789abcdef0123456789abcdef",
                "sequence": 42,
                "timestamp_ms": 1764000000000,
            },
        },
        {
            "name": "non-ascii sender, zero and large integers",
            "input": {
                "conversation_id": CONVERSATION,
                "epoch": 0,
                "sender": "zoë",
                "sender_serial": "0",
                "device": "ffffffffffffffffffffffffffffffff",
                "sequence": MAX_SAFE_INTEGER,
                "timestamp_ms": 0,
            },
        },
    ]


def _statement_cases() -> list[dict]:
    return [
        {
            "name": "addition names the invitee's key hashes",
            "input": {
                "conversation_id": CONVERSATION,
                "key_origin": "members",
                "roster_epoch": 4,
                "action": "add",
                "subject": "dave",
                "subject_signing_sha256": bytes(range(32)).hex(),
                "subject_encryption_sha256": bytes(range(32, 64)).hex(),
                "actor": "alice",
                "actor_serial": "0a0a",
                "nonce": bytes(range(16)).hex(),
            },
        },
        {
            "name": "leave, signed by the leaver, non-ascii name",
            "input": {
                "conversation_id": CONVERSATION,
                "key_origin": "members",
                "roster_epoch": 1,
                "action": "leave",
                "subject": "zoë",
                "subject_signing_sha256": "",
                "subject_encryption_sha256": "",
                "actor": "zoë",
                "actor_serial": "2e",
                "nonce": "ff" * 32,
            },
        },
        {
            "name": "removal by the owner",
            "input": {
                "conversation_id": CONVERSATION,
                "key_origin": "members",
                "roster_epoch": 9,
                "action": "remove",
                "subject": "mallory",
                "subject_signing_sha256": "",
                "subject_encryption_sha256": "",
                "actor": "alice",
                "actor_serial": "0a0a",
                "nonce": "01" * 16,
            },
        },
    ]


def _record_cases() -> list[dict]:
    statements = [statement_from(case["input"]).hex() for case in _statement_cases()]
    return [
        {
            "name": "server origin, members given out of order",
            "input": {
                "conversation_id": CONVERSATION,
                "epoch": 3,
                "previous_epoch": 2,
                "roster_epoch": 2,
                "key_origin": "server",
                "signer": "server",
                "signer_serial": "5e5e",
                "members": [
                    ["bob", "0b0b", b"wrapped-for-bob".hex()],
                    ["alice", "0a0a", b"wrapped-for-alice".hex()],
                ],
                "changes": [],
            },
        },
        {
            "name": "members origin, UTF-8 byte order differs from UTF-16 order",
            "input": {
                "conversation_id": CONVERSATION,
                "epoch": 7,
                "previous_epoch": 5,
                "roster_epoch": 4,
                "key_origin": "members",
                "signer": "carol",
                "signer_serial": "1f",
                "members": [
                    [ASTRAL_NAME, "a1", bytes(range(32)).hex()],
                    ["carol", "c3", bytes(range(64, 96)).hex()],
                    [BMP_HIGH_NAME, "b2", bytes(range(32, 64)).hex()],
                ],
                "changes": [],
            },
        },
        {
            "name": "single member, first epoch",
            "input": {
                "conversation_id": CONVERSATION,
                "epoch": 1,
                "previous_epoch": 0,
                "roster_epoch": 1,
                "key_origin": "server",
                "signer": "server",
                "signer_serial": "5e5e",
                "members": [["alice", "0a0a", "00"]],
                "changes": [],
            },
        },
        {
            "name": "members origin applying statements (given out of digest order), "
            "a member without a key",
            "input": {
                "conversation_id": CONVERSATION,
                "epoch": 5,
                "previous_epoch": 4,
                "roster_epoch": 5,
                "key_origin": "members",
                "signer": "alice",
                "signer_serial": "0a0a",
                "members": [
                    ["alice", "0a0a", b"wrapped-for-alice".hex()],
                    ["dave", "0d0d", b"wrapped-for-dave".hex()],
                    ["erin", "", ""],
                ],
                "changes": [statements[0], statements[2]],
            },
        },
    ]


def _pop_cases() -> list[dict]:
    return [
        {
            "name": "non-ascii username",
            "input": {
                "username": "zoë",
                "nonce": "00" * 32,
                "signing_spki": "3001",
                "encryption_spki": "3002",
            },
        },
        {
            "name": "counting nonce",
            "input": {
                "username": "alice",
                "nonce": bytes(range(32)).hex(),
                "signing_spki": "30" * 44,
                "encryption_spki": "31" * 300,
            },
        },
    ]


def _refused_cases() -> list[dict]:
    header = _header_cases()[0]["input"]
    record = _record_cases()[0]["input"]
    statement = _statement_cases()[0]["input"]
    return [
        {
            "function": "message_header",
            "why": "integer out of range (2**64)",
            "input": {**header, "epoch": 2**64},
        },
        {
            "function": "message_header",
            "why": "negative integer",
            "input": {**header, "sequence": -1},
        },
        {
            "function": "message_header",
            "why": "serial not lowercase hex",
            "input": {**header, "sender_serial": "5F3A9C"},
        },
        {
            "function": "distribution_record",
            "why": "duplicate member",
            "input": {**record, "members": [*record["members"], ["bob", "0c0c", "00"]]},
        },
        {
            "function": "distribution_record",
            "why": "unknown key origin",
            "input": {**record, "key_origin": "client"},
        },
        {
            "function": "distribution_record",
            "why": "previous epoch not before the epoch",
            "input": {**record, "previous_epoch": 3},
        },
        {
            "function": "distribution_record",
            "why": "a serial without a wrapped key",
            "input": {**record, "members": [["bob", "0b0b", ""]]},
        },
        {
            "function": "message_header",
            "why": "device id not 32 lowercase hex characters",
            "input": {**header, "device": "0123456789ABCDEF0123456789ABCDEF"},
        },
        {
            "function": "message_header",
            "why": "conversation id in upper case",
            "input": {**header, "conversation_id": CONVERSATION.upper()},
        },
        {
            "function": "membership_statement",
            "why": "a leave signed by someone else",
            "input": {
                **statement,
                "action": "leave",
                "actor": "alice",
                "subject": "bob",
                "subject_signing_sha256": "",
                "subject_encryption_sha256": "",
            },
        },
        {
            "function": "membership_statement",
            "why": "an addition without key hashes",
            "input": {**statement, "subject_encryption_sha256": ""},
        },
        {
            "function": "membership_statement",
            "why": "a nonce shorter than 16 bytes",
            "input": {**statement, "nonce": "00" * 8},
        },
        {
            "function": "membership_statement",
            "why": "unknown action",
            "input": {**statement, "action": "promote"},
        },
    ]


def header_from(data: dict) -> bytes:
    """message_header from a JSON input."""
    return encoding.message_header(**data)


def signed_bytes_from(data: dict) -> bytes:
    """message_signed_bytes from a JSON input."""
    return encoding.message_signed_bytes(**{k: bytes.fromhex(v) for k, v in data.items()})


def record_from(data: dict) -> bytes:
    """distribution_record from a JSON input (changes: statement bytes as hex)."""
    members = [(u, s, bytes.fromhex(w)) for u, s, w in data["members"]]
    changes = [bytes.fromhex(c) for c in data["changes"]]
    return encoding.distribution_record(**{**data, "members": members, "changes": changes})


def statement_from(data: dict) -> bytes:
    """membership_statement from a JSON input."""
    binary = ("subject_signing_sha256", "subject_encryption_sha256", "nonce")
    return encoding.membership_statement(
        **{k: bytes.fromhex(v) if k in binary else v for k, v in data.items()}
    )


def pop_from(data: dict) -> bytes:
    """pop_challenge from a JSON input."""
    return encoding.pop_challenge(
        username=data["username"],
        **{k: bytes.fromhex(data[k]) for k in ("nonce", "signing_spki", "encryption_spki")},
    )


BUILDERS = {
    "message_header": header_from,
    "message_signed_bytes": signed_bytes_from,
    "distribution_record": record_from,
    "membership_statement": statement_from,
    "pop_challenge": pop_from,
}


def encoding_vectors() -> dict:
    """Every encoding case with its expected hex output."""
    headers = _header_cases()
    signed = [
        {
            "name": "basic",
            "input": {
                "header": header_from(headers[0]["input"]).hex(),
                "iv": bytes(range(12)).hex(),
                "ciphertext": "deadbeef00ff",
            },
        },
        {
            "name": "second header, 32-byte ciphertext",
            "input": {
                "header": header_from(headers[1]["input"]).hex(),
                "iv": "ff" * 12,
                "ciphertext": bytes(range(32)).hex(),
            },
        },
    ]
    cases = {
        "message_header": headers,
        "message_signed_bytes": signed,
        "distribution_record": _record_cases(),
        "membership_statement": _statement_cases(),
        "pop_challenge": _pop_cases(),
    }
    out: dict = {
        "description": (
            "Each field is u32be(len) || bytes; integers are 8-byte big-endian unsigned; "
            "strings UTF-8; bytes given as hex (wrapped keys, nonces, SPKIs, iv, "
            "ciphertext, header). Members are [username, serial, wrapped_key_hex] and "
            "are hashed and sorted by UTF-8 bytes of username; a member without a key has "
            "serial '' and wrapped key '' and encodes an empty hash field. A record's "
            "changes are membership_statement encodings (hex), included as their SHA-256 "
            "sorted bytewise. 'refused' inputs must raise an error."
        )
    }
    for function, entries in cases.items():
        out[function] = [
            {**entry, "hex": BUILDERS[function](entry["input"]).hex()} for entry in entries
        ]
    out["refused"] = _refused_cases()
    return out


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def _wrong_format(algorithm: str, key: object, message: bytes, good: bytes) -> tuple[str, bytes]:
    """A signature that is mathematically right but in a format the protocol refuses."""
    if algorithm == "ed25519":
        s = int.from_bytes(good[32:], "little") + ED25519_ORDER  # S >= L: malleated
        return "non-canonical S (S + L)", good[:32] + s.to_bytes(32, "little")
    if algorithm == "ecdsa-p256":
        return "DER instead of raw r||s", key.sign(message, ec.ECDSA(hashes.SHA256()))
    if algorithm == "rsa-pss":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20)
        return "PSS salt length 20 instead of 32", key.sign(message, pss, hashes.SHA256())
    r, s = utils.decode_dss_signature(good)  # dsa: q is 256 bits, so 32-byte halves
    return "raw r||s instead of DER", r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signature_vectors() -> dict:
    """New keys sign fixed messages; only public keys and signatures are kept."""
    parameters = dsa.generate_parameters(key_size=2048)
    encodings = encoding_vectors()
    messages = [
        b"SecureChat signature vector",
        signed_bytes_from(encodings["message_signed_bytes"][0]["input"]),
        statement_from(encodings["membership_statement"][0]["input"]),  # signed by a member
        record_from(encodings["distribution_record"][3]["input"]),  # signed by the key maker
    ]
    keys = []
    for algorithm in SIGNING_ALGORITHMS:
        key = signing.generate_signing_key(algorithm, dsa_parameters=parameters, rsa_bits=2048)
        cases = []
        for message in messages:
            good = signing.sign(key, message)
            cases.append({"message": message.hex(), "signature": good.hex(), "valid": True})
        message, good = messages[0], bytes.fromhex(cases[0]["signature"])
        note, wrong = _wrong_format(algorithm, key, message, good)
        cases += [
            {
                "note": "last signature byte flipped",
                "message": message.hex(),
                "signature": _flip_last_byte(good).hex(),
                "valid": False,
            },
            {
                "note": "message changed",
                "message": _flip_last_byte(message).hex(),
                "signature": good.hex(),
                "valid": False,
            },
            {"note": note, "message": message.hex(), "signature": wrong.hex(), "valid": False},
        ]
        keys.append(
            {"algorithm": algorithm, "spki": spki_der(key.public_key()).hex(), "cases": cases}
        )
        del key  # private keys are never written anywhere
    return {
        "description": (
            "Wire formats: ed25519 raw 64 bytes; ecdsa-p256 SHA-256 raw r||s (64 bytes); "
            "rsa-pss SHA-256, MGF1-SHA256, salt 32; dsa SHA-256, DER SEQUENCE {r, s}. "
            "Cases with valid=false must be refused."
        ),
        "keys": keys,
    }


def safety_vectors(spkis: dict[str, bytes]) -> dict:
    """Fingerprints of the signature vectors' keys and safety numbers between them."""
    a, a2 = spkis["ed25519"], spkis["rsa-pss"]
    b, b2 = spkis["ecdsa-p256"], spkis["dsa"]
    pairs = [
        ("alice and bob", "alice", a, "bob", b),
        ("same pair, bob computing (arguments swapped)", "bob", b, "alice", a),
        ("bob's key changed", "alice", a, "bob", b2),
        ("alice's key changed", "alice", a2, "bob", b),
        ("usernames whose UTF-8 and UTF-16 orders differ", ASTRAL_NAME, a, BMP_HIGH_NAME, b),
        ("same usernames, keys exchanged", ASTRAL_NAME, b, BMP_HIGH_NAME, a),
    ]
    return {
        "description": (
            "fingerprint = SHA-256(spki) uppercase hex, 16 groups of 4. safety number: "
            "sort (utf8(username), spki) pairs bytewise; SHA-512 of "
            "'securechat.safety-number.v1' || per pair u32be(len) username u32be(len) spki; "
            "first 30 bytes as six 5-byte big-endian integers mod 100000, 5 digits each."
        ),
        "fingerprints": [
            {"spki": spki.hex(), "fingerprint": fingerprint(spki)} for spki in spkis.values()
        ],
        "safety_numbers": [
            {
                "name": name,
                "user_a": user_a,
                "spki_a": spki_a.hex(),
                "user_b": user_b,
                "spki_b": spki_b.hex(),
                "number": safety_number(user_a, spki_a, user_b, spki_b),
            }
            for name, user_a, spki_a, user_b, spki_b in pairs
        ],
    }


def _write(name: str, data: dict) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    (HERE / f"{name}.json").write_text(text, encoding="utf-8")


def load(name: str) -> dict:
    """One vectors file, parsed."""
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    """Rewrite the vector files (keeping signatures.json unless --new-keys)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-keys", action="store_true", help="new keys and signatures")
    args = parser.parse_args(argv)
    if args.new_keys or not (HERE / "signatures.json").exists():
        _write("signatures", signature_vectors())
    spkis = {
        entry["algorithm"]: bytes.fromhex(entry["spki"]) for entry in load("signatures")["keys"]
    }
    _write("encoding", encoding_vectors())
    _write("safety_numbers", safety_vectors(spkis))


if __name__ == "__main__":
    main()
