"""What provisioning may do: the `HALO_*` variables of provisioning and ticketing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import field_validator
from pydantic_settings import NoDecode

from halo_pipeline.environment import SettingsError, json_object
from halo_pipeline.requests.ticketing import Names, TicketSettings

REQUEST_FIELDS = {
    "agent": "CFAccessAgent",
    "role": "CFAccessRole",
    "team": "CFAccessTeam",
    "action": "CFAccessAction",
    "until": "CFAccessUntil",
    "for": "CFAccessFor",
}
"""What each custom field of an access request ticket means, by the field's name in HaloITSM."""

Outcome = Literal["awaiting", "approved", "rejected"]


class ProvisioningSettings(TicketSettings):
    manual_entitlements: Names = frozenset()
    """HALO_MANUAL_ENTITLEMENTS: entitlement ids a person changes; the pipeline opens a ticket."""
    ticket_done_statuses: Names = frozenset({"Completed", "Closed"})
    """HALO_TICKET_DONE_STATUSES: a manual ticket at one of these means done."""
    ticket_failed_statuses: Names = frozenset({"Cancelled"})
    """HALO_TICKET_FAILED_STATUSES: a manual ticket at one of these means the request failed."""
    request_ticket_type: str | None = None
    """HALO_REQUEST_TICKET_TYPE, id or name: the ticket type whose open tickets are access
    requests, taken in by provisioning_job. Unset: none are."""
    request_fields: Annotated[dict[str, str], NoDecode] = REQUEST_FIELDS
    """HALO_REQUEST_FIELDS: a JSON object of meanings to custom field names, over the defaults."""
    approval_results: Annotated[dict[int, Outcome] | None, NoDecode] = None
    """HALO_APPROVAL_RESULTS: what each `result` of a TicketApproval row means. Halo does not
    document it, and a wrong guess would make rejections approvals, so unset means none counts."""
    verify_attempts: int = 6
    """Reads after a write before deciding it did not take (Halo may lag a few seconds)."""
    verify_interval_s: float = 1.0

    @field_validator(
        "manual_entitlements", "ticket_done_statuses", "ticket_failed_statuses", mode="before"
    )
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("request_fields", mode="before")
    @classmethod
    def _request_fields(cls, value: Any) -> Any:
        given = json_object(value, "HALO_REQUEST_FIELDS", '{"role": "CFRole"}')
        unknown = sorted(set(given) - set(REQUEST_FIELDS))
        if unknown:
            raise SettingsError(
                f"HALO_REQUEST_FIELDS names {', '.join(unknown)}: the meanings are "
                f"{', '.join(REQUEST_FIELDS)}."
            )
        return {**REQUEST_FIELDS, **given}

    @field_validator("approval_results", mode="before")
    @classmethod
    def _approval_results(cls, value: Any) -> Any:
        if value is None:
            return None
        example = '{"0": "awaiting", "1": "approved", "2": "rejected"}'
        given = json_object(value, "HALO_APPROVAL_RESULTS", example)
        outcomes = set(Outcome.__args__)  # type: ignore[attr-defined]
        if not all(str(k).lstrip("-").isdigit() and v in outcomes for k, v in given.items()):
            raise SettingsError(
                f"HALO_APPROVAL_RESULTS maps each result number HaloITSM sends to awaiting, "
                f"approved or rejected, e.g. {example}; `halo-pipeline doctor` lists the "
                "results it sees."
            )
        return {int(k): v for k, v in given.items()}
