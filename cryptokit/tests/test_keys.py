"""Key parsing and the key policy."""

import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519

from cryptokit.errors import CryptoError
from cryptokit.keys import (
    ALGORITHMS,
    KeyInfo,
    inspect_encryption_key,
    inspect_signing_key,
    load_public_key,
    spki_der,
)


def rsa_spki(bits: int, e: int = 65537) -> bytes:
    """An RSA public key of exactly `bits` bits: the policy reads only public numbers, so a
    random odd modulus stands in for a real one and spares generating large keys."""
    n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return spki_der(rsa.RSAPublicNumbers(e, n).public_key())


def dsa_spki(p: int, q: int, g: int, y: int) -> bytes:
    numbers = dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g))
    return spki_der(numbers.public_key())


def refused(inspect, spki: bytes) -> str:
    with pytest.raises(CryptoError) as caught:
        inspect(spki)
    return caught.value.code


def test_algorithm_names_cover_four_signing_and_one_encryption_algorithm():
    assert set(ALGORITHMS) == {"ed25519", "ecdsa-p256", "rsa-pss", "dsa", "rsa-oaep"}


@pytest.mark.parametrize(
    ("algorithm", "key_size"),
    [("ed25519", 256), ("ecdsa-p256", 256), ("rsa-pss", 2048), ("dsa", 2048)],
)
def test_inspect_signing_key_accepts_each_algorithm(signing_keys, algorithm, key_size):
    spki = spki_der(signing_keys[algorithm].public_key())
    info = inspect_signing_key(spki)
    assert info == KeyInfo(algorithm, key_size, info.public_key, spki)
    assert spki_der(info.public_key) == spki


@pytest.mark.parametrize("bits", [2048, 2560, 3072, 4096])
def test_inspect_signing_key_accepts_rsa_from_2048_to_4096_bits(bits):
    info = inspect_signing_key(rsa_spki(bits))
    assert (info.algorithm, info.key_size) == ("rsa-pss", bits)


def test_inspect_signing_key_accepts_dsa_3072_with_256_bit_q(dsa_3072_parameters):
    spki = spki_der(dsa_3072_parameters.generate_private_key().public_key())
    info = inspect_signing_key(spki)
    assert (info.algorithm, info.key_size) == ("dsa", 3072)


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_inspect_encryption_key_accepts_standard_rsa_sizes(bits):
    info = inspect_encryption_key(rsa_spki(bits))
    assert (info.algorithm, info.key_size) == ("rsa-oaep", bits)


def test_inspect_encryption_key_accepts_a_real_key(encryption_key):
    spki = spki_der(encryption_key.public_key())
    info = inspect_encryption_key(spki)
    assert (info.algorithm, info.key_size, info.spki_der) == ("rsa-oaep", 2048, spki)


def test_memoryview_from_a_database_is_accepted_and_returned_as_bytes(signing_keys):
    spki = spki_der(signing_keys["ed25519"].public_key())
    info = inspect_signing_key(memoryview(spki))
    assert type(info.spki_der) is bytes and info.spki_der == spki


@pytest.mark.parametrize("inspect", [inspect_signing_key, inspect_encryption_key])
def test_rsa_1024_is_too_small(inspect):
    assert refused(inspect, rsa_spki(1024)) == "key_too_small"


@pytest.mark.parametrize("inspect", [inspect_signing_key, inspect_encryption_key])
def test_rsa_above_4096_bits_is_unsupported(inspect):
    assert refused(inspect, rsa_spki(4097)) == "unsupported_key"
    assert refused(inspect, rsa_spki(8192)) == "unsupported_key"


@pytest.mark.parametrize("inspect", [inspect_signing_key, inspect_encryption_key])
def test_rsa_with_another_exponent_is_unsupported(inspect):
    assert refused(inspect, rsa_spki(2048, e=3)) == "unsupported_key"


def test_encryption_rsa_size_must_be_a_multiple_of_1024():
    assert refused(inspect_encryption_key, rsa_spki(2560)) == "unsupported_key"
    assert refused(inspect_encryption_key, rsa_spki(2049)) == "unsupported_key"


def test_dsa_1024_is_too_small():
    key = dsa.generate_private_key(1024)
    assert refused(inspect_signing_key, spki_der(key.public_key())) == "key_too_small"


@pytest.mark.parametrize("q_bits", [160, 224])
def test_dsa_2048_with_a_short_q_is_too_small(dsa_parameters, q_bits):
    real = dsa_parameters.generate_private_key().public_key().public_numbers()
    params = real.parameter_numbers
    q = (1 << (q_bits - 1)) | 1  # only the size matters: the size check comes first
    spki = dsa_spki(params.p, q, params.g, real.y)
    assert refused(inspect_signing_key, spki) == "key_too_small"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p, q, g, y: (p, q, g, 1), id="y-is-1"),
        pytest.param(lambda p, q, g, y: (p, q, g, p - 1), id="y-outside-subgroup"),
        pytest.param(lambda p, q, g, y: (p, q, p - 1, y), id="g-of-order-2"),
        pytest.param(lambda p, q, g, y: (p, q + 2, g, y), id="q-not-dividing-p-1"),
    ],
)
def test_degenerate_dsa_numbers_are_refused(dsa_parameters, tamper):
    real = dsa_parameters.generate_private_key().public_key().public_numbers()
    params = real.parameter_numbers
    spki = dsa_spki(*tamper(params.p, params.q, params.g, real.y))
    assert refused(inspect_signing_key, spki) == "malformed_key"


def test_ecdsa_on_p384_is_unsupported():
    key = ec.generate_private_key(ec.SECP384R1())
    assert refused(inspect_signing_key, spki_der(key.public_key())) == "unsupported_key"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: x25519.X25519PrivateKey.generate(), id="x25519"),
        pytest.param(lambda: ed448.Ed448PrivateKey.generate(), id="ed448"),
    ],
)
def test_other_key_types_are_unsupported_for_signing(make):
    assert refused(inspect_signing_key, spki_der(make().public_key())) == "unsupported_key"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: ed25519.Ed25519PrivateKey.generate(), id="ed25519"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="p256"),
        pytest.param(lambda: x25519.X25519PrivateKey.generate(), id="x25519"),
    ],
)
def test_encryption_keys_must_be_rsa(make):
    assert refused(inspect_encryption_key, spki_der(make().public_key())) == "unsupported_key"


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x30\x03garbage", b"\x00" * 64, b"-----BEGIN PUBLIC KEY-----"],
    ids=["empty", "short-der", "zeros", "pem-header"],
)
@pytest.mark.parametrize("inspect", [inspect_signing_key, inspect_encryption_key])
def test_garbage_der_is_malformed(inspect, garbage):
    assert refused(inspect, garbage) == "malformed_key"


def test_trailing_bytes_after_the_spki_are_malformed(signing_keys):
    spki = spki_der(signing_keys["ed25519"].public_key())
    assert refused(inspect_signing_key, spki + b"\x00") == "malformed_key"


def test_compressed_ec_point_is_refused_as_non_canonical(signing_keys):
    # One key, one encoding: otherwise the same key gets another fingerprint and slips
    # past the server's "already certified" check, which hashes the SPKI.
    public_key = signing_keys["ecdsa-p256"].public_key()
    algorithm_identifier = spki_der(public_key)[2:23]  # SEQUENCE {id-ecPublicKey, P-256}
    point = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    body = algorithm_identifier + b"\x03" + bytes([len(point) + 1]) + b"\x00" + point
    compressed = b"\x30" + bytes([len(body)]) + body
    assert serialization.load_der_public_key(compressed) == public_key  # valid DER, same key
    with pytest.raises(CryptoError) as caught:
        load_public_key(compressed)
    assert caught.value.code == "malformed_key"
    assert refused(inspect_signing_key, compressed) == "malformed_key"


def test_load_public_key_round_trips_with_spki_der(signing_keys):
    for key in signing_keys.values():
        spki = spki_der(key.public_key())
        assert spki_der(load_public_key(spki)) == spki


def test_load_public_key_refuses_a_str_as_a_programming_error():
    with pytest.raises(TypeError):
        load_public_key("MCowBQYDK2VwAyEA")


def test_crypto_error_carries_a_code_and_a_message():
    error = CryptoError("bad_signature", "The signature does not verify.")
    assert (error.code, error.message, str(error)) == (
        "bad_signature",
        "The signature does not verify.",
        "The signature does not verify.",
    )
