"""Connection settings for one HaloITSM instance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
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
    # Below the 300 per rolling 5 minutes seen on hosted tenants, leaving room for others.
    max_requests_per_5_min: int = 270
    # The budget's window; only tests shorten it.
    budget_window_s: float = 300.0
    # Where the budget's request log lives: a file every process of the installation shares.
    # None keeps it in this process (a library user, a test).
    budget_path: str | None = None
    # Longest a request waits in all for a 429 (or another server-told wait) to clear: a
    # rolling 5-minute window frees up within 300 s.
    rate_limit_max_wait_s: float = 330.0
    # Halo silently truncates larger pages to 100.
    page_size: int = 100
    # Concurrent requests when the number of pages is known; small, to stay polite.
    concurrency: int = 4
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

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
        if self.rate_limit_max_wait_s < 0:
            raise HaloConfigError("HALO_RATE_LIMIT_MAX_WAIT_S must be 0 or more seconds")
        if not 1 <= self.page_size <= 100:
            raise HaloConfigError("page_size must be between 1 and 100 (Halo's maximum)")

    @property
    def api_url(self) -> str:
        return self.base_url.rstrip("/") + "/api"

    @property
    def token_url(self) -> str:
        auth = self.auth_url or self.base_url.rstrip("/") + "/auth"
        return auth.rstrip("/") + "/token"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> HaloSettings:
        """The settings the `HALO_*` variables describe; a missing required one is named."""
        missing = [
            name
            for name in ("HALO_BASE_URL", "HALO_CLIENT_ID", "HALO_CLIENT_SECRET")
            if not env.get(name)
        ]
        if missing:
            raise HaloConfigError(
                f"{', '.join(missing)} not set: put the HaloITSM instance and its API "
                "application's credentials in the environment or in .env (see .env.example)."
            )
        numbers: dict[str, Any] = {}
        for name, variable, kind in (
            ("max_requests_per_5_min", "HALO_MAX_REQUESTS_PER_5_MIN", int),
            ("rate_limit_max_wait_s", "HALO_RATE_LIMIT_MAX_WAIT_S", float),
        ):
            if env.get(variable):
                try:
                    numbers[name] = kind(env[variable])
                except ValueError:
                    raise HaloConfigError(
                        f"{variable} must be a number, got {env[variable][:40]!r}"
                    ) from None
        return cls(
            base_url=env["HALO_BASE_URL"],
            client_id=env["HALO_CLIENT_ID"],
            client_secret=env["HALO_CLIENT_SECRET"],
            auth_url=env.get("HALO_AUTH_URL") or None,
            tenant=env.get("HALO_TENANT") or None,
            scope=env.get("HALO_SCOPE") or "all",
            **numbers,
            **overrides,
        )
