"""Access requests people file in HaloITSM: open tickets of HALO_REQUEST_TICKET_TYPE become
requests, each resolved exactly as `halo-pipeline request` resolves names.

A ticket files at most one request: `provisioning.request_tickets` is keyed on the ticket, and
a request filed from a ticket carries the ticket's id, so a run that dies between the two is
not followed by a second request. A ticket that cannot become one is answered on the ticket
(what is wrong, what to do) and closed; nothing is written to any agent. Plain Python, run by
provisioning_job under the applier lock, so no two runs take in the same ticket at once.

Before a request filed from a ticket is applied, the ticket is read again and must still ask
exactly what the request says (`mismatch`): HaloITSM's ticket, which the approvers saw, is the
authority, so neither an edit of the ticket nor a row changed in the warehouse goes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from halo_pipeline.halo import HaloClient
from halo_pipeline.halo.models import CustomField, Ticket, is_empty_date
from halo_pipeline.policy.document import parse_duration
from halo_pipeline.policy.gate import say_duration
from halo_pipeline.provisioning.filing import file_membership
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.catalog import Catalog
from halo_pipeline.requests.identities import agent_with_email, normal
from halo_pipeline.requests.queue import Request
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.requests.ticketing import TicketStatuses, ticket_type_named
from halo_pipeline.warehouse import OpenWarehouse, transaction

WHAT_TO_DO = "Open a new access request with the fields corrected; this one is closed."


@dataclass(frozen=True)
class Asked:
    """What a request ticket's fields ask for."""

    action: str
    agent: str
    role: str | None
    team: str | None
    ends: datetime | timedelta | None


@dataclass
class Intake:
    filed: list[int]
    refused: dict[int, str]
    """Ticket id -> why it could not become a request."""


def request_ticket_type(settings: ProvisioningSettings, catalog: Catalog) -> int | None:
    """The id of HALO_REQUEST_TICKET_TYPE as of the last sync; None when it is unset."""
    wanted = settings.request_ticket_type
    if not wanted:
        return None
    return ticket_type_named(catalog.ticket_types, wanted, "HALO_REQUEST_TICKET_TYPE")


def read_fields(ticket: Ticket, names: dict[str, str]) -> Asked:
    """What the ticket asks, from its custom fields as Halo sends them: each field's `display`,
    else its `value`; dates from `value`, Halo's empty dates read as empty."""
    fields = {field.name: field for field in ticket.customfields or ()}

    def text(meaning: str) -> str:
        field = fields.get(names[meaning])
        if field is None:
            return ""
        for candidate in (field.display, field.value):
            if not is_empty_date(candidate):
                return str(candidate).strip()
        return ""

    def label(meaning: str) -> str:
        field = fields.get(names[meaning])
        shown = field.label if field is not None and field.label else names[meaning]
        return f"{shown} ({names[meaning]})"

    action = (text("action") or "grant").casefold()
    if action not in ("grant", "revoke"):
        raise RequestRefused(f"{label('action')} reads {action!r}: write grant or revoke.")
    agent = text("agent")
    if not agent:
        raise RequestRefused(f"{label('agent')} is empty: name the agent by email or id.")
    role, team = text("role") or None, text("team") or None
    if (role is None) == (team is None):
        raise RequestRefused(f"Fill in exactly one of {label('role')} and {label('team')}.")
    until, length = _until(fields.get(names["until"]), label("until")), text("for")
    if until and length:
        raise RequestRefused(f"Fill in {label('until')} or {label('for')}, not both.")
    ends: datetime | timedelta | None = until
    if length:
        try:
            ends = parse_duration(length)
        except ValueError as error:
            raise RequestRefused(f"{label('for')} reads {length!r}: {error}") from None
    return Asked(action, agent, role, team, ends)


def _until(field: CustomField | None, label: str) -> datetime | None:
    raw = field.value if field is not None else None
    if is_empty_date(raw):
        return None
    try:
        when = datetime.fromisoformat(str(raw))
    except ValueError:
        raise RequestRefused(
            f"{label} reads {str(raw)[:40]!r}: not a date; pick a date such as 2026-12-01."
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def requesters(client: HaloClient, ticket: Ticket) -> set[int]:
    """The agents who count as asking, for the rule that nobody approves their own request:
    the agent the end user's record belongs to, the agent with the end user's email, and the
    agent who logged the ticket for them (Halo's `reportedby`, when it is an email)."""
    found = []
    if ticket.user_id and ticket.user_id > 0:
        linked = client.get_user(ticket.user_id).linked_agent_id
        if linked:
            found.append(linked)
    for email in (ticket.user_email, ticket.reportedby):
        agent = agent_with_email(client, email)
        if agent is not None:
            found.append(agent)
    return set(found)


def mismatch(catalog: Catalog, names: dict[str, str], ticket: Ticket, request: Request) -> str:
    """How the ticket's fields now differ from the request filed from it, in words; "" when
    the ticket still asks exactly what the request says."""
    try:
        asked = read_fields(ticket, names)
        agent = catalog.find_agent(asked.agent).agent_id
        wanted = catalog.find_role(asked.role) if asked.role else catalog.find_team(str(asked.team))
    except RequestRefused as refused:
        return str(refused)
    ends = asked.ends
    now = {
        "action": asked.action,
        "agent": agent,
        "access": wanted.entitlement_id,
        "until": ends if isinstance(ends, datetime) else None,
        "for": ends if isinstance(ends, timedelta) else None,
        "requested by": normal(ticket.user_email),
    }
    filed = {
        "action": request.action,
        "agent": request.agent_id,
        "access": request.entitlement_id,
        "until": request.expires_at if request.valid_for is None else None,
        "for": request.valid_for,
        "requested by": normal(request.requested_by),
    }
    return "; ".join(
        f"{name}: the request says {_said(filed[name])}, the ticket asks {_said(now[name])}"
        for name in filed
        if filed[name] != now[name]
    )


def _said(value: Any) -> str:
    if isinstance(value, timedelta):
        return say_duration(value)
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return repr(value)


def take_in(
    client: HaloClient, open_warehouse: OpenWarehouse, settings: ProvisioningSettings, log: Any
) -> Intake:
    """File a request from every open request ticket not taken in yet; answer and close those
    that cannot be one (when provisioning may write; a dry run says what it would post and
    keeps no record, so a later run answers it). No warehouse connection is held while
    HaloITSM is asked."""
    intake = Intake([], {})
    with open_warehouse() as con:
        type_id = request_ticket_type(settings, Catalog.load(con))
        if type_id is None:
            return intake
        done = taken(con)
    statuses = TicketStatuses(client)
    for listed in client.open_tickets(type_id):
        if listed.id in done:
            continue
        ticket = client.get_ticket(listed.id)  # custom fields come in the detail
        try:
            asked = read_fields(ticket, settings.request_fields)
            with open_warehouse() as con:
                filed = file_membership(
                    con, asked.action, agent=asked.agent, role=asked.role, team=asked.team,
                    reason=_reason(ticket), requested_by=ticket.user_email or "",
                    ends=asked.ends, ticket_id=ticket.id,
                )  # fmt: skip
                _record(con, ticket.id, filed.request_id, None)
        except RequestRefused as refused:
            intake.refused[ticket.id] = str(refused)
            note = f"This request cannot go ahead: {refused} {WHAT_TO_DO}"
            if not (settings.enabled and settings.ticketing):
                log.warning(f"ticket {ticket.id}: would post and close (a dry run): {note}")
                continue
            # Answered first, recorded after: a failed answer is tried again by the next run.
            client.add_action(ticket.id, note, statuses.id_of(settings.ticket_closed_status))
            with open_warehouse() as con:
                _record(con, ticket.id, None, str(refused))
            log.warning(f"ticket {ticket.id} answered and closed: {note}")
            continue
        intake.filed.append(filed.request_id)
        log.info(f"ticket {ticket.id} filed request {filed.request_id}: {filed.description}")
    return intake


def taken(con: duckdb.DuckDBPyConnection) -> set[int]:
    rows = con.execute(
        "SELECT ticket_id FROM provisioning.request_tickets UNION "
        "SELECT ticket_id FROM provisioning.requests WHERE ticket_id IS NOT NULL"
    ).fetchall()
    return {int(ticket_id) for (ticket_id,) in rows}


def _record(
    con: duckdb.DuckDBPyConnection, ticket_id: int, request_id: int | None, refused: str | None
) -> None:
    with transaction(con):
        con.execute(
            "INSERT INTO provisioning.request_tickets (ticket_id, request_id, refused) "
            "VALUES (?, ?, ?) ON CONFLICT (ticket_id) DO NOTHING",
            [ticket_id, request_id, refused],
        )


def _reason(ticket: Ticket) -> str:
    details = (ticket.details or "").strip()
    return f"{ticket.summary.strip()}\n\n{details}" if details else ticket.summary.strip()
