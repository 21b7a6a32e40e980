"""RSA-OAEP key wrapping and AES-256-GCM message encryption."""

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cryptokit import wrapping
from cryptokit.errors import CryptoError
from cryptokit.keys import spki_der

AAD = b"message header"
PLAINTEXT = "hello, wörld".encode()


def code_of(call) -> str:
    with pytest.raises(CryptoError) as caught:
        call()
    return caught.value.code


def flip(data: bytes, index: int = -1) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# --- OAEP


def test_oaep_round_trips_with_a_key_object_or_spki(encryption_key):
    epoch_key = wrapping.new_epoch_key()
    for public in (encryption_key.public_key(), spki_der(encryption_key.public_key())):
        wrapped = wrapping.oaep_encrypt(public, epoch_key)
        assert len(wrapped) == 256  # one RSA-2048 block
        assert wrapping.oaep_decrypt(encryption_key, wrapped) == epoch_key


def test_oaep_is_randomised(encryption_key):
    key = wrapping.new_epoch_key()
    public = encryption_key.public_key()
    assert wrapping.oaep_encrypt(public, key) != wrapping.oaep_encrypt(public, key)


def test_oaep_uses_sha256_for_both_hash_and_mgf1_with_no_label(encryption_key):
    # What WebCrypto's {name: "RSA-OAEP", hash: "SHA-256"} makes must unwrap, and only that.
    key = wrapping.new_epoch_key()
    public = encryption_key.public_key()
    sha256 = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert wrapping.oaep_decrypt(encryption_key, public.encrypt(key, sha256)) == key
    sha1 = padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)  # noqa: S303
    labelled = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), b"label")
    for other in (sha1, labelled):
        wrapped = public.encrypt(key, other)
        assert code_of(lambda w=wrapped: wrapping.oaep_decrypt(encryption_key, w)) == (
            "unwrap_failed"
        )


def test_oaep_unwrap_with_the_wrong_key_fails(encryption_key, other_encryption_key):
    wrapped = wrapping.oaep_encrypt(encryption_key.public_key(), wrapping.new_epoch_key())
    assert code_of(lambda: wrapping.oaep_decrypt(other_encryption_key, wrapped)) == (
        "unwrap_failed"
    )


@pytest.mark.parametrize(
    "tamper",
    [lambda w: flip(w), lambda w: flip(w, 0), lambda w: w[:-1], lambda w: b""],
    ids=["last-bit", "first-bit", "truncated", "empty"],
)
def test_oaep_tampered_ciphertext_fails(encryption_key, tamper):
    wrapped = wrapping.oaep_encrypt(encryption_key.public_key(), wrapping.new_epoch_key())
    assert code_of(lambda: wrapping.oaep_decrypt(encryption_key, tamper(wrapped))) == (
        "unwrap_failed"
    )


def test_oaep_refuses_a_non_rsa_key():
    key = ed25519.Ed25519PrivateKey.generate()
    assert code_of(lambda: wrapping.oaep_encrypt(key.public_key(), b"k")) == "unsupported_key"
    assert code_of(lambda: wrapping.oaep_encrypt(spki_der(key.public_key()), b"k")) == (
        "unsupported_key"
    )
    assert code_of(lambda: wrapping.oaep_decrypt(key, b"\x00" * 256)) == "unsupported_key"


# --- AES-256-GCM


def test_new_epoch_keys_are_32_random_bytes():
    keys = {wrapping.new_epoch_key() for _ in range(8)}
    assert len(keys) == 8 and all(len(key) == 32 for key in keys)


def test_aes_gcm_round_trips_with_a_12_byte_iv_and_16_byte_tag():
    key = wrapping.new_epoch_key()
    iv, ciphertext = wrapping.aes_gcm_encrypt(key, PLAINTEXT, AAD)
    assert len(iv) == 12 and len(ciphertext) == len(PLAINTEXT) + 16
    assert wrapping.aes_gcm_decrypt(key, iv, ciphertext, AAD) == PLAINTEXT


def test_aes_gcm_layout_is_what_webcrypto_expects():
    # WebCrypto takes the IV separately and appends the tag to the ciphertext.
    key = wrapping.new_epoch_key()
    iv, ciphertext = wrapping.aes_gcm_encrypt(key, PLAINTEXT, AAD)
    assert AESGCM(key).decrypt(iv, ciphertext, AAD) == PLAINTEXT
    iv2 = bytes(12)
    assert wrapping.aes_gcm_decrypt(key, iv2, AESGCM(key).encrypt(iv2, b"x", AAD), AAD) == b"x"


def test_aes_gcm_empty_plaintext_round_trips():
    key = wrapping.new_epoch_key()
    iv, ciphertext = wrapping.aes_gcm_encrypt(key, b"", AAD)
    assert wrapping.aes_gcm_decrypt(key, iv, ciphertext, AAD) == b""


def test_aes_gcm_uses_a_fresh_iv_each_time():
    key = wrapping.new_epoch_key()
    ivs = {wrapping.aes_gcm_encrypt(key, PLAINTEXT, AAD)[0] for _ in range(16)}
    assert len(ivs) == 16


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda k, iv, ct, aad: (k, iv, flip(ct, 0), aad), id="ciphertext"),
        pytest.param(lambda k, iv, ct, aad: (k, iv, flip(ct), aad), id="tag"),
        pytest.param(lambda k, iv, ct, aad: (k, iv, ct[:-1], aad), id="truncated"),
        pytest.param(lambda k, iv, ct, aad: (k, iv, ct[:15], aad), id="shorter-than-tag"),
        pytest.param(lambda k, iv, ct, aad: (k, flip(iv), ct, aad), id="iv"),
        pytest.param(lambda k, iv, ct, aad: (k, iv, ct, flip(aad)), id="aad"),
        pytest.param(lambda k, iv, ct, aad: (k, iv, ct, b""), id="aad-missing"),
        pytest.param(lambda k, iv, ct, aad: (flip(k), iv, ct, aad), id="key"),
    ],
)
def test_aes_gcm_tampering_fails_with_decrypt_failed(tamper):
    key = wrapping.new_epoch_key()
    iv, ciphertext = wrapping.aes_gcm_encrypt(key, PLAINTEXT, AAD)
    args = tamper(key, iv, ciphertext, AAD)
    assert code_of(lambda: wrapping.aes_gcm_decrypt(*args)) == "decrypt_failed"


@pytest.mark.parametrize("length", [0, 8, 11, 13, 16])
def test_aes_gcm_refuses_an_iv_that_is_not_12_bytes(length):
    key = wrapping.new_epoch_key()
    _, ciphertext = wrapping.aes_gcm_encrypt(key, PLAINTEXT, AAD)
    assert code_of(lambda: wrapping.aes_gcm_decrypt(key, bytes(length), ciphertext, AAD)) == (
        "bad_iv"
    )


@pytest.mark.parametrize("length", [16, 24, 31, 33])
def test_aes_gcm_refuses_keys_that_are_not_256_bits(length):
    key = bytes(length)
    assert code_of(lambda: wrapping.aes_gcm_encrypt(key, PLAINTEXT, AAD)) == "bad_key"
    assert code_of(lambda: wrapping.aes_gcm_decrypt(key, bytes(12), bytes(32), AAD)) == "bad_key"
