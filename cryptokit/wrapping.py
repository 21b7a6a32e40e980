"""RSA-OAEP-SHA256 key wrapping and AES-256-GCM message encryption.

* OAEP: SHA-256, MGF1-SHA256, empty label (WebCrypto's RSA-OAEP with hash SHA-256).
* AES-256-GCM: a 32-byte key, a random 12-byte IV per message, a 16-byte tag appended to
  the ciphertext (WebCrypto's layout), the message header as associated data.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cryptokit.errors import CryptoError
from cryptokit.keys import load_public_key

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16


def oaep_encrypt(public_key_or_spki: rsa.RSAPublicKey | bytes, plaintext: bytes) -> bytes:
    """Wrap `plaintext` (an epoch key or a challenge secret) for an RSA public key."""
    public_key = public_key_or_spki
    if isinstance(public_key, bytes | bytearray | memoryview):
        public_key = load_public_key(public_key)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CryptoError("unsupported_key", "Only RSA keys can wrap with OAEP.")
    return public_key.encrypt(bytes(plaintext), OAEP)


def oaep_decrypt(private_key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    """Unwrap with an RSA private key, else CryptoError("unwrap_failed")."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise CryptoError("unsupported_key", "Only RSA keys can unwrap with OAEP.")
    try:
        return private_key.decrypt(bytes(ciphertext), OAEP)
    except ValueError:
        # One message for every padding failure: no oracle on why it failed.
        raise CryptoError(
            "unwrap_failed", "The wrapped key cannot be opened with this key."
        ) from None


def new_epoch_key() -> bytes:
    """32 random bytes from the OS, an AES-256 key."""
    return AESGCM.generate_key(bit_length=256)


def _aead(key: bytes) -> AESGCM:
    # AESGCM would also take 16- or 24-byte keys; a member-made epoch key must not
    # quietly downgrade the conversation to AES-128.
    if not isinstance(key, bytes | bytearray | memoryview) or len(key) != KEY_BYTES:
        raise CryptoError("bad_key", "An epoch key is 32 bytes.")
    return AESGCM(bytes(key))


def aes_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Encrypt under a fresh random 96-bit IV; return (iv, ciphertext with its tag)."""
    aead = _aead(key)
    # Random IVs are safe for 2**32 messages per key; epochs rotate long before that.
    iv = os.urandom(IV_BYTES)
    return iv, aead.encrypt(iv, bytes(plaintext), bytes(aad))


def aes_gcm_decrypt(key: bytes, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt and authenticate, else CryptoError("decrypt_failed") or ("bad_iv")."""
    aead = _aead(key)
    if len(iv) != IV_BYTES:
        raise CryptoError("bad_iv", "The IV must be 12 bytes.")
    try:
        return aead.decrypt(bytes(iv), bytes(ciphertext), bytes(aad))
    except InvalidTag:
        raise CryptoError("decrypt_failed", "The message does not decrypt (tampered?).") from None
