"""Errors raised by the HaloITSM client.

Each error says what went wrong and what to change. None of them ever carries the client
secret: messages are built from status codes, URLs without credentials and short excerpts of
response bodies, and `HaloHttp` scrubs the secret from every message as a last line of defence.
"""

from __future__ import annotations


class HaloError(Exception):
    """Base class for every error the HaloITSM client raises."""


class HaloConfigError(HaloError):
    """The client settings are incomplete or inconsistent."""


class HaloAuthError(HaloError):
    """The authorisation server refused the client credentials or scope."""


class HaloTenantError(HaloError):
    """The authorisation server did not recognise the tenant."""


class HaloPermissionError(HaloError):
    """HaloITSM answered 403: the application lacks a permission or scope."""


class HaloNotFoundError(HaloError):
    """HaloITSM answered 404 for a specific object."""


class HaloValidationError(HaloError):
    """HaloITSM answered 400 to a request: the data sent was refused."""


class HaloTransientError(HaloError):
    """A failure worth retrying: it says nothing about the request itself.

    Raised to the caller only once the retries are spent. `maybe_applied` says whether the
    server may have acted on the request, which rules out repeating a create.
    """

    maybe_applied = True
    # Set once retries are spent, so an outer retry (an API call around a token request)
    # does not start over.
    exhausted = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HaloUnreachableError(HaloTransientError):
    """The host could not be reached (DNS, connection refused, TLS, timeouts) after retries."""


class HaloRateLimitError(HaloTransientError):
    """HaloITSM kept answering 429 after every retry."""

    maybe_applied = False


class HaloServerError(HaloTransientError):
    """HaloITSM kept answering 5xx after every retry."""


class HaloMalformedResponseError(HaloError):
    """HaloITSM answered with something that is not the JSON shape the endpoint promises."""


class HaloIncompleteResponseError(HaloTransientError, HaloMalformedResponseError):
    """A successful answer whose body is not whole JSON: usually cut off in transit, so it is
    asked again; once the retries are spent, a malformed answer like any other."""


class HaloBudgetExhaustedError(HaloError):
    """The client-side request budget would have to wait longer than allowed."""


RUN_LEVEL_ERRORS: tuple[type[HaloError], ...] = (
    HaloAuthError,
    HaloTenantError,
    HaloUnreachableError,
    HaloConfigError,
    HaloBudgetExhaustedError,
    HaloRateLimitError,
)
"""Errors about the connection, not about one record: whoever meets one stops and leaves the
rest for the next run, instead of going on to the next record."""
