"""Approving and denying requests that wait for approval: each decision an event with who
(`--by`, and the operating-system user, since `--by` is not authenticated), when and why."""

from __future__ import annotations

import duckdb

from halo_pipeline.policy.gate import Gate
from halo_pipeline.requests import rules
from halo_pipeline.requests.identities import grantee, os_user
from halo_pipeline.requests.queue import Request, Status, load_requests
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.warehouse import transaction

APPROVED = "approved"


def approve(con: duckdb.DuckDBPyConnection, request_id: int, by: str, note: str | None) -> Request:
    """Move a request from awaiting approval to pending, if `by` may approve it."""
    approver = rules.email(by, "The approver")
    request = _waiting(con, request_id)
    problem = Gate.load(con).approval_problem(approver, request.requested_by, grantee(con, request))
    if problem:
        raise RequestRefused(problem)
    _decide(con, request, Status.PENDING, f"{APPROVED} by {approver}", approver, note)
    return request


def deny(con: duckdb.DuckDBPyConnection, request_id: int, by: str, reason: str) -> Request:
    """End a request that waits for approval, with the reason."""
    denier = rules.email(by, "The approver")
    reason = rules.reason(reason)
    request = _waiting(con, request_id)
    _decide(con, request, Status.DENIED, f"denied by {denier}: {reason}", denier, reason)
    return request


def approver_of(con: duckdb.DuckDBPyConnection, request_id: int) -> str | None:
    """Who approved the request last, if anyone did."""
    rows = con.execute(
        "SELECT actor FROM provisioning.request_events WHERE request_id = ? "
        "AND from_status = 'awaiting_approval' AND to_status = 'pending' AND actor IS NOT NULL "
        "ORDER BY event_id DESC LIMIT 1",
        [request_id],
    ).fetchall()
    return rows[0][0] if rows else None


def _waiting(con: duckdb.DuckDBPyConnection, request_id: int) -> Request:
    found = load_requests(con, "request_id = ?", [request_id])
    if not found:
        raise RequestRefused(f"There is no request {request_id}.")
    if found[0].status != Status.AWAITING_APPROVAL:
        raise RequestRefused(
            f"Request {request_id} is {found[0].status}: only a request awaiting approval is "
            "approved or denied."
        )
    return found[0]


def _decide(
    con: duckdb.DuckDBPyConnection, request: Request, to: Status, detail: str, actor: str,
    note: str | None,
) -> None:  # fmt: skip
    error = detail if to == Status.DENIED else None
    with transaction(con):
        con.execute(
            "UPDATE provisioning.requests SET status = ?, error = coalesce(?, error), "
            "updated_at = now() WHERE request_id = ?",
            [to.value, error, request.request_id],
        )
        con.execute(
            "INSERT INTO provisioning.request_events (request_id, from_status, to_status, detail, "
            "actor, os_user, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [request.request_id, request.status, to.value, detail, actor, os_user(), note],
        )
