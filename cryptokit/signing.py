"""Signatures, one dispatch by key type. Wire formats are fixed by what browsers make:

* ed25519: the raw 64-byte signature;
* ecdsa-p256: SHA-256, raw IEEE P1363 r||s (64 bytes), as WebCrypto produces;
* rsa-pss: SHA-256, MGF1-SHA256, salt length 32;
* dsa: SHA-256, DER SEQUENCE(r, s), as OpenSSL and jsrsasign produce.
"""

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from cryptokit.errors import CryptoError
from cryptokit.keys import load_public_key

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
P256_BYTES = 32


def sign(private_key, data: bytes) -> bytes:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(P256_BYTES, "big") + s.to_bytes(P256_BYTES, "big")
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, PSS, hashes.SHA256())
    if isinstance(private_key, dsa.DSAPrivateKey):
        return private_key.sign(data, hashes.SHA256())
    raise CryptoError("unsupported_key", "This key type cannot sign.")


def _verify(public_key, signature: bytes, data: bytes) -> None:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, data)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if len(signature) != 2 * P256_BYTES:
            raise InvalidSignature
        r = int.from_bytes(signature[:P256_BYTES], "big")
        s = int.from_bytes(signature[P256_BYTES:], "big")
        public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, PSS, hashes.SHA256())
    elif isinstance(public_key, dsa.DSAPublicKey):
        public_key.verify(signature, data, hashes.SHA256())
    else:
        raise CryptoError("unsupported_key", "This key type cannot verify.")


def verify(public_key, signature: bytes, data: bytes) -> None:
    """Raise CryptoError("bad_signature") unless `signature` over `data` verifies.
    `public_key` may be a key object or SubjectPublicKeyInfo DER."""
    if isinstance(public_key, bytes | bytearray | memoryview):
        public_key = load_public_key(bytes(public_key))
    try:
        _verify(public_key, bytes(signature), data)
    except (InvalidSignature, ValueError, TypeError):
        raise CryptoError("bad_signature", "The signature does not verify.") from None


def generate_signing_key(algorithm: str, *, dsa_parameters=None, rsa_bits: int = 3072):
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa-pss":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if algorithm == "dsa":
        parameters = dsa_parameters or dsa.generate_parameters(key_size=2048)
        return parameters.generate_private_key()
    raise CryptoError("unsupported_key", f"Unknown signing algorithm {algorithm!r}.")


def generate_encryption_key(bits: int = 3072) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
