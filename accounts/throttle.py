"""Login throttling in Redis: every attempt is counted, atomically, *before* its password is
checked, so a burst of parallel attempts checks at most the limit.

Three counters per attempt, each a fixed window that starts at its first attempt:

* (username, address): the tight limit (`LOGIN_FAILURE_LIMIT` per `LOGIN_COOLDOWN_SECONDS`).
  Keyed by address, so guesses from elsewhere cannot lock the owner out of their own.
* address across usernames (`LOGIN_IP_FAILURE_LIMIT`): one machine spraying many accounts.
* username across addresses: above `LOGIN_USERNAME_SOFT_LIMIT` within
  `LOGIN_USERNAME_WINDOW_SECONDS` no lock but a soft delay: one attempt per gate, the gate
  a little longer each time (`LOGIN_USERNAME_DELAY_SECONDS` times the attempts over the
  limit, at most `LOGIN_USERNAME_MAX_DELAY_SECONDS`), so distributed guessing crawls.

An address the user logged in from successfully within `LOGIN_KNOWN_ADDRESS_DAYS` is
"known": it skips the address limit and the soft delay (only its own tight limit applies),
so the owner gets in during a distributed attack. IPv6 addresses count per /64, what one
subscriber usually holds. Each decision is one Lua script, so no other client sees a half
done update and a key can never be left without its expiry (a key found without one, e.g.
from an older version, gets it back). A successful login forgives its own attempt.
"""

import ipaddress
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils.crypto import salted_hmac
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

PREFIX = "securechat:login"
NO_REQUEST = "no-request"  # every password check made without a request shares this address


class LoginRefused(PermissionDenied):
    """Not checked at all. A PermissionDenied, so Django's authenticate() stops at once and
    any login path that does not know this class simply reports a failed login."""


class LoginThrottled(LoginRefused):
    def __init__(self, scope: str, retry_after: int) -> None:
        if scope == "username":
            text = (
                "Too many failed login attempts for this account from many places. "
                f"Try again in {retry_after} seconds."
            )
        else:
            text = f"Too many failed login attempts. Try again in {retry_after} seconds."
        super().__init__(text)
        self.scope = scope
        self.retry_after = retry_after


class LoginUnavailable(LoginRefused):
    """Redis, which holds the counters, does not answer: refuse rather than count nothing."""

    def __init__(self) -> None:
        super().__init__("Logging in is unavailable right now. Please try again in a minute.")


@dataclass(frozen=True)
class Attempt:
    """A counted attempt: the counters as they stood with this attempt included."""

    username_hash: str
    address: str
    pair: int
    username: int
    ip: int
    pair_ttl: int
    username_ttl: int
    ip_ttl: int


def username_hash(username: str) -> str:
    """Keyed, so neither Redis nor the logs give away which names were tried (people type
    passwords into the username field) and a list of names cannot be hashed to match."""
    value = username.casefold()
    return salted_hmac("accounts.throttle.username", value).hexdigest()[:32]


def client_address(ip: str | None) -> str:
    """The address an attempt counts under: IPv4 as is, IPv6 by its /64."""
    if ip is None:
        return NO_REQUEST
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def pair_key(user_hash: str, address: str) -> str:
    return f"{PREFIX}:pair:{user_hash}:{address}"


def username_key(user_hash: str) -> str:
    return f"{PREFIX}:user:{user_hash}"


def gate_key(user_hash: str) -> str:
    return f"{PREFIX}:gate:{user_hash}"


def address_key(address: str) -> str:
    return f"{PREFIX}:ip:{address}"


def known_key(user_hash: str, address: str) -> str:
    return f"{PREFIX}:known:{user_hash}:{address}"


# KEYS: pair, username, address, gate, known.
# ARGV: pair limit, address limit, username soft limit, window, username window,
#       delay step, delay cap.
# Returns {scope, retry_after} when refused, else {"ok", pair, username, address} counts
# and their TTLs.
_RESERVE = """
local function count(key, window)
  local value = tonumber(redis.call('GET', key) or '0')
  if value > 0 and redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, window)  -- never a lock without an end
  end
  return value
end
local function ttl(key)
  local left = redis.call('TTL', key)
  if left < 1 then return 1 end
  return left
end
local function bump(key, window)
  local value = redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, window) end
  return value
end
local window, user_window = tonumber(ARGV[4]), tonumber(ARGV[5])
if count(KEYS[1], window) >= tonumber(ARGV[1]) then return {'pair', ttl(KEYS[1])} end
local address = count(KEYS[3], window)
local username = count(KEYS[2], user_window)
if redis.call('EXISTS', KEYS[5]) == 0 then
  if address >= tonumber(ARGV[2]) then return {'ip', ttl(KEYS[3])} end
  local over = username - tonumber(ARGV[3]) + 1
  if over > 0 then
    local delay = math.max(1, math.min(tonumber(ARGV[7]), tonumber(ARGV[6]) * over))
    if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', delay) then
      return {'username', ttl(KEYS[4])}
    end
  end
end
local pair = bump(KEYS[1], window)
username = bump(KEYS[2], user_window)
address = bump(KEYS[3], window)
return {'ok', pair, username, address, ttl(KEYS[1]), ttl(KEYS[2]), ttl(KEYS[3])}
"""

# KEYS: pair, username, address, known. ARGV: known lifetime in seconds.
# Forgives this attempt: the pair starts afresh, the shared counters give back one (never
# creating a key, so never one without expiry), and the address becomes known.
_SUCCEED = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
redis.call('SET', KEYS[4], '1', 'EX', tonumber(ARGV[1]))
return 1
"""

_clients: dict[str, tuple[redis.Redis, object, object]] = {}


def _redis() -> tuple[redis.Redis, object, object]:
    """A client for settings.REDIS_URL (read each time: tests point it elsewhere) and the two
    scripts (EVALSHA, loaded again by redis-py after a Redis restart)."""
    url = settings.REDIS_URL
    if url not in _clients:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=1,
            socket_timeout=2,
            # After a Redis restart the pool holds dead connections: one retry on a fresh
            # one rather than refusing a login that would have worked.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        _clients[url] = (client, client.register_script(_RESERVE), client.register_script(_SUCCEED))
    return _clients[url]


def reserve_attempt(username: str, ip: str | None) -> Attempt:
    """Count this attempt before its password is checked; raise LoginThrottled when a limit
    refuses it (then nothing is counted), LoginUnavailable when Redis does not answer."""
    user_hash, address = username_hash(username), client_address(ip)
    _client, reserve, _succeed = _redis()
    keys = [
        pair_key(user_hash, address),
        username_key(user_hash),
        address_key(address),
        gate_key(user_hash),
        known_key(user_hash, address),
    ]
    args = [
        settings.LOGIN_FAILURE_LIMIT,
        settings.LOGIN_IP_FAILURE_LIMIT,
        settings.LOGIN_USERNAME_SOFT_LIMIT,
        settings.LOGIN_COOLDOWN_SECONDS,
        settings.LOGIN_USERNAME_WINDOW_SECONDS,
        settings.LOGIN_USERNAME_DELAY_SECONDS,
        settings.LOGIN_USERNAME_MAX_DELAY_SECONDS,
    ]
    try:
        result = reserve(keys=keys, args=args)
    except redis.RedisError:
        raise LoginUnavailable() from None
    status = result[0].decode()
    if status != "ok":
        raise LoginThrottled(status, int(result[1]))
    return Attempt(user_hash, address, *(int(value) for value in result[1:]))


def attempt_succeeded(attempt: Attempt) -> None:
    _client, _reserve, succeed = _redis()
    keys = [
        pair_key(attempt.username_hash, attempt.address),
        username_key(attempt.username_hash),
        address_key(attempt.address),
        known_key(attempt.username_hash, attempt.address),
    ]
    succeed(keys=keys, args=[settings.LOGIN_KNOWN_ADDRESS_DAYS * 86400])


def clear(keys: list[str]) -> None:
    """Delete counters (an administrator's unlock); raise LoginUnavailable without Redis."""
    client, _reserve, _succeed = _redis()
    try:
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        raise LoginUnavailable() from None


def username_keys(user_hash: str) -> list[str]:
    """Every counter of one username: its shared counter, its gate, each address's pair."""
    client, _reserve, _succeed = _redis()
    try:
        pairs = list(client.scan_iter(match=f"{PREFIX}:pair:{user_hash}:*", count=500))
    except redis.RedisError:
        raise LoginUnavailable() from None
    return [username_key(user_hash), gate_key(user_hash), *(key.decode() for key in pairs)]
