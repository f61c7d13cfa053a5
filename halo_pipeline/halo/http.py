"""The HTTP layer under the HaloITSM client: tokens, retries, the request budget, counting.

Every request, token requests included, passes the same event hook, which spends one unit of
the client-side budget (a rolling five-minute window, like Halo's own limit) and counts it.
The budget lives in a SQLite file when `budget_path` is set, so every process of one
installation (the schedule, the sensor's runs, the command line) draws on the same one.

Retries use tenacity: exponential backoff with jitter for 5xx and network errors, at most
`max_attempts`. A 429 waits as long as `Retry-After` says or, when Halo sends none (usual),
until the oldest request of this installation leaves the rolling window: Halo counts per
5 minutes, so seconds of backoff would only spend more requests. Waits are bounded in all by
`rate_limit_max_wait_s`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pyrate_limiter import AbstractBucket, InMemoryBucket, Limiter, Rate, SQLiteBucket
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from halo_pipeline.halo.auth import BearerAuth, TokenCache, parse_token_response, token_request
from halo_pipeline.halo.errors import (
    HaloBudgetExhaustedError,
    HaloError,
    HaloRateLimitError,
    HaloTransientError,
    HaloUnreachableError,
)
from halo_pipeline.halo.models import TokenResponse
from halo_pipeline.halo.responses import json_body, raise_for_status
from halo_pipeline.halo.settings import HaloSettings

# Errors from which httpx never sent the request, so repeating even a create is safe.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# A token endpoint answering 500 with a tenant set is Halo's "unknown tenant": not transient.
_TRANSIENT_TOKEN_STATUSES = {429, 502, 503, 504}

_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")
# Long waits are slept in steps, each logged, so a run that waits shows it is alive.
_PROGRESS_EVERY_S = 60.0
# After a 429 that names no wait: retry a little after the oldest request leaves the window
# (a second of a five-minute window), and never sooner than 5 s of it. Fractions of the window,
# so a test's short window keeps the same shape.
_WINDOW_MARGIN = 1 / 300
_WINDOW_MIN_WAIT = 5 / 300
log = logging.getLogger(__name__)
T = TypeVar("T")


class HaloHttp:
    """Authenticated, retried, budgeted JSON requests to one HaloITSM instance."""

    def __init__(
        self,
        settings: HaloSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        logger: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.log = logger or log
        self._sleep = sleep
        self._count_lock = threading.Lock()
        self.requests_by_endpoint: Counter[str] = Counter()
        self.rate_limited: list[float | None] = []
        """The Retry-After of every 429 met (None when Halo sent none)."""
        self._bucket = _budget_bucket(settings)
        self._budget = Limiter(self._bucket)
        hooks = {"request": [self._spend_budget]}
        timeout = httpx.Timeout(settings.timeout_s)
        self._token_http = httpx.Client(
            transport=transport, timeout=timeout, event_hooks=hooks, verify=_tls()
        )
        self._tokens = TokenCache(self._fetch_token, clock=clock)
        self._api = httpx.Client(
            base_url=settings.api_url,
            transport=transport,
            verify=_tls(),
            timeout=timeout,
            auth=BearerAuth(self._tokens),
            event_hooks=hooks,
            headers={"Accept": "application/json", "User-Agent": "halo-pipeline"},
            limits=httpx.Limits(max_connections=settings.concurrency + 2),
        )

    @property
    def request_count(self) -> int:
        with self._count_lock:
            return sum(self.requests_by_endpoint.values())

    def close(self) -> None:
        self._api.close()
        self._token_http.close()
        self._budget.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params, idempotent=True)

    def post(self, path: str, records: list[dict[str, Any]]) -> Any:
        """POST a JSON array; repeated on failure only when every record names its `id`.

        Halo creates a record for each element without `id`, so blindly repeating a create
        whose first attempt may have landed would make duplicates.
        """
        idempotent = all("id" in record for record in records)
        return self._call("POST", path, json=records, idempotent=idempotent)

    def _call(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> Any:
        return self._send(self._api, method, path, _json_or_raise, idempotent, **kwargs)

    def _fetch_token(self) -> TokenResponse:
        settings = self.settings

        def check(response: httpx.Response) -> httpx.Response:
            if response.status_code in _TRANSIENT_TOKEN_STATUSES or (
                response.status_code >= 500 and not settings.tenant
            ):
                raise_for_status(response)
            return response

        response = self._send(
            self._token_http, "POST", settings.token_url, check, True, **token_request(settings)
        )
        return parse_token_response(response, settings)

    def _send(
        self,
        http: httpx.Client,
        method: str,
        url: str,
        read: Callable[[httpx.Response], T],
        idempotent: bool,
        **kwargs: Any,
    ) -> T:
        """`read`'s value for the first answer it accepts; it raises a transient error for one
        worth asking again (a 5xx, a 429, a body cut short)."""

        def retryable(exc: BaseException) -> bool:
            return (
                isinstance(exc, HaloTransientError)
                and not exc.exhausted
                and (idempotent or not exc.maybe_applied)
            )

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            wait=self._wait,
            stop=self._stop,
            sleep=self._sleep_logged,
            before_sleep=self._log_retry,
            retry_error_callback=self._give_up,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        response = http.request(method, url, **kwargs)
                    except httpx.TransportError as exc:
                        raise _unreachable(exc, method, url) from None
                    value = read(response)
            return value
        except HaloError as exc:
            # Last line of defence: whatever a server echoed back, the secret stays out.
            exc.args = tuple(_scrub(str(arg), self.settings.secret) for arg in exc.args)
            raise

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, HaloRateLimitError):
            self.rate_limited.append(retry_after)
        if retry_after is not None:
            return retry_after
        if isinstance(exc, HaloRateLimitError):
            return self._window_frees_in()
        return _backoff(self.settings)(state)

    def _stop(self, state: RetryCallState) -> bool:
        """429s and server-told waits are bounded by the time they take; other failures by
        the number of attempts."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, HaloRateLimitError) or getattr(exc, "retry_after", None) is not None:
            waited = state.idle_for + (state.upcoming_sleep or 0.0)
            return waited > self.settings.rate_limit_max_wait_s
        return state.attempt_number >= self.settings.max_attempts

    def budget_in_use(self) -> list[int]:
        """When (ms) each request the budget counts in its current window was sent, newest
        first: this process's, or every process's when the budget is shared."""
        window_start = self._bucket.now() - self.settings.budget_window_s * 1000
        sent, index = [], 0
        # peek counts from the newest; items older than the window may not have leaked yet.
        while (item := self._bucket.peek(index)) is not None and item.timestamp > window_start:
            sent.append(item.timestamp)
            index += 1
        return sent

    def _window_frees_in(self) -> float:
        """Seconds until the oldest request this installation sent in the budget's window
        leaves it (Halo's window then holds one request fewer), or a whole window when the
        budget has seen none: someone else is spending the tenant's requests."""
        window_s = self.settings.budget_window_s
        sent = self.budget_in_use()
        if not sent:
            return window_s
        frees_in_s = (sent[-1] + window_s * 1000 - self._bucket.now()) / 1000
        return max(window_s * _WINDOW_MIN_WAIT, frees_in_s + window_s * _WINDOW_MARGIN)

    def _sleep_logged(self, seconds: float) -> None:
        while seconds > _PROGRESS_EVERY_S:
            self._sleep(_PROGRESS_EVERY_S)
            seconds -= _PROGRESS_EVERY_S
            self.log.info(f"still waiting for HaloITSM: {seconds:.0f} s left")
        self._sleep(seconds)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        failure = _scrub(str(exc), self.settings.secret)
        if isinstance(exc, HaloRateLimitError):
            self.log.warning(
                f"rate limited, waiting {wait:.0f} s ({failure}; at most "
                f"{self.settings.rate_limit_max_wait_s:.0f} s in all, HALO_RATE_LIMIT_MAX_WAIT_S)"
            )
            return
        self.log.warning(
            f"HaloITSM request failed ({failure}); attempt {state.attempt_number} of "
            f"{self.settings.max_attempts}, retrying in {wait:.1f}s"
        )

    def _give_up(self, state: RetryCallState) -> Any:
        exc = state.outcome.exception() if state.outcome else None
        assert isinstance(exc, HaloTransientError)
        told = exc.retry_after
        if told is not None and told > self.settings.rate_limit_max_wait_s:
            why = f"Retry-After asked for {told:.0f}s, longer than HALO_RATE_LIMIT_MAX_WAIT_S."
        elif isinstance(exc, HaloRateLimitError) or told is not None:
            why = (
                f"Still refused after waiting {state.idle_for:.0f}s in all "
                f"(HALO_RATE_LIMIT_MAX_WAIT_S={self.settings.rate_limit_max_wait_s:.0f})."
            )
        else:
            why = f"Gave up after {state.attempt_number} attempts."
        exc.args = (f"{exc.args[0]} {why}",)
        # An outer retry (an API call around a token request) must not start over.
        exc.exhausted = True
        raise exc

    def _spend_budget(self, request: httpx.Request) -> None:
        # The wait is bounded by the window itself: after one window a slot is always free.
        if not self._budget.try_acquire(
            "halo", blocking=True, timeout=self.settings.budget_window_s + 30
        ):
            raise HaloBudgetExhaustedError(
                "The client-side budget of HALO_MAX_REQUESTS_PER_5_MIN="
                f"{self.settings.max_requests_per_5_min} did not free a slot in time."
            )
        # Ids in paths are folded, so the counts read per endpoint: GET /api/agent/{id}.
        path = _ID_SEGMENT.sub("/{id}", request.url.path)
        with self._count_lock:
            self.requests_by_endpoint[f"{request.method} {path}"] += 1


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of every client in this process: httpx's own defaults (certifi's CA
    bundle, or SSL_CERT_FILE / SSL_CERT_DIR as the process started with them). Left to
    itself httpx builds them for each client, loading the CA bundle each time (about 35 ms,
    twice per HaloHttp: a sensor tick or command that made one paid it twice)."""
    return httpx.create_ssl_context()


def _json_or_raise(response: httpx.Response) -> Any:
    raise_for_status(response)
    return json_body(response) if response.content else None


def _backoff(settings: HaloSettings) -> wait_exponential_jitter:
    return wait_exponential_jitter(
        multiplier=settings.backoff_initial_s,
        max=settings.backoff_max_s,
        jitter=settings.backoff_initial_s,
    )


def _budget_bucket(settings: HaloSettings) -> AbstractBucket:
    """The request log the budget counts: in memory, or in a SQLite file shared, under a file
    lock, by every process that names it."""
    rates = [Rate(settings.max_requests_per_5_min, int(settings.budget_window_s * 1000))]
    if settings.budget_path is None:
        return InMemoryBucket(rates)
    Path(settings.budget_path).parent.mkdir(parents=True, exist_ok=True)
    return SQLiteBucket.init_from_file(
        rates, table="halo_requests", db_path=str(settings.budget_path), use_file_lock=True
    )


def _unreachable(exc: httpx.TransportError, method: str, url: str) -> HaloUnreachableError:
    with contextlib.suppress(RuntimeError):  # RuntimeError: no request attached
        url = str(exc.request.url.copy_with(query=None))
    error = HaloUnreachableError(
        f"{method} {url}: could not reach HaloITSM ({type(exc).__name__}: "
        f"{exc or 'no detail'}). Check HALO_BASE_URL / HALO_AUTH_URL and that this machine "
        "can reach the host."
    )
    error.maybe_applied = not isinstance(exc, _NOT_SENT)
    return error


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
