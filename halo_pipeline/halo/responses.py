"""Turning HaloITSM HTTP responses into data or into errors a person can act on.

Halo's error bodies come in every shape (`{"ClassName", "Message"}`, `{"Message"}`,
`{"error"}`, plain text, HTML pages), so errors quote a short, normalised excerpt.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from halo_pipeline.halo.errors import (
    HaloAuthError,
    HaloError,
    HaloIncompleteResponseError,
    HaloMalformedResponseError,
    HaloNotFoundError,
    HaloPermissionError,
    HaloRateLimitError,
    HaloServerError,
    HaloValidationError,
)

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_EXCERPT = 200


def endpoint(response: httpx.Response) -> str:
    """`GET /api/agent`: the method and path, without the query string or host."""
    return f"{response.request.method} {response.request.url.path}"


def _head(response: httpx.Response, size: int = 200) -> str:
    """The start of the body as text, without decoding all of a large answer."""
    return response.content[:size].decode(response.encoding or "utf-8", errors="replace")


def looks_like_html(response: httpx.Response) -> bool:
    head = _head(response).lstrip().lower()
    return "html" in response.headers.get("content-type", "") or head.startswith(
        ("<!doctype html", "<html")
    )


def describe_body(response: httpx.Response) -> str:
    """A one-line excerpt of an error body, whatever its shape."""
    if looks_like_html(response):
        title = _TITLE.search(response.text)
        return "an HTML page" + (f" titled {title.group(1).strip()!r}" if title else "")
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return repr(text[:_EXCERPT]) if text else "an empty body"
    if isinstance(body, dict):
        for key in ("Message", "message", "error_description", "error", "ClassName"):
            if isinstance(body.get(key), str):
                return repr(body[key][:_EXCERPT])
    return repr(json.dumps(body)[:_EXCERPT])


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_status(response: httpx.Response) -> None:
    """Raise the typed error for a non-2xx API response (401 is handled by the auth flow)."""
    status = response.status_code
    if status < 400:
        return
    where, said = endpoint(response), describe_body(response)
    if status == 429:
        raise HaloRateLimitError(
            f"{where}: HaloITSM's rate limit was reached (HTTP 429, {said}). Lower "
            "HALO_MAX_REQUESTS_PER_5_MIN below the instance's limit or sync less often.",
            retry_after=retry_after_seconds(response),
        )
    if status >= 500:
        raise HaloServerError(
            f"{where}: HaloITSM answered HTTP {status} ({said}).",
            retry_after=retry_after_seconds(response),
        )
    if status == 401:
        raise HaloAuthError(
            f"{where}: HaloITSM refused a freshly issued token (HTTP 401, {said}). Check that "
            "the API application is active and that its agent is enabled."
        )
    if status == 403:
        raise HaloPermissionError(
            f"{where}: HaloITSM refused the request (HTTP 403, {said}). Give the API "
            "application's agent the permission for this area in HaloITSM "
            "(Configuration > Integrations > HaloITSM API > Applications) and use scope 'all'."
        )
    if status == 404:
        raise HaloNotFoundError(f"{where}: not found (HTTP 404, {said}).")
    if status == 400:
        raise HaloValidationError(f"{where}: HaloITSM refused the data (HTTP 400, {said}).")
    raise HaloError(f"{where}: unexpected HTTP {status} ({said}).")


def _origin(url: httpx.URL) -> str:
    """`scheme://host[:port]`: the port too, as a wrong one is a usual mistake."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def json_body(response: httpx.Response) -> Any:
    """The JSON of a successful response, or a clear error when it is not JSON."""
    if looks_like_html(response):
        raise HaloMalformedResponseError(
            f"{endpoint(response)} answered HTTP {response.status_code} with "
            f"{describe_body(response)} instead of JSON. Check HALO_BASE_URL: the API must be "
            f"at {{HALO_BASE_URL}}/api (got {_origin(response.request.url)}); a proxy or login "
            "page may be in the way."
        )
    try:
        # From the bytes: decoding a page of 5,000 agents to text first would double it.
        return json.loads(response.content)
    except ValueError as exc:
        raise HaloIncompleteResponseError(
            f"{endpoint(response)} answered HTTP {response.status_code} with a body that is not "
            f"valid JSON ({exc}; starts {_head(response, 80)!r})."
        ) from None
