"""Login throttling: failures counted per username and per client IP in the shared cache.

The cache is Redis in every deployment, so the count holds across daphne workers. The
username key is hashed so that the cache never holds a list of attempted usernames.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache


class LoginThrottled(Exception):
    """Too many failures: refuse further attempts until the cool-down has passed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed login attempts. Try again in {retry_after} seconds.")
        self.retry_after = retry_after


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()
    return f"login-failures:{kind}:{digest}"


def _keys(username: str, ip: str) -> list[tuple[str, int]]:
    return [
        (_key("user", username.casefold()), settings.LOGIN_FAILURE_LIMIT),
        (_key("ip", ip), settings.LOGIN_IP_FAILURE_LIMIT),
    ]


def check_login_allowed(username: str, ip: str) -> None:
    """Raise LoginThrottled when this username or this IP is cooling down."""
    for key, limit in _keys(username, ip):
        if (cache.get(key) or 0) >= limit:
            raise LoginThrottled(settings.LOGIN_COOLDOWN_SECONDS)


def record_login_failure(username: str, ip: str) -> None:
    for key, _limit in _keys(username, ip):
        # add() starts the window; incr() keeps its expiry, so the cool-down runs from
        # the first failure of a burst and cannot be extended forever by an attacker.
        if not cache.add(key, 1, settings.LOGIN_COOLDOWN_SECONDS):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.add(key, 1, settings.LOGIN_COOLDOWN_SECONDS)


def clear_login_failures(username: str) -> None:
    """A successful login forgives this username's failures (not the IP's)."""
    cache.delete(_key("user", username.casefold()))
