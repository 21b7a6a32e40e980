"""Signatures: the four wire formats, and refusal of anything that is not one."""

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils, x25519

from cryptokit import signing
from cryptokit.errors import CryptoError
from cryptokit.keys import SIGNING_ALGORITHMS, inspect_encryption_key, inspect_signing_key
from cryptokit.keys import spki_der as spki_of

DATA = b"the bytes a client signs"

all_algorithms = pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)


def flip(data: bytes, index: int = -1) -> bytes:
    """Flip the lowest bit of one byte."""
    index %= len(data)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def assert_bad_signature(public_key, signature: bytes, data: bytes = DATA) -> None:
    with pytest.raises(CryptoError) as caught:
        signing.verify(public_key, signature, data)
    assert caught.value.code == "bad_signature"


@all_algorithms
def test_sign_then_verify_round_trips_with_a_key_object(signing_keys, algorithm):
    key = signing_keys[algorithm]
    signing.verify(key.public_key(), signing.sign(key, DATA), DATA)


@all_algorithms
def test_verify_accepts_spki_bytes_and_a_memoryview(signing_keys, algorithm):
    key = signing_keys[algorithm]
    signature = signing.sign(key, DATA)
    spki = spki_of(key.public_key())
    signing.verify(spki, signature, DATA)
    signing.verify(memoryview(spki), memoryview(signature), DATA)


@all_algorithms
def test_a_flipped_bit_in_the_signature_fails(signing_keys, algorithm):
    key = signing_keys[algorithm]
    signature = signing.sign(key, DATA)
    for index in (0, len(signature) // 2, -1):
        assert_bad_signature(key.public_key(), flip(signature, index))


@all_algorithms
def test_a_flipped_bit_in_the_data_fails(signing_keys, algorithm):
    key = signing_keys[algorithm]
    assert_bad_signature(key.public_key(), signing.sign(key, DATA), flip(DATA))


@all_algorithms
def test_another_keys_signature_fails(signing_keys, other_signing_keys, algorithm):
    signature = signing.sign(other_signing_keys[algorithm], DATA)
    assert_bad_signature(signing_keys[algorithm].public_key(), signature)


@all_algorithms
@pytest.mark.parametrize(
    "malform",
    [
        pytest.param(lambda sig: b"", id="empty"),
        pytest.param(lambda sig: sig[:-1], id="truncated"),
        pytest.param(lambda sig: sig + b"\x00", id="extended"),
        pytest.param(lambda sig: b"\xff" * len(sig), id="all-ones"),
        pytest.param(lambda sig: b"\x30\x06\x02\x01\x01\x02\x01", id="broken-der"),
    ],
)
def test_a_malformed_signature_fails(signing_keys, algorithm, malform):
    key = signing_keys[algorithm]
    assert_bad_signature(key.public_key(), malform(signing.sign(key, DATA)))


@pytest.mark.parametrize(
    ("algorithm", "length"), [("ed25519", 64), ("ecdsa-p256", 64), ("rsa-pss", 256)]
)
def test_fixed_length_wire_formats(signing_keys, algorithm, length):
    assert len(signing.sign(signing_keys[algorithm], DATA)) == length


def test_ecdsa_is_raw_r_and_s_as_webcrypto_makes_it(signing_keys):
    key = signing_keys["ecdsa-p256"]
    signature = signing.sign(key, DATA)
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    der = utils.encode_dss_signature(r, s)
    key.public_key().verify(der, DATA, ec.ECDSA(hashes.SHA256()))  # raises if wrong
    assert_bad_signature(key.public_key(), der)  # DER is not the wire format


def test_dsa_is_der_and_raw_r_and_s_is_refused(signing_keys):
    key = signing_keys["dsa"]
    signature = signing.sign(key, DATA)
    r, s = utils.decode_dss_signature(signature)  # raises unless DER
    assert_bad_signature(key.public_key(), r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_rsa_pss_uses_sha256_and_a_32_byte_salt(signing_keys):
    key = signing_keys["rsa-pss"]
    pss32 = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    key.public_key().verify(signing.sign(key, DATA), DATA, pss32, hashes.SHA256())
    for other in (
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
        padding.PKCS1v15(),
    ):
        assert_bad_signature(key.public_key(), key.sign(DATA, other, hashes.SHA256()))


def test_ed25519_signatures_with_a_non_canonical_s_are_refused(signing_keys):
    key = signing_keys["ed25519"]
    signature = signing.sign(key, DATA)
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + order
    assert_bad_signature(key.public_key(), signature[:32] + s.to_bytes(32, "little"))


def test_a_signature_from_one_algorithm_does_not_verify_under_another(signing_keys):
    ed_signature = signing.sign(signing_keys["ed25519"], DATA)
    assert_bad_signature(signing_keys["ecdsa-p256"].public_key(), ed_signature)


@pytest.mark.parametrize(
    "public_key",
    [
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()).public_key(), id="p384"),
        pytest.param(lambda: x25519.X25519PrivateKey.generate().public_key(), id="x25519"),
        pytest.param(lambda: b"\x30\x03garbage", id="garbage-spki"),
    ],
)
def test_verify_with_an_unusable_key_is_a_bad_signature(public_key):
    assert_bad_signature(public_key(), b"\x00" * 64)


def test_signing_with_a_p384_key_is_refused():
    with pytest.raises(CryptoError) as caught:
        signing.sign(ec.generate_private_key(ec.SECP384R1()), DATA)
    assert caught.value.code == "unsupported_key"


def test_signing_with_a_key_that_cannot_sign_is_refused():
    with pytest.raises(CryptoError) as caught:
        signing.sign(x25519.X25519PrivateKey.generate(), DATA)
    assert caught.value.code == "unsupported_key"


@all_algorithms
def test_generated_signing_keys_pass_the_policy(signing_keys, algorithm):
    info = inspect_signing_key(spki_of(signing_keys[algorithm].public_key()))
    assert info.algorithm == algorithm


def test_generate_dsa_key_makes_its_own_2048_bit_parameters():
    key = signing.generate_signing_key("dsa")
    assert inspect_signing_key(spki_of(key.public_key())).key_size == 2048


def test_generate_signing_key_refuses_unknown_algorithms():
    with pytest.raises(CryptoError) as caught:
        signing.generate_signing_key("rsa-oaep")
    assert caught.value.code == "unsupported_key"


def test_generated_encryption_key_passes_the_policy(encryption_key):
    info = inspect_encryption_key(spki_of(encryption_key.public_key()))
    assert (info.algorithm, info.key_size) == ("rsa-oaep", 2048)
