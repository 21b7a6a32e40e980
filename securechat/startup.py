"""Run the system checks when a server process starts: daphne does not, and a server
with an unusable PKI or an insecure setting must not come up."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def refuse_to_start_when_misconfigured() -> None:
    serious = [error for error in checks.run_checks() if error.is_serious()]
    if serious:
        lines = "\n".join(f"{error.id}: {error.msg} {error.hint or ''}" for error in serious)
        raise ImproperlyConfigured(f"SecureChat will not start:\n{lines}")
