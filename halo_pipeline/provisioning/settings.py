"""What provisioning may do, from the `HALO_*` variables."""

from __future__ import annotations

from dataclasses import dataclass, field


def names(text: str | None) -> frozenset[str]:
    """A comma-separated list, as a set of trimmed, non-empty entries."""
    return frozenset(part.strip() for part in (text or "").split(",") if part.strip())


@dataclass(frozen=True)
class ProvisioningSettings:
    enabled: bool = False
    """HALO_PROVISIONING=true: write to HaloITSM. Otherwise plan and record what would change."""
    ticketing: bool = False
    """HALO_TICKETING=true: a HaloITSM ticket for every request."""
    ticket_type: str | None = None
    """HALO_TICKET_TYPE, id or name; default the first type named "Service Request"."""
    manual_entitlements: frozenset[str] = field(default_factory=frozenset)
    """HALO_MANUAL_ENTITLEMENTS: entitlement ids a person changes; the pipeline opens a ticket."""
    done_statuses: frozenset[str] = frozenset({"Completed", "Closed"})
    """HALO_TICKET_DONE_STATUSES: a manual ticket at one of these means done."""
    failed_statuses: frozenset[str] = frozenset({"Cancelled"})
    """HALO_TICKET_FAILED_STATUSES: a manual ticket at one of these means the request failed."""
    open_status: str = "New"
    closed_status: str = "Closed"
    verify_attempts: int = 6
    """Reads after a write before deciding it did not take (Halo may lag a few seconds)."""
    verify_interval_s: float = 1.0
