"""Keys for the cryptokit tests, made once per session because RSA and DSA are slow.

cryptokit is pure Python without Django, and so are its tests: they pass with
`pytest -p no:django cryptokit`. The repository's root conftest starts a Redis server and
configures Django for every test through autouse fixtures; the no-op fixtures of the same
names below replace them for the tests in this directory only.
"""

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa

from cryptokit import signing
from cryptokit.keys import SIGNING_ALGORITHMS


@pytest.fixture(scope="session")
def redis_server():
    """cryptokit needs no Redis (overrides the root conftest's fixture here)."""
    return None


@pytest.fixture(scope="session")
def _settings_use_test_redis():
    """cryptokit needs no Django settings (overrides the root conftest's fixture here)."""
    return None


@pytest.fixture
def _empty_redis_between_tests():
    """Nothing to empty (overrides the root conftest's fixture here)."""
    return None


@pytest.fixture(scope="session")
def dsa_parameters() -> dsa.DSAParameters:
    """DSA-2048/256 domain parameters, generated once for the session."""
    return dsa.generate_parameters(key_size=2048)


@pytest.fixture(scope="session")
def dsa_3072_parameters() -> dsa.DSAParameters:
    """DSA-3072/256 domain parameters: a few seconds, so only for the policy test."""
    return dsa.generate_parameters(key_size=3072)


def _key_set(dsa_parameters: dsa.DSAParameters) -> dict:
    return {
        algorithm: signing.generate_signing_key(
            algorithm, dsa_parameters=dsa_parameters, rsa_bits=2048
        )
        for algorithm in SIGNING_ALGORITHMS
    }


@pytest.fixture(scope="session")
def signing_keys(dsa_parameters) -> dict:
    """One private signing key per algorithm (RSA at 2048 bits to keep the run fast)."""
    return _key_set(dsa_parameters)


@pytest.fixture(scope="session")
def other_signing_keys(dsa_parameters) -> dict:
    """A second key per algorithm, same DSA domain: someone else's key."""
    return _key_set(dsa_parameters)


@pytest.fixture(scope="session")
def encryption_key():
    """An RSA-2048 encryption key."""
    return signing.generate_encryption_key(2048)


@pytest.fixture(scope="session")
def other_encryption_key():
    """Another RSA-2048 encryption key."""
    return signing.generate_encryption_key(2048)
