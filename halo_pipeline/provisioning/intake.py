"""Access requests people file in HaloITSM: open tickets of HALO_REQUEST_TICKET_TYPE become
requests, each resolved exactly as `halo-pipeline request` resolves names.

A ticket files at most one request: `provisioning.request_tickets` is keyed on the ticket, and
a request filed from a ticket carries the ticket's id, so a run that dies between the two is
not followed by a second request. A ticket that cannot become one is answered on the ticket
(what is wrong, what to do) and closed; nothing is written to any agent. Plain Python, run by
provisioning_job under the applier lock, so no two runs take in the same ticket at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from halo_pipeline.halo import HaloClient
from halo_pipeline.halo.models import CustomField, Ticket
from halo_pipeline.policy.document import parse_duration
from halo_pipeline.provisioning.filing import file_membership
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import ticket_type_named
from halo_pipeline.requests.catalog import Catalog
from halo_pipeline.requests.identities import agent_with_email
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.warehouse import OpenWarehouse, transaction

EMPTY_DATES = ("1900-01-01", "0001-01-01")
"""How Halo sends a date that has no value."""
WHAT_TO_DO = "Open a new access request with the fields corrected; this one is closed."


@dataclass(frozen=True)
class Asked:
    """What a request ticket's fields ask for."""

    action: str
    agent: str
    role: str | None
    team: str | None
    ends: datetime | timedelta | None

    def as_dict(self) -> dict[str, str | None]:
        ends = self.ends
        return {
            "action": self.action, "agent": self.agent, "role": self.role, "team": self.team,
            "ends": ends.isoformat() if isinstance(ends, datetime)
            else (f"{int(ends.total_seconds())}s" if ends is not None else None),
        }  # fmt: skip


def changes(taken: dict[str, Any], now: Asked) -> str:
    """What differs between the fields a ticket was taken in with and its fields now."""
    current = now.as_dict()
    return "; ".join(
        f"{name} was {taken.get(name)!r}, is {current[name]!r}"
        for name in current
        if taken.get(name) != current[name]
    )


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
            if candidate not in (None, "") and not _empty_date(candidate):
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
    if raw in (None, "") or _empty_date(raw):
        return None
    try:
        when = datetime.fromisoformat(str(raw))
    except ValueError:
        raise RequestRefused(
            f"{label} reads {str(raw)[:40]!r}: not a date; pick a date such as 2026-12-01."
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _empty_date(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(EMPTY_DATES)


def requesters(client: HaloClient, ticket: Ticket) -> list[int]:
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
    return sorted(set(found))


def take_in(
    client: HaloClient, open_warehouse: OpenWarehouse, settings: ProvisioningSettings, log: Any
) -> Intake:
    """File a request from every open request ticket not taken in yet; answer and close those
    that cannot be one (when provisioning may write; a dry run says what it would post)."""
    intake = Intake([], {})
    with open_warehouse() as con:
        type_id = request_ticket_type(settings, Catalog.load(con))
        if type_id is None:
            return intake
        taken = _taken(con)
    for listed in client.open_tickets(type_id):
        if listed.id in taken:
            continue
        ticket = client.get_ticket(listed.id)  # custom fields come in the detail
        who = requesters(client, ticket)
        with open_warehouse() as con:
            try:
                asked = read_fields(ticket, settings.request_fields)
                filed = file_membership(
                    con, asked.action, agent=asked.agent, role=asked.role, team=asked.team,
                    reason=_reason(ticket), requested_by=ticket.user_email or "",
                    ends=asked.ends, ticket_id=ticket.id,
                )  # fmt: skip
            except RequestRefused as refused:
                intake.refused[ticket.id] = str(refused)
                # A dry run posts no answer, so it keeps no record: a later run answers it.
                if settings.enabled and settings.ticketing:
                    _record(con, ticket, who, None, str(refused), None)
                continue
            _record(con, ticket, who, filed.request_id, None, asked)
        intake.filed.append(filed.request_id)
        log.info(f"ticket {ticket.id} filed request {filed.request_id}: {filed.description}")
    for ticket_id, why in intake.refused.items():
        refuse(client, settings, ticket_id, f"This request cannot go ahead: {why} {WHAT_TO_DO}",
               log)  # fmt: skip
    return intake


def refuse(
    client: HaloClient, settings: ProvisioningSettings, ticket_id: int, note: str, log: Any
) -> None:
    """Answer the ticket with `note`, visible to the end user, and close it: a write, so only
    when provisioning and ticketing are on."""
    if not (settings.enabled and settings.ticketing):
        log.warning(f"ticket {ticket_id}: would post and close (a dry run): {note}")
        return
    closed = {s.name: s.id for s in client.list_statuses()}.get(settings.ticket_closed_status)
    client.add_action(ticket_id, note, closed)
    log.warning(f"ticket {ticket_id} answered and closed: {note}")


def _taken(con: duckdb.DuckDBPyConnection) -> set[int]:
    rows = con.execute(
        "SELECT ticket_id FROM provisioning.request_tickets UNION "
        "SELECT ticket_id FROM provisioning.requests WHERE ticket_id IS NOT NULL"
    ).fetchall()
    return {int(ticket_id) for (ticket_id,) in rows}


def _record(
    con: duckdb.DuckDBPyConnection, ticket: Ticket, who: list[int], request_id: int | None,
    refused: str | None, asked: Asked | None,
) -> None:  # fmt: skip
    with transaction(con):
        con.execute(
            "INSERT INTO provisioning.request_tickets (ticket_id, request_id, user_email, "
            "requester_agent_ids, refused, asked, last_update) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (ticket_id) DO NOTHING",
            [ticket.id, request_id, ticket.user_email, who, refused,
             json.dumps(asked.as_dict()) if asked else None, ticket.last_update],
        )  # fmt: skip


@dataclass(frozen=True)
class TakenIn:
    """A request filed from a ticket: who asked, as agents, and what the fields asked then."""

    requesters: frozenset[int]
    asked: dict[str, Any]


def taken_in(con: duckdb.DuckDBPyConnection, request_ids: list[int]) -> dict[int, TakenIn]:
    rows = con.execute(
        "SELECT request_id, requester_agent_ids, asked FROM provisioning.request_tickets "
        "WHERE list_contains(?, request_id)",
        [request_ids],
    ).fetchall()
    return {
        int(request_id): TakenIn(frozenset(ids or ()), json.loads(asked or "{}"))
        for request_id, ids, asked in rows
    }


def _reason(ticket: Ticket) -> str:
    details = (ticket.details or "").strip()
    return f"{ticket.summary.strip()}\n\n{details}" if details else ticket.summary.strip()
