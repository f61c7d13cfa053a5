"""OAuth2 client-credentials tokens for HaloITSM, as an httpx auth flow."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import httpx

from halo_pipeline.halo.errors import HaloAuthError, HaloTenantError
from halo_pipeline.halo.models import TokenResponse
from halo_pipeline.halo.responses import describe_body, json_body, looks_like_html
from halo_pipeline.halo.settings import HaloSettings

_OAUTH_ADVICE = {
    "invalid_client": (
        "HaloITSM rejected the client credentials (invalid_client). Check HALO_CLIENT_ID and "
        "HALO_CLIENT_SECRET: they must belong to an API application whose authentication "
        "method is 'Client ID and Secret (Services)'."
    ),
    "invalid_scope": (
        "HaloITSM rejected the scope {scope!r} (invalid_scope). Set HALO_SCOPE to 'all' "
        "(Halo has no per-object scopes such as 'read:agents')."
    ),
    "unsupported_grant_type": (
        "HaloITSM does not accept the client_credentials grant at {url} "
        "(unsupported_grant_type). Check HALO_AUTH_URL: it must be the authorisation "
        "server, whose token endpoint is {{HALO_AUTH_URL}}/token."
    ),
    "unauthorized_client": (
        "HaloITSM does not allow this application to use client credentials "
        "(unauthorized_client). Set its authentication method to 'Client ID and Secret "
        "(Services)'."
    ),
}


def token_request(settings: HaloSettings) -> dict[str, object]:
    """Keyword arguments for the token POST (secret in the form body, never in the URL)."""
    request: dict[str, object] = {
        "data": {
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.secret,
            "scope": settings.scope,
        }
    }
    if settings.tenant:
        request["params"] = {"tenant": settings.tenant}
    return request


def parse_token_response(response: httpx.Response, settings: HaloSettings) -> TokenResponse:
    """The token, or the error that says which setting to fix.

    Transient answers (429, 502-504) are raised by the caller's retry check before this runs.
    """
    url = settings.token_url
    if response.status_code in (400, 401):
        try:
            code = response.json().get("error")
        except (ValueError, AttributeError):
            code = None
        if code is None and response.status_code == 401:
            code = "invalid_client"
        advice = _OAUTH_ADVICE.get(code)
        if advice:
            raise HaloAuthError(advice.format(scope=settings.scope, url=url))
        raise HaloAuthError(
            f"The token request to {url} was refused (HTTP {response.status_code}, "
            f"{describe_body(response)}). Check HALO_CLIENT_ID, HALO_CLIENT_SECRET and HALO_SCOPE."
        )
    if response.status_code >= 400 or looks_like_html(response):
        said = f"HTTP {response.status_code} with {describe_body(response)}"
        if settings.tenant:
            raise HaloTenantError(
                f"The token request to {url} for tenant {settings.tenant!r} failed ({said}). "
                "HaloITSM answers this way to an unknown tenant: check HALO_TENANT (the name "
                "from GET {HALO_BASE_URL}/api/authinfo) and HALO_AUTH_URL."
            )
        raise HaloAuthError(
            f"The token request to {url} failed ({said}). Check HALO_AUTH_URL (default "
            "{HALO_BASE_URL}/auth); Halo-hosted instances may also need HALO_TENANT."
        )
    payload = json_body(response)
    try:
        return TokenResponse.model_validate(payload)
    except ValueError:
        raise HaloAuthError(
            f"The token endpoint {url} answered without an access_token. Check HALO_AUTH_URL."
        ) from None


class TokenCache:
    """One bearer token, renewed shortly before it expires or when HaloITSM refuses it.

    Several threads share it during a concurrent sync: `renew` fetches a new token only if the
    one the caller saw is still current, so a burst of 401s costs one token request.
    """

    def __init__(
        self, fetch: Callable[[], TokenResponse], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def current(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._replace()
            assert self._token is not None
            return self._token

    def renew(self, stale: str) -> str:
        with self._lock:
            if self._token == stale:
                self._replace()
            assert self._token is not None
            return self._token

    def _replace(self) -> None:
        issued_at = self._clock()
        token = self._fetch()
        # Renew a minute early (or a tenth of a short lifetime) so a request never leaves
        # with a token that expires in flight.
        margin = min(60.0, token.expires_in / 10)
        self._token = token.access_token
        self._renew_at = issued_at + token.expires_in - margin


class BearerAuth(httpx.Auth):
    """Adds the bearer token; on a 401 renews the token once and resends."""

    def __init__(self, tokens: TokenCache) -> None:
        self._tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._tokens.current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._tokens.renew(stale=token)}"
            yield request
