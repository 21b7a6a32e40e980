"""Per-account request quotas in Redis: a fixed window per (quota, account), counted
atomically (one Lua script: the increment and the window's expiry can never come apart).

Quotas bound how much work one account can make the server do; they are not a security
check, so when Redis does not answer a request is let through (and the outage is logged
once per call site by the caller's logger), rather than taking the API down with Redis.
"""

import logging

import redis
from django.conf import settings

logger = logging.getLogger("securechat.quotas")

# KEYS[1] the counter; ARGV[1] the window in seconds. Returns {count, seconds left}.
_SPEND = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {n, redis.call('TTL', KEYS[1])}
"""

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
    return _client


def spend(quota: str, account: str, *, limit: int, window: int) -> int | None:
    """Count one request of `account` against `quota`: None while within `limit` per
    `window` seconds, else the seconds until the window ends."""
    try:
        count, left = _redis().eval(_SPEND, 1, f"securechat:quota:{quota}:{account}", window)
    except redis.RedisError as failure:
        logger.warning(
            "quota %s not counted: Redis unavailable (%s)", quota, type(failure).__name__
        )
        return None
    return None if count <= limit else max(int(left), 1)
