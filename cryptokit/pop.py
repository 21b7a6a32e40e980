"""The client's side of proof of possession, shared by the Python client and the
`issue_demo_keys` command."""

from cryptography.hazmat.primitives.asymmetric import rsa

from cryptokit import encoding, signing, wrapping
from cryptokit.keys import spki_der


def answer_challenge(
    *,
    username: str,
    nonce: bytes,
    encrypted_secret: bytes,
    signing_key: signing.SigningKey,
    encryption_key: rsa.RSAPrivateKey,
) -> tuple[bytes, bytes]:
    """Return (signature over the challenge, decrypted secret)."""
    # Signing covers both public keys, so the answer cannot be replayed for another pair.
    signed = encoding.pop_challenge(
        username=username,
        nonce=nonce,
        signing_spki=spki_der(signing_key.public_key()),
        encryption_spki=spki_der(encryption_key.public_key()),
    )
    secret = wrapping.oaep_decrypt(encryption_key, encrypted_secret)
    return signing.sign(signing_key, signed), secret
