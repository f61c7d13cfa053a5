"""Connection settings for one HaloITSM instance: the `HALO_*` variables of the connection."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from halo_pipeline.environment import FromEnvironment
from halo_pipeline.halo.errors import HaloConfigError

DETAIL_SHARE = 0.7
"""The share of the request budget a sync's detail reads take by default."""


class HaloSettings(FromEnvironment):
    """Where HaloITSM is and how to authenticate (`HALO_BASE_URL`, `HALO_CLIENT_ID`, ...), and
    how politely to ask. `client_secret` is a `SecretStr`: the settings can be logged or shown
    in a traceback without it."""

    error: ClassVar[type[Exception]] = HaloConfigError
    unset_hint: ClassVar[str] = (
        "put the HaloITSM instance and its API application's credentials in the environment "
        "or in .env (see .env.example)."
    )

    base_url: str
    client_id: str
    client_secret: SecretStr
    auth_url: str | None = None
    tenant: str | None = None
    scope: str = "all"
    # Below the 300 per rolling 5 minutes seen on hosted tenants, leaving room for others.
    max_requests_per_5_min: int = Field(default=270, ge=1)
    # Longest a request waits in all for a 429 (or another server-told wait) to clear: a
    # rolling 5-minute window frees up within 300 s.
    rate_limit_max_wait_s: float = Field(default=330.0, ge=0)
    # The budget's window; only tests shorten it.
    budget_window_s: float = 300.0
    # Where the budget's request log lives: a file every process of the installation shares.
    # None keeps it in this process (a library user, a test).
    budget_path: str | None = None
    # Agents whose details a sync may read when only details name their roles (see
    # halo/ladder.py); None: what 70% of the budget allows in 10 minutes (378 of 270 per 5
    # minutes), so provisioning and the command line keep their share.
    detail_reads_per_sync: int | None = Field(default=None, ge=1)
    # Halo silently truncates larger pages to 100.
    page_size: int = Field(default=100, ge=1, le=100)
    # Concurrent requests when the number of pages is known; small, to stay polite.
    concurrency: int = 4
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    @field_validator("base_url", "auth_url")
    @classmethod
    def _http_url(cls, value: str | None, info: object) -> str | None:
        parts = urlsplit(value or "")
        if value is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            name = cls.variable(getattr(info, "field_name", "base_url"))
            raise ValueError(
                f"{name} must be an http(s) URL such as https://yourcompany.haloitsm.com, "
                f"got {value!r}"
            )
        return value

    @property
    def detail_allowance(self) -> int:
        """The agent details one sync may read: HALO_DETAIL_READS_PER_SYNC, or its default."""
        if self.detail_reads_per_sync is not None:
            return self.detail_reads_per_sync
        return int(DETAIL_SHARE * self.max_requests_per_5_min * 600 / 300)

    @property
    def secret(self) -> str:
        """The client secret, for the one request that sends it."""
        return self.client_secret.get_secret_value()

    @property
    def api_url(self) -> str:
        return self.base_url.rstrip("/") + "/api"

    @property
    def token_url(self) -> str:
        auth = self.auth_url or self.base_url.rstrip("/") + "/auth"
        return auth.rstrip("/") + "/token"
