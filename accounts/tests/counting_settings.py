"""Settings for a test server that logs one line per argon2 password verification, so a
test can count the password checks a real daphne made (the real hasher still runs).

Argon2PasswordHasher stays first (a start-up check insists, and new hashes use it); Django
picks the verifier by algorithm name from this list, the last entry of a name winning, so
the counting subclass appended last verifies every argon2 hash."""

from securechat.settings import *  # noqa: F403
from securechat.settings import PASSWORD_HASHERS

PASSWORD_HASHERS = [
    *PASSWORD_HASHERS,
    "accounts.tests.counting_hasher.CountingArgon2PasswordHasher",
]
