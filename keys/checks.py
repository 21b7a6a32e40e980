"""System checks: the server must not start with a PKI it cannot use."""

from django.core.checks import Error, register
from django.db import DatabaseError

from keys.ca import PkiNotReady, active_ca, load_private_key, server_signing_certificate


@register("pki", deploy=False)
def check_pki(app_configs, **kwargs) -> list[Error]:
    try:
        ca = active_ca()
        load_private_key(ca.subject_key_id)
        server_signing_certificate()
    except PkiNotReady as exc:
        return [Error(str(exc), hint="Run `manage.py init_pki`.", id="keys.E001")]
    except DatabaseError:
        return []  # not migrated yet: migrate's own checks report that
    return []
