"""The client's side of proof of possession, shared by the Python client and the
`issue_demo_keys` command."""

from cryptokit import encoding, signing, wrapping
from cryptokit.keys import spki_der


def answer_challenge(
    *, username: str, nonce: bytes, encrypted_secret: bytes, signing_key, encryption_key
) -> tuple[bytes, bytes]:
    """Return (signature over the challenge, decrypted secret)."""
    signed = encoding.pop_challenge(
        username=username,
        nonce=nonce,
        signing_spki=spki_der(signing_key.public_key()),
        encryption_spki=spki_der(encryption_key.public_key()),
    )
    return signing.sign(signing_key, signed), wrapping.oaep_decrypt(
        encryption_key, encrypted_secret
    )
