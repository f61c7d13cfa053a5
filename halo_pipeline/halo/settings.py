"""Connection settings for one HaloITSM instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from halo_pipeline.halo.errors import HaloConfigError


@dataclass(frozen=True)
class HaloSettings:
    """Where HaloITSM is and how to authenticate; the names match the `HALO_*` variables.

    `client_secret` is excluded from `repr` so the settings can be logged or shown in a
    traceback without leaking it.
    """

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    auth_url: str | None = None
    tenant: str | None = None
    scope: str = "all"
    max_requests_per_5_min: int = 600
    # The budget's window; only tests shorten it.
    budget_window_s: float = 300.0
    # Halo silently truncates larger pages to 100.
    page_size: int = 100
    # Concurrent requests when the number of pages is known; small, to stay polite.
    concurrency: int = 4
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Halo's limit is a rolling 5-minute window, so no honest Retry-After exceeds it.
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        for name, env in (("base_url", "HALO_BASE_URL"), ("auth_url", "HALO_AUTH_URL")):
            value = getattr(self, name)
            if value is None and name == "auth_url":
                continue
            parts = urlsplit(value or "")
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise HaloConfigError(
                    f"{env} must be an http(s) URL such as https://yourcompany.haloitsm.com, "
                    f"got {value!r}"
                )
        if not self.client_id:
            raise HaloConfigError("HALO_CLIENT_ID is empty: set it to the application's Client ID")
        if not self.client_secret:
            raise HaloConfigError(
                "HALO_CLIENT_SECRET is empty: set it to the application's Client Secret"
            )
        if self.max_requests_per_5_min < 1:
            raise HaloConfigError("HALO_MAX_REQUESTS_PER_5_MIN must be at least 1")
        if not 1 <= self.page_size <= 100:
            raise HaloConfigError("page_size must be between 1 and 100 (Halo's maximum)")

    @property
    def api_url(self) -> str:
        return self.base_url.rstrip("/") + "/api"

    @property
    def token_url(self) -> str:
        auth = self.auth_url or self.base_url.rstrip("/") + "/auth"
        return auth.rstrip("/") + "/token"
