"""RSA-OAEP-SHA256 key wrapping and AES-256-GCM message encryption."""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cryptokit.errors import CryptoError
from cryptokit.keys import load_public_key

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
IV_BYTES = 12


def oaep_encrypt(public_key, plaintext: bytes) -> bytes:
    if isinstance(public_key, bytes | bytearray | memoryview):
        public_key = load_public_key(bytes(public_key))
    return public_key.encrypt(plaintext, OAEP)


def oaep_decrypt(private_key, ciphertext: bytes) -> bytes:
    try:
        return private_key.decrypt(bytes(ciphertext), OAEP)
    except ValueError:
        raise CryptoError(
            "unwrap_failed", "The wrapped key cannot be opened with this key."
        ) from None


def new_epoch_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def aes_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Encrypt under a fresh random 96-bit IV; returns (iv, ciphertext with tag)."""
    iv = os.urandom(IV_BYTES)
    return iv, AESGCM(key).encrypt(iv, plaintext, aad)


def aes_gcm_decrypt(key: bytes, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    if len(iv) != IV_BYTES:
        raise CryptoError("bad_iv", "The IV must be 12 bytes.")
    try:
        return AESGCM(key).decrypt(bytes(iv), bytes(ciphertext), aad)
    except InvalidTag:
        raise CryptoError("decrypt_failed", "The message does not decrypt (tampered?).") from None
