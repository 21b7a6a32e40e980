import time
import weakref


class TokenBucket:
    """Per-connection frame budget: `rate` frames a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# One bucket per user in this worker, shared by all of that user's sockets here (kept alive
# by the sockets that hold it): opening more tabs does not buy more frames. Across W
# workers a user gets at most W budgets (and WS_SOCKETS_PER_USER sockets in all).
_user_buckets: "weakref.WeakValueDictionary[int, TokenBucket]" = weakref.WeakValueDictionary()


def user_bucket(user_id: int, rate: float, burst: int) -> TokenBucket:
    bucket = _user_buckets.get(user_id)
    if bucket is None:
        bucket = TokenBucket(rate, burst)
        _user_buckets[user_id] = bucket
    return bucket
