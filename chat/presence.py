"""Presence in Redis, right across workers and tabs: per user a sorted set of open
connections scored by when their heartbeat expires. A user is online while any
connection is unexpired; a crashed worker's connections simply expire."""

import asyncio
import time

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

_clients: dict[int, aioredis.Redis] = {}
_last_sweep = 0.0


def _redis() -> aioredis.Redis:
    # One client per event loop: a redis.asyncio pool must not cross loops.
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _clients:
        _clients[loop_id] = aioredis.Redis.from_url(
            settings.REDIS_URL,
            # After a Redis restart the pool holds dead connections: retry on a fresh one
            # instead of failing the first connect of each socket (seen in the soak).
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
    return _clients[loop_id]


def _key(user_id: int) -> str:
    return f"presence:user:{user_id}"


# Every online user, scored by when their newest heartbeat expires: what lets a worker
# notice users whose connections died with another worker.
ONLINE = "presence:online"


# KEYS[1] the user's connections, KEYS[2] ONLINE; ARGV: connection, now, ttl, limit, user id.
# Returns -1 when the user already holds `limit` live connections (nothing added), else the
# number of live connections before this one. One script: parallel connects cannot all
# pass the count.
_OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[1])
if before >= tonumber(ARGV[4]) then return -1 end
local expires = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], expires, ARGV[5])
return before
"""


class TooManyConnections(Exception):
    """The user already holds WS_SOCKETS_PER_USER live connections."""


async def connection_opened(user_id: int, connection: str) -> bool:
    """Record a connection; True when the user has just come online. Raises
    TooManyConnections (recording nothing) at WS_SOCKETS_PER_USER."""
    before = await _redis().eval(
        _OPEN,
        2,
        _key(user_id),
        ONLINE,
        connection,
        time.time(),
        settings.PRESENCE_TTL_SECONDS,
        settings.WS_SOCKETS_PER_USER,
        str(user_id),
    )
    if before < 0:
        raise TooManyConnections(f"at most {settings.WS_SOCKETS_PER_USER} connections")
    return before == 0


async def heartbeat(user_id: int, connection: str) -> None:
    now = time.time()
    async with _redis().pipeline(transaction=True) as pipe:
        pipe.zadd(_key(user_id), {connection: now + settings.PRESENCE_TTL_SECONDS})
        pipe.expire(_key(user_id), settings.PRESENCE_TTL_SECONDS)
        pipe.zadd(ONLINE, {str(user_id): now + settings.PRESENCE_TTL_SECONDS})
        await pipe.execute()


async def claim_expired_users() -> list[int]:
    """Users whose every connection expired (their worker died): each is claimed by
    exactly one worker (the one whose ZREM succeeds), which announces them offline.
    Each process sweeps at most once per heartbeat period, whatever its socket count."""
    global _last_sweep
    if time.monotonic() - _last_sweep < settings.PRESENCE_HEARTBEAT_SECONDS:
        return []
    _last_sweep = time.monotonic()
    client = _redis()
    claimed = []
    for member in await client.zrangebyscore(ONLINE, "-inf", time.time()):
        user_id = int(member)
        if await client.zcount(_key(user_id), time.time(), "+inf"):
            continue  # a heartbeat arrived meanwhile
        if await client.zrem(ONLINE, member):
            claimed.append(user_id)
    return claimed


async def connection_closed(user_id: int, connection: str) -> bool:
    """Forget a connection; True when it was the user's last one."""
    async with _redis().pipeline(transaction=True) as pipe:
        pipe.zrem(_key(user_id), connection)
        pipe.zremrangebyscore(_key(user_id), "-inf", time.time())
        pipe.zcard(_key(user_id))
        removed, _, remaining = await pipe.execute()
    if remaining == 0:
        await _redis().zrem(ONLINE, str(user_id))
    return bool(removed) and remaining == 0


async def online_among(user_ids: list[int]) -> set[int]:
    if not user_ids:
        return set()
    now = time.time()
    async with _redis().pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.zcount(_key(user_id), now, "+inf")
        counts = await pipe.execute()
    return {user_id for user_id, count in zip(user_ids, counts, strict=True) if count}


async def online_among_or(user_ids: list[int], unknown: set[int]) -> set[int]:
    """online_among, or `unknown` while Redis is unavailable: callers whose answer must not
    wait for Redis (an ack, a backlog) say what to assume."""
    try:
        return await online_among(user_ids)
    except (redis.RedisError, OSError):
        return unknown


def online_among_sync(user_ids: list[int]) -> set[int]:
    """The same question from synchronous service code."""
    connection = redis.Redis.from_url(settings.REDIS_URL)
    now = time.time()
    with connection.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.zcount(_key(user_id), now, "+inf")
        counts = pipe.execute()
    return {user_id for user_id, count in zip(user_ids, counts, strict=True) if count}
