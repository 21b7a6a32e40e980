"""Django's argon2 hasher, logging each verification (see counting_settings.py)."""

import logging

from django.contrib.auth.hashers import Argon2PasswordHasher


class CountingArgon2PasswordHasher(Argon2PasswordHasher):
    def verify(self, password: str, encoded: str) -> bool:
        logging.getLogger("testing.hasher").warning("argon2.verify")
        return super().verify(password, encoded)
