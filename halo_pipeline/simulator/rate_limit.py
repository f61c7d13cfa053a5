"""HaloITSM's limit: a fixed number of requests per rolling window (five minutes on Halo)."""

import math

from pyrate_limiter import InMemoryBucket, Rate, RateItem


class RollingWindow:
    """Admits requests while the last `window_s` seconds hold fewer than the limit.

    A sliding log, not a counter reset at fixed times: each request leaves the window on its own
    when it has aged `window_s`, so a client kept at the limit gets one slot back at a time.
    The bucket is used directly, not through pyrate_limiter's Limiter, because the simulator needs
    the wait for Retry-After (the Limiter only blocks or refuses) and must count on its own
    injectable clock. Not thread-safe on its own: the simulator calls it under its state lock.
    """

    def __init__(self) -> None:
        self._rule: tuple[int, float] | None = None
        self._bucket: InMemoryBucket | None = None

    def admit(self, limit: int, window_s: float, now_s: float) -> int | None:
        """None when the request is admitted, else whole seconds until a slot frees."""
        if self._bucket is None or (limit, window_s) != self._rule:
            # Limit and window are runtime switches: a new rule starts a fresh window.
            self._rule = (limit, window_s)
            self._bucket = InMemoryBucket([Rate(limit, max(1, round(window_s * 1000)))])
        now_ms = int(now_s * 1000)
        self._bucket.leak(now_ms)  # no background leaker: drop what left the window ourselves
        decision = self._bucket.put_decision(RateItem("request", now_ms))
        if decision.allowed:
            return None
        return max(1, math.ceil((decision.retry_after_ms or 0) / 1000))
