"""Which approval lets a request go ahead, decided by the job from signed statements only.

An approval counts when its statement verifies under the signing key, names its own event,
says exactly what the request says now, is younger than `approval.valid_for`, was given by
someone the policy lets approve this request, and has not been used: the ledger beside the key
records an approval `used` before the change it approves is written and `done` once the request
is final, so one approval makes one change, however the warehouse's rows are edited afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from halo_pipeline.halo.models import TicketApproval
from halo_pipeline.policy.gate import Gate
from halo_pipeline.requests.identities import Person
from halo_pipeline.requests.queue import Request, Status, content
from halo_pipeline.requests.signing import KeyRing, Unverified

APPROVAL, DENIAL = "approval", "denial"
NO_APPROVAL = "the access policy asks for an approval first"


@dataclass(frozen=True)
class Honoured:
    event_id: int
    signature: str
    by: Person


def approval_events(con: duckdb.DuckDBPyConnection, request_id: int) -> list[tuple[Any, ...]]:
    """Every event that says the request was approved, newest first."""
    return con.execute(
        "SELECT event_id, statement, signature FROM provisioning.request_events "
        "WHERE request_id = ? AND from_status = 'awaiting_approval' AND to_status = 'pending' "
        "ORDER BY event_id DESC",
        [request_id],
    ).fetchall()


def halo_approval_spent(
    con: duckdb.DuckDBPyConnection, ring: KeyRing | None, request: Request, row: TicketApproval
) -> str | None:
    """Why an approval HaloITSM still shows does not count again: it already carried this
    request to its end (a request reset with SQL afterwards must be approved anew)."""
    if ring is None:
        return None
    ledger = ring.used()
    for event_id, statement, signature in approval_events(con, request.request_id):
        try:
            said = ring.verify(statement, signature)
        except Unverified:
            continue
        same_row = (said.get("via"), said.get("ticket_id"), said.get("row")) == (
            "halo",
            row.ticket_id,
            row.seq,
        )
        if same_row and ledger.get(str(signature)) == "done":
            return (
                f"the approval on ticket {row.ticket_id} (row {row.seq}) was used already "
                f"(event {event_id}); a new approval is needed"
            )
    return None


def honoured(
    con: duckdb.DuckDBPyConnection,
    ring: KeyRing | None,
    gate: Gate,
    request: Request,
    requester: int | None,
    now: datetime,
) -> Honoured | str:
    """The approval that lets `request` go ahead now, or why none does, in words."""
    if ring is None:
        return "approvals wait for the signing key (run `halo-pipeline key init`)"
    reasons = []
    ledger = ring.used()
    valid_for = gate.resolved.policy.approval_valid_for if gate.resolved else None
    for event_id, statement, signature in approval_events(con, request.request_id):
        try:
            said = ring.verify(statement, signature)
        except Unverified as why:
            reasons.append(f"the approval of event {event_id} does not count: {why}")
            continue
        if said.get("kind") != APPROVAL or said.get("event_id") != event_id:
            reasons.append(f"event {event_id} carries a statement made for another event")
            continue
        changed = differences(said.get("request") or {}, content(request))
        if changed:
            reasons.append(f"the request changed since it was approved (event {event_id}): "
                           f"{changed}; a new approval is needed")  # fmt: skip
            continue
        state = ledger.get(signature)
        if state == "done" or (state == "used" and request.status != Status.APPLYING):
            reasons.append(f"the approval of event {event_id} was used already")
            continue
        given = datetime.fromisoformat(str(said.get("at")))
        if valid_for is not None and now - given > valid_for:
            reasons.append(f"the approval of event {event_id} is older than the policy's "
                           f"approval.valid_for ({valid_for}); approve it again")  # fmt: skip
            continue
        by = Person(int(said["by"]), str(said.get("by_name") or ""), str(said["by_email"]))
        problem = gate.approval_problem(by, request, requester)
        if problem:
            reasons.append(f"the approval of event {event_id} does not count: {problem}")
            continue
        return Honoured(event_id, signature, by)
    return "; ".join(reasons) or NO_APPROVAL


def ticket_binding(
    con: duckdb.DuckDBPyConnection, ring: KeyRing | None, request: Request
) -> str | None:
    """Why an approval given on the request's ticket in HaloITSM does not approve the request
    as it stands now; None when it does: the job signed, when it opened that ticket, that the
    request said then exactly what it says now. A row inserted or changed with SQL has no such
    statement, so an approval of someone else's ticket never approves it."""
    if ring is None:
        return "approvals wait for the signing key (run `halo-pipeline key init`)"
    rows = con.execute(
        "SELECT event_id, statement, signature FROM provisioning.request_events "
        "WHERE request_id = ? AND statement IS NOT NULL ORDER BY event_id DESC",
        [request.request_id],
    ).fetchall()
    for event_id, statement, signature in rows:
        try:
            said = ring.verify(statement, signature)
        except Unverified:
            continue
        if (said.get("kind"), said.get("event_id"), said.get("ticket_id")) != (
            "ticket",
            event_id,
            request.ticket_id,
        ):
            continue
        changed = differences(said.get("request") or {}, content(request))
        if changed:
            return (f"the request changed since its ticket {request.ticket_id} was opened "
                    f"({changed}): what its approvers saw is not what it asks now")  # fmt: skip
        return None
    return (f"ticket {request.ticket_id} was not opened for this request by the pipeline, so "
            "an approval given on it does not approve it")  # fmt: skip


def differences(approved: dict[str, Any], now: dict[str, Any]) -> str:
    """What changed between the content approved and the request as it stands, in words."""
    return "; ".join(
        f"{name} was {approved.get(name)!r}, is {now.get(name)!r}"
        for name in sorted(set(approved) | set(now))
        if approved.get(name) != now.get(name)
    )


@dataclass(frozen=True)
class Unbelieved:
    event_id: int
    request_id: int
    to_status: str
    why: str


def unverified(con: duckdb.DuckDBPyConnection, ring: KeyRing | None) -> list[Unbelieved]:
    """Every decision and `applied` event recorded since signing began that does not verify:
    written into the warehouse by hand, copied, changed, or signed with a key no longer held.
    None of them is honoured; this names them (in Python: DuckDB never holds the key)."""
    rows = con.execute(
        """
        SELECT e.event_id, e.request_id, e.to_status, e.statement, e.signature
        FROM provisioning.request_events AS e, main.meta AS m
        WHERE e.event_id > m.signed_from_event_id
          AND (e.statement IS NOT NULL OR e.actor IS NOT NULL OR e.to_status = 'applied'
               OR (e.from_status = 'awaiting_approval'
                   AND e.to_status IN ('pending', 'denied')))
        ORDER BY e.event_id
        """
    ).fetchall()
    found = []
    for event_id, request_id, to_status, statement, signature in rows:
        if ring is None:
            if statement is not None or to_status != "applied":
                found.append(Unbelieved(event_id, request_id, to_status,
                                        "no signing key to verify it with"))  # fmt: skip
            continue
        if statement is None and to_status == "applied":
            continue  # applied without a key, as a grant with no end and no approval may be
        try:
            said = ring.verify(statement, signature)
        except Unverified as why:
            found.append(Unbelieved(event_id, request_id, to_status, str(why)))
            continue
        if (
            said.get("event_id") != event_id
            or (said.get("request") or {}).get("request_id") != request_id
        ):
            found.append(Unbelieved(event_id, request_id, to_status,
                                    "its statement was made for another event"))  # fmt: skip
    return found
