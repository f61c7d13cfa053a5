"""What provisioning may do: the `HALO_*` variables of provisioning and ticketing."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import NoDecode

from halo_pipeline.environment import FromEnvironment, SettingsError

# What the pipeline itself sets on every ticket it opens; HALO_TICKET_FIELDS may not change it.
OWN_TICKET_FIELDS = frozenset({"id", "summary", "details", "tickettype_id", "status_id"})

Names = Annotated[frozenset[str], NoDecode]
"""A comma-separated list, as a set of trimmed, non-empty entries."""


class ProvisioningSettings(FromEnvironment):
    provisioning: bool = False
    """HALO_PROVISIONING=true: write to HaloITSM. Otherwise plan and record what would change."""
    ticketing: bool = False
    """HALO_TICKETING=true: a HaloITSM ticket for every request."""
    ticket_type: str | None = None
    """HALO_TICKET_TYPE, id or name; default the first type named "Service Request"."""
    ticket_fields: Annotated[dict[str, Any], NoDecode] = {}
    """HALO_TICKET_FIELDS: merged into every ticket opened (a tenant's mandatory fields)."""
    manual_entitlements: Names = frozenset()
    """HALO_MANUAL_ENTITLEMENTS: entitlement ids a person changes; the pipeline opens a ticket."""
    ticket_done_statuses: Names = frozenset({"Completed", "Closed"})
    """HALO_TICKET_DONE_STATUSES: a manual ticket at one of these means done."""
    ticket_failed_statuses: Names = frozenset({"Cancelled"})
    """HALO_TICKET_FAILED_STATUSES: a manual ticket at one of these means the request failed."""
    ticket_open_status: str = "New"
    ticket_closed_status: str = "Closed"
    verify_attempts: int = 6
    """Reads after a write before deciding it did not take (Halo may lag a few seconds)."""
    verify_interval_s: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.provisioning

    @field_validator(
        "manual_entitlements", "ticket_done_statuses", "ticket_failed_statuses", mode="before"
    )
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("ticket_fields", mode="before")
    @classmethod
    def _ticket_fields(cls, value: Any) -> Any:
        return ticket_fields(value) if isinstance(value, str) else value


def ticket_fields(text: str) -> dict[str, Any]:
    """HALO_TICKET_FIELDS: a JSON object merged into every ticket the pipeline opens."""
    try:
        fields = json.loads(text)
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
