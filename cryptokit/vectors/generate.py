"""Regenerate the shared test vectors: `python -m cryptokit.vectors.generate`.

Deterministic outputs (encodings, fingerprints, safety numbers) are recomputed by the
tests; signatures are stored with public keys only, so the JS side can verify them.
Re-running changes the keys and signatures; only do it when a format changes.
"""

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import dsa

from cryptokit import encoding, signing
from cryptokit.fingerprints import fingerprint, safety_number
from cryptokit.keys import spki_der

HERE = Path(__file__).parent


def encoding_cases() -> dict:
    header_input = {
        "conversation_id": "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b",
        "epoch": 3,
        "sender": "alice",
        "sender_serial": "5f3a9c",
        "sequence": 42,
        "timestamp_ms": 1764000000000,
    }
    header = encoding.message_header(**header_input)
    iv, ciphertext = bytes(range(12)), bytes.fromhex("deadbeef00ff")
    members = [("bob", "0b0b", b"wrapped-for-bob"), ("alice", "0a0a", b"wrapped-for-alice")]
    record_input = {
        "conversation_id": header_input["conversation_id"],
        "epoch": 3,
        "key_origin": "server",
        "signer": "server",
        "signer_serial": "5e5e",
    }
    return {
        "message_header": {"input": header_input, "hex": header.hex()},
        "message_signed_bytes": {
            "input": {"header": header.hex(), "iv": iv.hex(), "ciphertext": ciphertext.hex()},
            "hex": encoding.message_signed_bytes(header=header, iv=iv, ciphertext=ciphertext).hex(),
        },
        "distribution_record": {
            "input": {**record_input, "members": [[u, s, w.hex()] for u, s, w in members]},
            "hex": encoding.distribution_record(**record_input, members=members).hex(),
        },
        "pop_challenge": {
            "input": {
                "username": "zoë",
                "nonce": "00" * 32,
                "signing_spki": "3001",
                "encryption_spki": "3002",
            },
            "hex": encoding.pop_challenge(
                username="zoë",
                nonce=bytes(32),
                signing_spki=b"\x30\x01",
                encryption_spki=b"\x30\x02",
            ).hex(),
        },
    }


def main() -> None:
    parameters = dsa.generate_parameters(key_size=2048)
    message = b"SecureChat signature vector"
    signatures, spkis = [], {}
    for algorithm in ("ed25519", "ecdsa-p256", "rsa-pss", "dsa"):
        key = signing.generate_signing_key(algorithm, dsa_parameters=parameters, rsa_bits=2048)
        spki = spki_der(key.public_key())
        spkis[algorithm] = spki
        signatures.append(
            {
                "algorithm": algorithm,
                "spki": spki.hex(),
                "message": message.hex(),
                "signature": signing.sign(key, message).hex(),
            }
        )
    a, b, c = spkis["ed25519"], spkis["ecdsa-p256"], spkis["dsa"]
    safety = {
        "fingerprints": [{"spki": s.hex(), "fingerprint": fingerprint(s)} for s in (a, b)],
        "safety_numbers": [
            {
                "user_a": "alice",
                "spki_a": a.hex(),
                "user_b": "bob",
                "spki_b": b.hex(),
                "number": safety_number("alice", a, "bob", b),
            },
            {
                "user_a": "alice",
                "spki_a": a.hex(),
                "user_b": "bob",
                "spki_b": c.hex(),
                "number": safety_number("alice", a, "bob", c),
            },
        ],
    }
    for name, data in (
        ("encoding", encoding_cases()),
        ("signatures", signatures),
        ("safety_numbers", safety),
    ):
        (HERE / f"{name}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
