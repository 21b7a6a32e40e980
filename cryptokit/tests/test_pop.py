"""The client's answer to a proof-of-possession challenge."""

import os

import pytest

from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from cryptokit.keys import SIGNING_ALGORITHMS, spki_der
from cryptokit.pop import answer_challenge


@pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
def test_answer_signs_the_challenge_and_returns_the_secret(signing_keys, encryption_key, algorithm):
    signing_key, nonce, secret = signing_keys[algorithm], os.urandom(32), os.urandom(32)
    encrypted = wrapping.oaep_encrypt(encryption_key.public_key(), secret)
    signature, decrypted = answer_challenge(
        username="alice",
        nonce=nonce,
        encrypted_secret=encrypted,
        signing_key=signing_key,
        encryption_key=encryption_key,
    )
    assert decrypted == secret
    signed = encoding.pop_challenge(
        username="alice",
        nonce=nonce,
        signing_spki=spki_der(signing_key.public_key()),
        encryption_spki=spki_der(encryption_key.public_key()),
    )
    signing.verify(spki_der(signing_key.public_key()), signature, signed)
    other = encoding.pop_challenge(
        username="mallory",
        nonce=nonce,
        signing_spki=spki_der(signing_key.public_key()),
        encryption_spki=spki_der(encryption_key.public_key()),
    )
    with pytest.raises(CryptoError):
        signing.verify(signing_key.public_key(), signature, other)


def test_a_secret_for_another_key_cannot_be_answered(
    signing_keys, encryption_key, other_encryption_key
):
    encrypted = wrapping.oaep_encrypt(other_encryption_key.public_key(), os.urandom(32))
    with pytest.raises(CryptoError) as caught:
        answer_challenge(
            username="alice",
            nonce=os.urandom(32),
            encrypted_secret=encrypted,
            signing_key=signing_keys["ed25519"],
            encryption_key=encryption_key,
        )
    assert caught.value.code == "unwrap_failed"
