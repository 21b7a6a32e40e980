"""Signatures, one dispatch by key type. Wire formats are fixed by what browsers make:

* ed25519: the raw 64-byte signature (RFC 8032);
* ecdsa-p256: SHA-256, raw IEEE P1363 r||s, each 32 bytes big-endian (64 bytes), as
  WebCrypto produces; DER is refused;
* rsa-pss: SHA-256, MGF1-SHA256, salt length exactly 32 bytes, signature as long as the
  modulus;
* dsa: SHA-256, DER SEQUENCE { INTEGER r, INTEGER s }, as OpenSSL and jsrsasign produce.

`verify` is purely algorithmic: which certificate may sign what is the caller's rule.
"""

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from cryptokit.errors import CryptoError
from cryptokit.keys import SIGNING_ALGORITHMS, load_public_key

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
P256_BYTES = 32  # size of r and of s in the P1363 encoding

SigningKey = (
    ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | dsa.DSAPrivateKey
)


def _is_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bool:
    return isinstance(key.curve, ec.SECP256R1)


def sign(private_key: SigningKey, data: bytes) -> bytes:
    """Sign `data` in the wire format of the key's algorithm."""
    data = bytes(data)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        # r||s with 32-byte halves only makes sense on P-256, the one curve we accept.
        if not _is_p256(private_key):
            raise CryptoError("unsupported_key", "Only P-256 ECDSA keys can sign.")
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(P256_BYTES, "big") + s.to_bytes(P256_BYTES, "big")
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, PSS, hashes.SHA256())
    if isinstance(private_key, dsa.DSAPrivateKey):
        return private_key.sign(data, hashes.SHA256())
    raise CryptoError("unsupported_key", "This key type cannot sign.")


def _verify(public_key: PublicKeyTypes, signature: bytes, data: bytes) -> None:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, data)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if not _is_p256(public_key) or len(signature) != 2 * P256_BYTES:
            raise InvalidSignature
        r = int.from_bytes(signature[:P256_BYTES], "big")
        s = int.from_bytes(signature[P256_BYTES:], "big")
        public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, PSS, hashes.SHA256())
    elif isinstance(public_key, dsa.DSAPublicKey):
        public_key.verify(signature, data, hashes.SHA256())
    else:
        raise InvalidSignature


def verify(public_key_or_spki: object | bytes, signature: bytes, data: bytes) -> None:
    """Return if `signature` over `data` verifies, else raise CryptoError("bad_signature")."""
    # Every failure, an unusable key included, is the same "bad_signature": a signature
    # that cannot be checked is as worthless as a forged one, and callers need one branch.
    try:
        public_key = public_key_or_spki
        if isinstance(public_key, bytes | bytearray | memoryview):
            public_key = load_public_key(public_key)
        _verify(public_key, bytes(signature), bytes(data))
    except (CryptoError, InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        raise CryptoError("bad_signature", "The signature does not verify.") from None


def generate_signing_key(
    algorithm: str, *, dsa_parameters: dsa.DSAParameters | None = None, rsa_bits: int = 3072
) -> SigningKey:
    """A new private signing key for one of SIGNING_ALGORITHMS."""
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa-pss":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if algorithm == "dsa":
        # Generating DSA domain parameters takes a while; callers with shared ones pass them.
        if dsa_parameters is None:
            dsa_parameters = dsa.generate_parameters(key_size=2048)
        return dsa_parameters.generate_private_key()
    raise CryptoError(
        "unsupported_key", f"Unknown signing algorithm; expected one of {SIGNING_ALGORITHMS}."
    )


def generate_encryption_key(bits: int = 3072) -> rsa.RSAPrivateKey:
    """A new RSA private key for OAEP key wrapping."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
