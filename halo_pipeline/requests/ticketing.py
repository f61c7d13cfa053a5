"""HaloITSM tickets as every part of the pipeline opens them (a request's record, a person's
work, a reviewer's campaign): the `HALO_*` ticketing settings, ticket types and statuses looked
up by name, and a create that says what to set when HaloITSM refuses the type. Plain Python."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import NoDecode

from halo_pipeline.environment import FromEnvironment, SettingsError, json_object
from halo_pipeline.halo import HaloClient, HaloError, HaloValidationError
from halo_pipeline.halo.models import Ticket, TicketType

DEFAULT_TICKET_TYPE = "Service Request"
APPROVAL_AT_CREATION = "APP03"
"""What HaloITSM's 400 names when a ticket type's approval process refuses API-made tickets."""
# What the pipeline itself sets on every ticket it opens; HALO_TICKET_FIELDS may not change it.
OWN_TICKET_FIELDS = frozenset({"id", "summary", "details", "tickettype_id", "status_id"})

Names = Annotated[frozenset[str], NoDecode]
"""A comma-separated list, as a set of trimmed, non-empty entries."""


class TicketSettings(FromEnvironment):
    provisioning: bool = False
    """HALO_PROVISIONING=true: write to HaloITSM. Otherwise plan and record what would change."""
    ticketing: bool = False
    """HALO_TICKETING=true: a HaloITSM ticket for every request."""
    ticket_type: str | None = None
    """HALO_TICKET_TYPE, id or name; default the first type named "Service Request"."""
    ticket_fields: Annotated[dict[str, Any], NoDecode] = {}
    """HALO_TICKET_FIELDS: merged into every ticket opened (a tenant's mandatory fields)."""
    ticket_open_status: str = "New"
    ticket_closed_status: str = "Closed"
    review_ticket_type: str | None = None
    """HALO_REVIEW_TICKET_TYPE, id or name: the type of the tickets `review start --notify`
    opens for reviewers; default HALO_TICKET_TYPE's."""

    @property
    def enabled(self) -> bool:
        return self.provisioning

    @property
    def writes_tickets(self) -> bool:
        """Notes, closures and new tickets are writes: they need both switches."""
        return self.provisioning and self.ticketing

    @field_validator("ticket_fields", mode="before")
    @classmethod
    def _ticket_fields(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        fields = json_object(
            value, "HALO_TICKET_FIELDS", '{"category_1": "Access", "client_id": 12}'
        )
        clashing = sorted(OWN_TICKET_FIELDS & set(fields))
        if clashing:
            raise SettingsError(
                f"HALO_TICKET_FIELDS sets {', '.join(clashing)}, which the pipeline sets itself; "
                "use HALO_TICKET_TYPE and HALO_TICKET_OPEN_STATUS for the type and status."
            )
        return fields


class TicketSetupError(HaloError):
    """The ticket type or a status named in the settings does not exist in HaloITSM, or
    HaloITSM refuses tickets of that type from the API."""


class TicketStatuses:
    """Ticket status ids by name (they differ per tenant), read once from `GET /api/status`."""

    def __init__(self, client: HaloClient) -> None:
        self._client = client
        self._ids: dict[str, int] | None = None

    def id_of(self, name: str) -> int:
        ids = self._load()
        if name not in ids:
            raise TicketSetupError(
                f"HaloITSM has no ticket status named {name!r}; its statuses are "
                f"{', '.join(sorted(ids))}. Check the HALO_TICKET_* settings."
            )
        return ids[name]

    def of_ticket(self, ticket_id: int) -> str:
        """The name of the status a ticket is at now."""
        status_id = self._client.get_ticket(ticket_id).status_id
        names = {number: name for name, number in self._load().items()}
        return names.get(status_id or -1, f"status {status_id}")

    def _load(self) -> dict[str, int]:
        if self._ids is None:
            self._ids = {status.name: status.id for status in self._client.list_statuses()}
        return self._ids


def find_ticket_type(ticket_types: list[TicketType], wanted: str) -> TicketType | None:
    """The ticket type `wanted` names (its id or name); names can repeat across types."""
    return next((t for t in ticket_types if wanted in (str(t.id), t.name)), None)


def ticket_type_named(ticket_types: list[TicketType], wanted: str, setting: str) -> int:
    """The id of the ticket type `wanted` names (its id or name), as of the last sync."""
    found = find_ticket_type(ticket_types, wanted)
    if found is not None:
        return found.id
    known = ", ".join(f"{t.name} ({t.id})" for t in ticket_types) or "none synced"
    raise TicketSetupError(
        f"No ticket type {wanted!r} in HaloITSM (as of the last sync). Set {setting} to one "
        f"of: {known}."
    )


def create_ticket(
    client: HaloClient, ticket: dict[str, Any], type_name: str, setting: str
) -> Ticket:
    """`POST /api/tickets`; a type whose approval process refuses tickets logged through the
    API (a 400 naming APP03) is said as the setting to change (`setting`, naming `type_name`)."""
    try:
        return client.save_ticket(ticket)
    except HaloValidationError as error:
        if APPROVAL_AT_CREATION not in str(error):
            raise
        raise TicketSetupError(
            f"HaloITSM refuses tickets of type {type_name!r} created through the API: "
            f"its approval process must approve a ticket before it is logged. Set {setting} to "
            f"a type whose approval process starts once the ticket exists. {error}"
        ) from None
