"""The user's private keys: made on this device, saved as PKCS#8 files (mode 0600)."""

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from cryptokit.signing import generate_encryption_key, generate_signing_key


@dataclass
class KeyPair:
    signing_key: object
    encryption_key: object
    signing_serial: str = ""
    encryption_serial: str = ""


def generate_key_pair(algorithm: str, *, dsa_parameters=None, rsa_bits: int = 3072) -> KeyPair:
    return KeyPair(
        generate_signing_key(algorithm, dsa_parameters=dsa_parameters, rsa_bits=rsa_bits),
        generate_encryption_key(rsa_bits),
    )


def _write(path: Path, key) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def save_private_keys(directory: Path, keys: KeyPair) -> None:
    """The same layout `manage.py issue_demo_keys` writes."""
    _write(directory / "signing.pem", keys.signing_key)
    _write(directory / "encryption.pem", keys.encryption_key)


def load_private_keys(directory: Path) -> KeyPair:
    def read(name: str):
        return serialization.load_pem_private_key((directory / name).read_bytes(), password=None)

    return KeyPair(read("signing.pem"), read("encryption.pem"))
