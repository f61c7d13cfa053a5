"""A typed client for the HaloITSM API. Plain Python: no Dagster imports, usable on its own."""

from halo_pipeline.halo.client import HaloClient
from halo_pipeline.halo.errors import (
    HaloAuthError,
    HaloConfigError,
    HaloError,
    HaloInconsistentError,
    HaloMalformedResponseError,
    HaloNotFoundError,
    HaloPermissionError,
    HaloRateLimitError,
    HaloServerError,
    HaloTenantError,
    HaloUnreachableError,
    HaloValidationError,
)
from halo_pipeline.halo.settings import HaloSettings
from halo_pipeline.halo.snapshot import HaloSnapshot, fetch_snapshot

__all__ = [
    "HaloAuthError",
    "HaloClient",
    "HaloConfigError",
    "HaloError",
    "HaloInconsistentError",
    "HaloMalformedResponseError",
    "HaloNotFoundError",
    "HaloPermissionError",
    "HaloRateLimitError",
    "HaloServerError",
    "HaloSettings",
    "HaloSnapshot",
    "HaloTenantError",
    "HaloUnreachableError",
    "HaloValidationError",
    "fetch_snapshot",
]
