"""`GET /healthz` for load balancers: 200 when this worker can reach the database and Redis
and use the CA's private key, 503 naming each part that cannot.

No login, no cache, no secrets: the answer says only which part failed; the reason (an
exception's type) goes to this worker's log, never a URL, host or passphrase.
"""

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from keys.ca import active_ca, load_private_key

logger = logging.getLogger(__name__)

# Each probe waits at most this long for Redis: a balancer's probe must answer in time.
REDIS_TIMEOUT_SECONDS = 1.0


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def _ca() -> None:
    # The key decrypted once per worker is kept (keys/ca.py): "readable" means this worker
    # can sign, which is what serving needs.
    load_private_key(active_ca().subject_key_id)


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "redis": _redis, "ca": _ca}


def run_checks() -> dict[str, str]:
    """Each part's state, "ok" or "fail"."""
    states = {}
    for name, check in CHECKS.items():
        try:
            check()
            states[name] = "ok"
        except Exception as exc:  # any failure of a part is that part's failure
            logger.warning("healthz: %s failed (%s)", name, type(exc).__name__)
            states[name] = "fail"
    return states


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    states = run_checks()
    failing = [name for name, state in states.items() if state != "ok"]
    if failing:
        body = {"status": "fail", "failing": failing, "checks": states}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": states})
