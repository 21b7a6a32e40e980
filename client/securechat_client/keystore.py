"""The user's keys on this device, one directory per user: the two private keys as PKCS#8
PEM files (mode 0600; encrypted under a passphrase when one is given, else plaintext) and
the serials of their current certificates in `serials.json`, so a later run uses the same
keys and certificates instead of making new ones.

A passphrase is stretched with scrypt (parameters and salt in `kdf.json`) into the
password of the PEM files, which cryptography's BestAvailableEncryption encrypts with
PBES2 (AES-256-CBC) but only 2,048 PBKDF2 rounds: cheap to guess against on their own."""

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from cryptokit.signing import generate_encryption_key, generate_signing_key

from .errors import KeyStoreError

SIGNING_FILE, ENCRYPTION_FILE, SERIALS_FILE = "signing.pem", "encryption.pem", "serials.json"
KDF_FILE = "kdf.json"
# OWASP's scrypt floor (N=2^17, r=8, p=1): 128 MiB and a fraction of a second per login.
SCRYPT = {"n": 2**17, "r": 8, "p": 1}


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


def _password(directory: Path, passphrase: str | bytes | None, *, create: bool) -> bytes | None:
    """The PEM password for `passphrase`: stretched with the directory's scrypt salt and
    parameters (made when `create` and there are none yet; PEM files encrypted elsewhere
    with a bare passphrase have none and take it as it is)."""
    if passphrase is None:
        return None
    if not passphrase:
        raise KeyStoreError("An empty passphrase protects nothing: give one, or None.")
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    kdf_path = directory / KDF_FILE
    if not kdf_path.exists():
        if not create:
            return secret
        salt = base64.b64encode(secrets.token_bytes(16)).decode()
        _write(kdf_path, json.dumps({"kdf": "scrypt", "salt": salt, **SCRYPT}).encode())
    stored = json.loads(kdf_path.read_text())
    salt = base64.b64decode(stored["salt"])
    return Scrypt(salt=salt, length=32, n=stored["n"], r=stored["r"], p=stored["p"]).derive(secret)


def _write(path: Path, data: bytes) -> None:
    """Owner-only from the first byte, and replaced in one step (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def has_keys(directory: Path) -> bool:
    return (directory / SIGNING_FILE).exists() and (directory / ENCRYPTION_FILE).exists()


def save_private_keys(
    directory: Path, keys: KeyPair, passphrase: str | bytes | None = None
) -> None:
    """Both private keys (encrypted with cryptography's best available scheme when a
    passphrase is given), then their serials. `manage.py issue_demo_keys` writes the same
    key files, in plaintext."""
    secret = _password(directory, passphrase, create=True)
    protection = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    for name, key in ((SIGNING_FILE, keys.signing_key), (ENCRYPTION_FILE, keys.encryption_key)):
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protection
        )
        _write(directory / name, pem)
    save_serials(directory, keys)


def save_serials(directory: Path, keys: KeyPair) -> None:
    serials = {"signing": keys.signing_serial, "encryption": keys.encryption_serial}
    _write(directory / SERIALS_FILE, json.dumps(serials, indent=2).encode())


def load_private_keys(directory: Path, passphrase: str | bytes | None = None) -> KeyPair:
    """The keys of `directory` with the serials saved beside them ("" when none are: the
    client then renews, i.e. certifies the same keys again, at connect). Plaintext files
    (demo keys) load whether or not a passphrase is given."""
    secret = _password(directory, passphrase, create=False)

    def read(name: str):
        pem = (directory / name).read_bytes()
        try:
            return serialization.load_pem_private_key(pem, password=secret)
        except TypeError:
            if secret is None:  # encrypted, and no passphrase
                raise KeyStoreError(
                    f"The private keys in {directory} are encrypted: give their passphrase."
                ) from None
            return serialization.load_pem_private_key(pem, password=None)  # plaintext file
        except ValueError:
            raise KeyStoreError(
                f"The private keys in {directory} do not open with this passphrase "
                "(or the files are damaged)."
            ) from None

    keys = KeyPair(read(SIGNING_FILE), read(ENCRYPTION_FILE))
    serials_path = directory / SERIALS_FILE
    if serials_path.exists():
        serials = json.loads(serials_path.read_text())
        keys.signing_serial = serials.get("signing", "")
        keys.encryption_serial = serials.get("encryption", "")
    return keys
