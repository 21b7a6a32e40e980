"""The key directory: private keys encrypted under a stretched passphrase (or plaintext,
as the demo keys are), their certificate serials beside them, clear errors."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from securechat_client.errors import KeyStoreError
from securechat_client.keystore import KeyPair, has_keys, load_private_keys, save_private_keys

from cryptokit.keys import spki_der

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair(
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        signing_serial="5a1",
        encryption_serial="e2c",
    )


def spkis(pair: KeyPair) -> tuple[bytes, bytes]:
    return spki_der(pair.signing_key.public_key()), spki_der(pair.encryption_key.public_key())


def test_a_passphrase_encrypts_both_key_files_and_they_reload_with_their_serials(keys, tmp_path):
    directory = tmp_path / "alice"
    save_private_keys(directory, keys, PASSPHRASE)
    assert has_keys(directory)
    for name in ("signing.pem", "encryption.pem", "serials.json", "kdf.json"):
        assert (directory / name).stat().st_mode & 0o077 == 0, name
    for name in ("signing.pem", "encryption.pem"):
        pem = (directory / name).read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        # the bare passphrase is not the PEM password: it is stretched first (kdf.json)
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(pem, password=PASSPHRASE.encode())
    assert json.loads((directory / "kdf.json").read_text())["kdf"] == "scrypt"

    loaded = load_private_keys(directory, PASSPHRASE)
    assert spkis(loaded) == spkis(keys)
    assert (loaded.signing_serial, loaded.encryption_serial) == ("5a1", "e2c")


def test_a_wrong_or_missing_passphrase_is_a_clear_error_that_never_shows_it(keys, tmp_path):
    save_private_keys(tmp_path, keys, PASSPHRASE)
    with pytest.raises(KeyStoreError, match="do not open with this passphrase") as wrong:
        load_private_keys(tmp_path, "not the passphrase")
    assert "not the passphrase" not in str(wrong.value)
    with pytest.raises(KeyStoreError, match="are encrypted: give their passphrase"):
        load_private_keys(tmp_path, None)
    with pytest.raises(KeyStoreError, match="empty passphrase"):
        save_private_keys(tmp_path, keys, "")


def test_without_a_passphrase_the_keys_are_plaintext_and_load_either_way(keys, tmp_path):
    """The documented plaintext case: what `manage.py issue_demo_keys` writes too (no
    serials file: the client certifies them again at connect)."""
    save_private_keys(tmp_path, keys)
    assert (tmp_path / "signing.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not (tmp_path / "kdf.json").exists()
    (tmp_path / "serials.json").unlink()
    for passphrase in (None, PASSPHRASE):
        loaded = load_private_keys(tmp_path, passphrase)
        assert spkis(loaded) == spkis(keys)
        assert (loaded.signing_serial, loaded.encryption_serial) == ("", "")
