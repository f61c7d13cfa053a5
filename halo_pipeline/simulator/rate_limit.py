"""HaloITSM's limit: a fixed number of requests per rolling five-minute window."""

import math

from pyrate_limiter import Duration, InMemoryBucket, Rate, RateItem

WINDOW_MS = Duration.MINUTE * 5


class RollingWindow:
    """Admits requests while the last five minutes hold fewer than the limit.

    The bucket is used directly, not through pyrate_limiter's Limiter, because the simulator needs
    the wait for Retry-After (the Limiter only blocks or refuses) and must count on its own
    injectable clock. Not thread-safe on its own: the simulator calls it under its state lock.
    """

    def __init__(self) -> None:
        self._limit: int | None = None
        self._bucket: InMemoryBucket | None = None

    def admit(self, limit: int, now_s: float) -> int | None:
        """None when the request is admitted, else whole seconds until a slot frees."""
        if self._bucket is None or limit != self._limit:
            # The limit is a runtime switch: a new limit starts a fresh window.
            self._limit, self._bucket = limit, InMemoryBucket([Rate(limit, WINDOW_MS)])
        now_ms = int(now_s * 1000)
        self._bucket.leak(now_ms)  # no background leaker: drop what left the window ourselves
        decision = self._bucket.put_decision(RateItem("request", now_ms))
        if decision.allowed:
            return None
        return max(1, math.ceil((decision.retry_after_ms or 0) / 1000))
