"""What provisioning may do, from the `HALO_*` variables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# What the pipeline itself sets on every ticket it opens; HALO_TICKET_FIELDS may not change it.
OWN_TICKET_FIELDS = frozenset({"id", "summary", "details", "tickettype_id", "status_id"})


class SettingsError(ValueError):
    """A HALO_* provisioning variable cannot be used; the message says how to write it."""


def ticket_fields(text: str | None) -> dict[str, Any]:
    """HALO_TICKET_FIELDS: a JSON object merged into every ticket the pipeline opens."""
    if not (text or "").strip():
        return {}
    try:
        fields = json.loads(text or "")
    except ValueError as error:
        raise SettingsError(
            f"HALO_TICKET_FIELDS is not valid JSON ({error}); write an object such as "
            '{"category_1": "Access", "client_id": 12}.'
        ) from None
    if not isinstance(fields, dict):
        raise SettingsError(
            'HALO_TICKET_FIELDS must be a JSON object such as {"category_1": "Access"}, '
            f"not a {type(fields).__name__}."
        )
    clashing = sorted(OWN_TICKET_FIELDS & set(fields))
    if clashing:
        raise SettingsError(
            f"HALO_TICKET_FIELDS sets {', '.join(clashing)}, which the pipeline sets itself; "
            "use HALO_TICKET_TYPE and HALO_TICKET_OPEN_STATUS for the type and status."
        )
    return fields


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
    ticket_fields: dict[str, Any] = field(default_factory=dict)
    """HALO_TICKET_FIELDS: merged into every ticket opened (a tenant's mandatory fields)."""
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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProvisioningSettings:
        """The settings the `HALO_*` variables describe; unset ones take their defaults."""
        defaults = cls()

        def text(name: str, default: str) -> str:
            return env.get(name) or default

        return cls(
            enabled=text("HALO_PROVISIONING", "false").strip().lower() == "true",
            ticketing=text("HALO_TICKETING", "false").strip().lower() == "true",
            ticket_type=env.get("HALO_TICKET_TYPE") or None,
            ticket_fields=ticket_fields(env.get("HALO_TICKET_FIELDS")),
            manual_entitlements=names(env.get("HALO_MANUAL_ENTITLEMENTS")),
            done_statuses=names(env.get("HALO_TICKET_DONE_STATUSES")) or defaults.done_statuses,
            failed_statuses=(
                names(env.get("HALO_TICKET_FAILED_STATUSES")) or defaults.failed_statuses
            ),
            open_status=text("HALO_TICKET_OPEN_STATUS", defaults.open_status),
            closed_status=text("HALO_TICKET_CLOSED_STATUS", defaults.closed_status),
        )
