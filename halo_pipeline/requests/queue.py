"""The request queue in DuckDB: its states, filing, and the event for every change. Policy,
provisioning and reviews all file into it and read it.

Every write is its own short transaction, committed before the step it describes goes to
HaloITSM, so a run killed at any point leaves a queue the next run can finish from.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import duckdb

from halo_pipeline.requests.signing import KeyRing
from halo_pipeline.warehouse import OpenWarehouse, transaction
from halo_pipeline.warehouse.bulk import insert_rows

# Runs that may fail on a request before it is failed for good; between them the sensor waits
# 1, 2, 4 ... minutes, so about four hours of HaloITSM being away are ridden out.
MAX_FAILED_ATTEMPTS = 8


class Status(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # the access policy asks for an approval first
    PENDING = "pending"
    PLANNED = "planned"  # dry run: `plan` holds the exact change
    APPLYING = "applying"  # committed before the write, so a rerun knows it may have landed
    APPLIED = "applied"
    ALREADY_SATISFIED = "already_satisfied"
    FAILED = "failed"
    AWAITING_TICKET = "awaiting_ticket"  # manual: a person acts on the ticket
    DONE = "done"  # manual: the ticket reached a done status; the next sync confirms
    CONFIRMED = "confirmed"
    DENIED = "denied"


FINAL = frozenset(
    {Status.APPLIED, Status.ALREADY_SATISFIED, Status.FAILED, Status.CONFIRMED, Status.DENIED}
)


@dataclass(frozen=True)
class Request:
    request_id: int
    action: str
    entitlement_id: str | None
    agent_id: int | None
    account_name: str | None
    account_email: str | None
    account_team: str | None
    reason: str | None
    requested_by: str | None
    status: str
    plan: str | None
    ticket_id: int | None
    ticket_closed: bool
    ticket_requested_at: datetime | None
    error: str | None
    failed_attempts: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    valid_for: timedelta | None = None
    """`--for`: the grant's expiry is set this long after it is applied."""
    linked_request_id: int | None = None
    """The request this one follows from: the grant an expiry revokes."""
    review_item_id: int | None = None
    """The access review item whose `revoke` this request carries out."""


COLUMNS = tuple(field.name for field in fields(Request))
_UPDATABLE = frozenset(COLUMNS) - {"request_id", "created_at", "updated_at", "status"}


def load_requests(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Request]:
    """Requests matching a condition written in this package (never user input)."""
    rows = con.execute(
        f"SELECT {', '.join(COLUMNS)} FROM provisioning.requests WHERE {where} ORDER BY request_id",
        params,
    ).fetchall()
    return [Request(*row) for row in rows]


def catch_up_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Move the request id sequence past every id inserted with SQL by hand, so the next row
    inserted without one (SQL's default) never collides with them."""
    con.execute(
        "SELECT max(nextval('provisioning.request_id_seq')) FROM range(greatest(0, "
        "(SELECT coalesce(max(request_id), 0) FROM provisioning.requests) - "
        "(SELECT coalesce(last_value, 0) FROM duckdb_sequences() "
        "WHERE schema_name = 'provisioning' AND sequence_name = 'request_id_seq')))"
    ).fetchall()


def adopt_sql_filed(con: duckdb.DuckDBPyConnection, run_id: str | None) -> int:
    """Give requests inserted with plain SQL the filing event `halo-pipeline request` writes,
    and the id sequence its place after them."""
    catch_up_ids(con)
    adopted = con.execute(
        """
        INSERT INTO provisioning.request_events (request_id, from_status, to_status, detail, run_id)
        SELECT request_id, NULL, status, 'filed with SQL', ?
        FROM provisioning.requests AS r
        WHERE NOT EXISTS (
            SELECT 1 FROM provisioning.request_events AS e WHERE e.request_id = r.request_id
        )
        RETURNING request_id
        """,
        [run_id],
    ).fetchall()
    return len(adopted)


def claim(con: duckdb.DuckDBPyConnection, request_ids: list[int], run_id: str | None) -> None:
    """Claim the requests this run will act on, in one transaction, before any write for them.
    Called only by the run that holds the applier lock: a claim by any other run is one whose
    run ended (the lock is released with its holder), so it is taken over."""
    with transaction(con):
        con.execute(
            "UPDATE provisioning.requests SET claimed_by = ?, claimed_at = now() "
            "WHERE list_contains(?, request_id)",
            [run_id or "a run outside Dagster", request_ids],
        )


def database_now(con: duckdb.DuckDBPyConnection) -> datetime:
    """The time as the warehouse tells it, the clock every row is written by."""
    [(now,)] = con.execute("SELECT now()").fetchall()
    return now


def queue_id(con: duckdb.DuckDBPyConnection) -> str:
    """This warehouse's queue id, part of every ticket tag."""
    [(queue_id,)] = con.execute("SELECT queue_id FROM provisioning.queue_info").fetchall()
    return str(queue_id)


def record_failed_run(con: duckdb.DuckDBPyConnection, *, run_id: str, error: str) -> int:
    """A provisioning run failed: every unfinished request gets an event saying why and one
    more failed attempt (which spaces out the retries); at MAX_FAILED_ATTEMPTS it fails."""
    # Requests this run's failure is already recorded on are left alone: recording it twice
    # must not count two attempts.
    unfinished = load_requests(
        con,
        "NOT list_contains(?, status) AND NOT EXISTS (SELECT 1 FROM provisioning.request_events "
        "AS e WHERE e.request_id = provisioning.requests.request_id AND e.run_id = ? "
        "AND e.detail LIKE 'provisioning run % failed:%')",
        [[str(s) for s in FINAL], run_id],
    )
    queue = Queue(lambda: nullcontext(con), run_id)
    queue.record([attempt_failed(request, f"provisioning run {run_id} failed: {error}")
                  for request in unfinished])  # fmt: skip
    return len(unfinished)


def attempt_failed(request: Request, why: str) -> Step:
    """The step for a request whose run (or part of it) failed before finishing it."""
    attempts = request.failed_attempts + 1
    if attempts < MAX_FAILED_ATTEMPTS:
        return Step.note(request, f"{why}; it will be tried again", failed_attempts=attempts)
    reason = f"{attempts} attempts failed, the last: {why}."
    if request.status == Status.APPLYING:
        reason += " The write to HaloITSM may or may not have been made: check the agent."
    return Step(request, Status.FAILED, reason, {"error": reason, "failed_attempts": attempts})


def file_request(
    con: duckdb.DuckDBPyConnection,
    *,
    status: Status = Status.PENDING,
    detail: str | None = None,
    **values: Any,
) -> int:
    """Insert a request (pending, or awaiting approval) and its filing event in one
    transaction."""
    detail = detail or "filed with halo-pipeline request"
    with transaction(con):
        return insert_request(con, status=status, detail=detail, **values)


def insert_request(
    con: duckdb.DuckDBPyConnection, *, status: Status, detail: str, **values: Any
) -> int:
    """`file_request` inside the caller's transaction, for a caller filing several at once."""
    [request_id] = insert_requests(con, status, [(detail, values)])
    return request_id


def insert_requests(
    con: duckdb.DuckDBPyConnection, status: Status, requests: list[tuple[str, dict[str, Any]]]
) -> list[int]:
    """Requests (each its filing event's detail and its columns, the same columns for all)
    and their filing events, in the caller's transaction, as one insert each: a review that
    revokes 25,000 grants files them in a second. Their ids, in order."""
    if not requests:
        return []
    names = list(requests[0][1])
    unknown = set(names) - _UPDATABLE
    if unknown:
        raise ValueError(f"not request columns: {sorted(unknown)}")
    if any(list(values) != names for _, values in requests):
        raise ValueError("requests filed together must name the same columns")
    # Past every id inserted with SQL: the key refuses a taken id, and this must not be how a
    # person's request is refused.
    catch_up_ids(con)
    ids = [int(row[0]) for row in con.execute(
        "SELECT nextval('provisioning.request_id_seq') FROM range(?)", [len(requests)]
    ).fetchall()]  # fmt: skip
    insert_rows(
        con,
        "provisioning.requests",
        ["request_id", "status", *names],
        [[request_id, status.value, *values.values()]
         for request_id, (_, values) in zip(ids, requests, strict=True)],
    )  # fmt: skip
    insert_rows(
        con,
        "provisioning.request_events",
        ["request_id", "from_status", "to_status", "detail"],
        [[request_id, None, status.value, detail]
         for request_id, (detail, _) in zip(ids, requests, strict=True)],
    )  # fmt: skip
    return ids


@dataclass(frozen=True)
class Step:
    """One change to one request: a new status (or the same, for a note), why, and columns."""

    request: Request
    to: Status
    detail: str
    changes: dict[str, Any] = field(default_factory=dict)
    signed: dict[str, Any] | None = None
    """A decision the job itself records (an approval or rejection given in HaloITSM): signed
    with the key, as the commands sign theirs."""
    actor: str | None = None
    """Who decided, when a person did (their email), and as a HaloITSM agent."""
    actor_agent_id: int | None = None
    actor_note: str | None = None
    """What they said with it."""

    @classmethod
    def note(cls, request: Request, detail: str, **changes: Any) -> Step:
        """A step that keeps the status: a ticket opened or closed."""
        return cls(request, Status(request.status), detail, changes)


class Queue:
    """Writes to the queue: each batch of steps is one transaction, committed (with an event
    per step) before the caller goes on to HaloITSM. With a key, the job signs each `applied`
    event: what was applied, until when, under which approval."""

    def __init__(
        self,
        open_warehouse: OpenWarehouse,
        run_id: str | None = None,
        ring: KeyRing | None = None,
    ) -> None:
        self.open_warehouse = open_warehouse
        self.run_id = run_id
        self.ring = ring
        self.approvals: dict[int, str] = {}
        """The signature of the approval each request is applied under: used once."""

    def record(self, steps: list[Step]) -> list[Request]:
        """Apply the steps in one transaction; the requests as they are afterwards."""
        if not steps:
            return []
        for step in steps:
            unknown = set(step.changes) - _UPDATABLE
            if unknown:
                raise ValueError(f"not request columns: {sorted(unknown)}")
        updated = []
        with self.open_warehouse() as con, transaction(con):
            for step in steps:
                assignments = "".join(f", {name} = ?" for name in step.changes)
                # `--for` counts from when the grant is applied (or found already held).
                starts = step.to in (Status.APPLIED, Status.ALREADY_SATISFIED)
                [(updated_at, expires_at)] = con.execute(
                    "UPDATE provisioning.requests SET status = ?, updated_at = now(), "
                    "expires_at = CASE WHEN ? AND expires_at IS NULL THEN now() + valid_for "
                    f"ELSE expires_at END{assignments} WHERE request_id = ? "
                    "RETURNING updated_at, expires_at",
                    [step.to.value, starts, *step.changes.values(), step.request.request_id],
                ).fetchall()
                after = replace(
                    step.request, status=step.to.value, updated_at=updated_at,
                    expires_at=expires_at, **step.changes,
                )  # fmt: skip
                signed = step.signed
                if step.to == Status.APPLIED != step.request.status and self.ring is not None:
                    signed = {"kind": "applied", "run_id": self.run_id,
                              "approval": self.approvals.get(after.request_id)}  # fmt: skip
                add_event(con, after, step.request.status, step.detail, run_id=self.run_id,
                          actor=step.actor, actor_agent_id=step.actor_agent_id,
                          note=step.actor_note, ring=self.ring, signed=signed)  # fmt: skip
                updated.append(after)
        for request in updated:
            # Used before the write it approves goes to HaloITSM, done once the request is
            # final: one approval, one change, even if this run dies after the write.
            approval = self.approvals.get(request.request_id)
            if approval and self.ring is not None:
                if request.status == Status.APPLYING:
                    self.ring.mark(approval, "used")
                elif request.status in FINAL:
                    self.ring.mark(approval, "done")
        return updated


def content(request: Request) -> dict[str, Any]:
    """What an approval approves: the request as it stands, every field that decides what
    is changed, for whom, for how long, and who asked."""
    return {
        "request_id": request.request_id,
        "action": request.action,
        "agent_id": request.agent_id,
        "entitlement_id": request.entitlement_id,
        "valid_for": int(request.valid_for.total_seconds()) if request.valid_for else None,
        "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        "account_name": request.account_name,
        "account_email": request.account_email,
        "account_team": request.account_team,
        "requested_by": request.requested_by,
    }


def add_event(
    con: duckdb.DuckDBPyConnection,
    request: Request,
    from_status: str | None,
    detail: str,
    *,
    run_id: str | None = None,
    actor: str | None = None,
    actor_agent_id: int | None = None,
    os_user: str | None = None,
    note: str | None = None,
    ring: KeyRing | None = None,
    signed: dict[str, Any] | None = None,
) -> int:
    """One event of `request` (as it is after the change), in the caller's transaction; with
    `signed`, a statement of it signed with `ring`, naming the event's own id and the request's
    whole content, so it proves nothing about any other event or any other content."""
    [(event_id,)] = con.execute("SELECT nextval('provisioning.event_id_seq')").fetchall()
    statement = signature = None
    if signed is not None and ring is not None:
        [(at,)] = con.execute("SELECT now()").fetchall()
        statement, signature = ring.sign(
            {**signed, "event_id": event_id, "request": content(request), "at": at}
        )
    con.execute(
        "INSERT INTO provisioning.request_events (event_id, request_id, from_status, to_status, "
        "detail, run_id, actor, actor_agent_id, os_user, note, statement, signature) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [event_id, request.request_id, from_status, request.status, detail, run_id, actor,
         actor_agent_id, os_user, note, statement, signature],
    )  # fmt: skip
    return int(event_id)
