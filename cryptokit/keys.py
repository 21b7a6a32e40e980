"""Public-key parsing and the key policy (which algorithms and sizes we accept)."""

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from cryptokit.errors import CryptoError

SIGNING_ALGORITHMS = ("ed25519", "ecdsa-p256", "rsa-pss", "dsa")
ENCRYPTION_ALGORITHM = "rsa-oaep"
RSA_SIZES = range(2048, 4097)
DSA_SIZES = {(2048, 256), (3072, 256)}


@dataclass(frozen=True)
class KeyInfo:
    algorithm: str
    key_size: int
    public_key: object
    spki_der: bytes


def load_public_key(spki_der: bytes):
    try:
        return serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CryptoError("malformed_key", "The key is not a valid SubjectPublicKeyInfo.") from None


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_rsa(key: rsa.RSAPublicKey) -> None:
    if key.key_size < 2048:
        raise CryptoError("key_too_small", "RSA keys must have at least 2048 bits.")
    if key.key_size not in RSA_SIZES or key.public_numbers().e != 65537:
        raise CryptoError("unsupported_key", "RSA keys must be 2048-4096 bits with e = 65537.")


def inspect_signing_key(spki: bytes) -> KeyInfo:
    """Accept Ed25519, ECDSA P-256, RSA (for PSS) 2048-4096 and DSA 2048/256 or 3072/256."""
    key = load_public_key(spki)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyInfo("ed25519", 256, key, spki)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CryptoError("unsupported_key", "Only the P-256 curve is accepted for ECDSA.")
        return KeyInfo("ecdsa-p256", 256, key, spki)
    if isinstance(key, rsa.RSAPublicKey):
        _check_rsa(key)
        return KeyInfo("rsa-pss", key.key_size, key, spki)
    if isinstance(key, dsa.DSAPublicKey):
        numbers = key.parameters().parameter_numbers()
        sizes = (numbers.p.bit_length(), numbers.q.bit_length())
        if sizes not in DSA_SIZES:
            code = "key_too_small" if sizes[0] < 2048 or sizes[1] < 256 else "unsupported_key"
            raise CryptoError(code, "DSA keys must be 2048 or 3072 bits with a 256-bit q.")
        return KeyInfo("dsa", sizes[0], key, spki)
    raise CryptoError("unsupported_key", "Signing keys: Ed25519, ECDSA P-256, RSA-PSS or DSA.")


def inspect_encryption_key(spki: bytes) -> KeyInfo:
    """Accept RSA 2048-4096 (e = 65537), used with OAEP-SHA256."""
    key = load_public_key(spki)
    if not isinstance(key, rsa.RSAPublicKey):
        raise CryptoError("unsupported_key", "Encryption keys must be RSA (used with OAEP).")
    _check_rsa(key)
    return KeyInfo(ENCRYPTION_ALGORITHM, key.key_size, key, spki)
