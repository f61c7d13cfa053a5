"""What `doctor` reads about requests from the service desk: the request ticket type, which of
the mapped custom fields its tickets carry, what HaloITSM's approval rows hold (so a person can
match each `result` with what HaloITSM's screen shows and set HALO_APPROVAL_RESULTS), and
whether HaloITSM refused a ticket the pipeline tried to log (APP03). Reads only: doctor cannot
try a ticket to see it refused, so that comes from the warehouse's record of past runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb

from halo_pipeline.doctor.finding import Finding
from halo_pipeline.halo import HaloClient, HaloError
from halo_pipeline.halo.models import Ticket, TicketApproval, TicketType, is_empty_date
from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.ticketing import APPROVAL_AT_CREATION, find_ticket_type
from halo_pipeline.warehouse import WarehouseError, connect

RECENT = 10
"""Open request tickets whose approvals doctor reads (the newest)."""
GUIDE = "README, Requests from the service desk"


def request_tickets(
    client: HaloClient, types: list[TicketType], provisioning: ProvisioningSettings
) -> tuple[list[Ticket], list[Finding]]:
    """The newest open tickets of HALO_REQUEST_TICKET_TYPE, and what they say of its setup."""
    wanted = provisioning.request_ticket_type
    if not wanted:
        return [], [
            Finding(
                "request tickets",
                "HALO_REQUEST_TICKET_TYPE unset: requests come from the command line and SQL only",
            )
        ]
    chosen = find_ticket_type(types, wanted)
    if chosen is None:
        known = ", ".join(f"{t.name} ({t.id})" for t in types) or "none"
        return [], [
            Finding(
                "request tickets",
                f"no type {wanted!r}",
                f"set HALO_REQUEST_TICKET_TYPE to one of: {known}",
            )
        ]
    open_ones = sorted(client.open_tickets(chosen.id), key=lambda t: t.id, reverse=True)
    seen = f"{chosen.name!r} ({chosen.id}): {len(open_ones)} open"
    if not open_ones:
        advice = f"open one as a person would ({GUIDE}), then run doctor again"
        return [], [Finding("request tickets", f"{seen}, none to read its fields from", advice)]
    return open_ones[:RECENT], [
        Finding("request tickets", seen),
        _fields(client.get_ticket(open_ones[0].id), provisioning.request_fields),
    ]


def _fields(ticket: Ticket, mapped: dict[str, str]) -> Finding:
    carried = {field.name for field in ticket.customfields or ()}
    present = [f"{meaning}={name}" for meaning, name in mapped.items() if name in carried]
    absent = [f"{meaning}={name}" for meaning, name in mapped.items() if name not in carried]
    seen = f"ticket {ticket.id} carries {', '.join(present) or 'none of them'}"
    if absent:
        seen += f"; not {', '.join(absent)}"
    usable = mapped["agent"] in carried and (mapped["role"] in carried or mapped["team"] in carried)
    if usable:
        return Finding("request fields", seen)
    return Finding(
        "request fields",
        seen,
        "add the missing fields to the ticket type's form, or map HALO_REQUEST_FIELDS to the "
        f"fields it has ({', '.join(sorted(carried)) or 'none'}) ({GUIDE})",
    )


def approvals(
    client: HaloClient, provisioning: ProvisioningSettings, tickets: list[Ticket]
) -> list[Finding]:
    """The approval rows on `tickets`, by `result`, and whether HALO_APPROVAL_RESULTS fits."""
    try:
        via = load_policy().approval_via
    except PolicyError:
        via = "cli"  # the policy's own problem is the sync's and the run's to say
    if not tickets:
        return [] if via == "cli" else [
            Finding("approvals", "not asked: no open request ticket to read approvals from",
                    f"once a request ticket is open, run doctor again ({GUIDE})")
        ]  # fmt: skip
    rows: list[TicketApproval] = []
    try:
        for ticket in tickets:
            rows += client.ticket_approvals(ticket.id)
    except HaloError as error:
        return [
            Finding(
                "approvals",
                f"GET /api/TicketApproval failed: {error}",
                "let the API application read tickets' approvals",
            )
        ]
    asked = ", ".join(str(t.id) for t in tickets) or "none"
    findings = [
        Finding("approvals", f"TicketApproval answers: {len(rows)} rows on open tickets {asked}")
    ]
    by_result: dict[int | None, list[TicketApproval]] = defaultdict(list)
    for row in rows:
        by_result[row.result].append(row)
    for result, same in sorted(by_result.items(), key=lambda item: str(item[0])):
        dated = [row for row in same if not is_empty_date(row.dateapproved)]
        example = (dated or same)[0]
        when = "no date" if is_empty_date(example.dateapproved) else example.dateapproved
        findings.append(
            Finding(
                f"  result {result}",
                f"{len(same)} rows, {len(dated)} dated; e.g. ticket {example.ticket_id}, "
                f"{example.agent_name}, {when}: {example.approver_note or ''!r}",
            )
        )
    findings.append(_results(provisioning, set(by_result), via))
    return findings


def _results(provisioning: ProvisioningSettings, seen: set[int | None], via: str) -> Finding:
    meanings = provisioning.approval_results
    if meanings is None:
        advice = (
            "match each result above with what HaloITSM shows on that ticket, then set "
            'HALO_APPROVAL_RESULTS, e.g. {"0": "awaiting", "1": "approved", "2": "rejected"}'
            if via != "cli"
            else None
        )
        return Finding(
            "result meanings",
            f"HALO_APPROVAL_RESULTS unset: no approval in HaloITSM counts (approval.via: {via})",
            advice,
        )
    said = ", ".join(f"{value} {meaning}" for value, meaning in sorted(meanings.items()))
    unmapped = sorted(str(value) for value in seen if value not in meanings)
    if unmapped:
        advice = (
            f"result {', '.join(unmapped)} seen and not mapped: a request with such a row "
            "waits; add it to HALO_APPROVAL_RESULTS"
        )
        return Finding("result meanings", said, advice)
    return Finding("result meanings", said)


def api_tickets(warehouse: Path) -> Finding:
    """Whether HaloITSM refused a ticket a provisioning run tried to log, as the warehouse
    recorded it."""
    topic = "API tickets"
    unknown = Finding(
        topic,
        f"no {APPROVAL_AT_CREATION} refusal in past runs (a ticket type "
        "whose approval process refuses tickets logged through the API)",
    )
    if not warehouse.exists():
        return unknown
    try:
        with connect(warehouse, read_only=True, wait_s=0) as con:
            found = con.execute(
                "SELECT request_id, updated_at, error FROM provisioning.requests "
                "WHERE contains(error, ?) ORDER BY updated_at DESC LIMIT 1",
                [APPROVAL_AT_CREATION],
            ).fetchall()
    except (WarehouseError, duckdb.CatalogException):
        return unknown
    if not found:
        return unknown
    [(request_id, when, error)] = found
    return Finding(topic, f"REFUSED for request {request_id} at {when:%Y-%m-%d %H:%M}", error)
