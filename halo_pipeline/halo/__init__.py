"""A typed client for the HaloITSM API. Plain Python: no Dagster imports, usable on its own."""

from typing import TYPE_CHECKING, Any

from halo_pipeline.halo.errors import (
    HaloAuthError,
    HaloConfigError,
    HaloError,
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

if TYPE_CHECKING:
    from halo_pipeline.halo.client import HaloClient
    from halo_pipeline.halo.snapshot import HaloSnapshot, fetch_snapshot

# The client and what uses it import httpx, which a command that only reads the warehouse
# (filing a request reads Halo's shapes from `halo.models`) need not load: 0.1 s a command.
_CLIENT = {"HaloClient": "client", "HaloSnapshot": "snapshot", "fetch_snapshot": "snapshot"}


def __getattr__(name: str) -> Any:
    if name in _CLIENT:
        from importlib import import_module

        return getattr(import_module(f"halo_pipeline.halo.{_CLIENT[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HaloAuthError",
    "HaloClient",
    "HaloConfigError",
    "HaloError",
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
