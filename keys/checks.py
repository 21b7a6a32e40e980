"""System checks: the server must not start with a PKI it cannot use, and operators hear
of an expiring CA or server signing certificate while there is time to renew it."""

import datetime as dt

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.db import DatabaseError
from django.utils import timezone

from keys.ca import (
    PkiNotReady,
    active_ca,
    load_private_key,
    renewal_due,
    server_signing_certificate,
)

RENEW_SERVER_KEY = "Run `manage.py init_pki`: it issues a new server signing key."
ROTATE_CA = (
    "Run `manage.py init_pki --rotate`: a new CA issues from then on while the old one "
    "keeps verifying."
)


# init_pki cannot read the CA's key either when the passphrase or the key file is wrong:
# the fix is the right passphrase or the key files, or a new CA if both are lost.
UNREADABLE_KEY = (
    "Set SECURECHAT_CA_PASSPHRASE to the passphrase the CA was created with and "
    "SECURECHAT_PKI_DIR to the directory holding its key files (restore them from the "
    "backup). If they are lost for good, `manage.py init_pki --rotate` makes a new CA "
    "under the passphrase now set; the old one keeps verifying what it issued."
)


@register("pki", deploy=False)
def check_pki(app_configs, **kwargs) -> list[CheckMessage]:
    try:
        ca = active_ca()
        server = server_signing_certificate()
    except PkiNotReady as exc:
        return [Error(str(exc), hint="Run `manage.py init_pki`.", id="keys.E001")]
    except DatabaseError:
        return []  # not migrated yet: migrate's own checks report that
    try:
        load_private_key(ca.subject_key_id)
    except PkiNotReady as exc:
        return [Error(str(exc), hint=UNREADABLE_KEY, id="keys.E001")]
    return [
        message
        for message in (
            _expiry("The CA certificate", ca.not_after, ROTATE_CA),
            _expiry("The server signing certificate", server.not_after, RENEW_SERVER_KEY),
        )
        if message is not None
    ]


def _expiry(what: str, not_after: dt.datetime, hint: str) -> CheckMessage | None:
    day = f"{not_after.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    if not_after <= timezone.now():
        return Error(f"{what} expired on {day}.", hint=hint, id="keys.E002")
    if renewal_due(not_after):
        days = settings.CERTIFICATE_RENEW_DAYS
        return Warning(
            f"{what} expires on {day}, within CERTIFICATE_RENEW_DAYS ({days} days).",
            hint=hint,
            id="keys.W001",
        )
    return None
