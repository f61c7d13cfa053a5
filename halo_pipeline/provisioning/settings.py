"""What provisioning may do: the `HALO_*` variables of provisioning and ticketing."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import field_validator
from pydantic_settings import NoDecode

from halo_pipeline.environment import FromEnvironment, SettingsError

# What the pipeline itself sets on every ticket it opens; HALO_TICKET_FIELDS may not change it.
OWN_TICKET_FIELDS = frozenset({"id", "summary", "details", "tickettype_id", "status_id"})

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

    @field_validator("request_fields", mode="before")
    @classmethod
    def _request_fields(cls, value: Any) -> Any:
        given = _json_object(value, "HALO_REQUEST_FIELDS", '{"role": "CFRole"}')
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
        given = _json_object(value, "HALO_APPROVAL_RESULTS", example)
        outcomes = set(Outcome.__args__)  # type: ignore[attr-defined]
        if not all(str(k).lstrip("-").isdigit() and v in outcomes for k, v in given.items()):
            raise SettingsError(
                f"HALO_APPROVAL_RESULTS maps each result number HaloITSM sends to awaiting, "
                f"approved or rejected, e.g. {example}; `halo-pipeline doctor` lists the "
                "results it sees."
            )
        return {int(k): v for k, v in given.items()}

    @field_validator("ticket_fields", mode="before")
    @classmethod
    def _ticket_fields(cls, value: Any) -> Any:
        return ticket_fields(value) if isinstance(value, str) else value


def ticket_fields(text: str) -> dict[str, Any]:
    """HALO_TICKET_FIELDS: a JSON object merged into every ticket the pipeline opens."""
    fields = _json_object(text, "HALO_TICKET_FIELDS", '{"category_1": "Access", "client_id": 12}')
    clashing = sorted(OWN_TICKET_FIELDS & set(fields))
    if clashing:
        raise SettingsError(
            f"HALO_TICKET_FIELDS sets {', '.join(clashing)}, which the pipeline sets itself; "
            "use HALO_TICKET_TYPE and HALO_TICKET_OPEN_STATUS for the type and status."
        )
    return fields


def _json_object(value: Any, name: str, example: str) -> dict[str, Any]:
    """A setting written as a JSON object, refused in one line that shows how to write it."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise SettingsError(f"{name} is not valid JSON ({error}); write an object such as "
                            f"{example}.") from None  # fmt: skip
    if not isinstance(parsed, dict):
        raise SettingsError(f"{name} must be a JSON object such as {example}, "
                            f"not a {type(parsed).__name__}.")  # fmt: skip
    return parsed
