"""Approving and denying requests that wait for approval. The one who decides is a HaloITSM
agent, read from HaloITSM by the email typed (`--by` is not authenticated: the operating-system
user is recorded beside it); the decision is a statement about the request's whole content,
signed with the key outside the warehouse, shown before it is signed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import duckdb

from halo_pipeline.policy.approvals import APPROVAL, DENIAL
from halo_pipeline.policy.gate import Gate, say_duration
from halo_pipeline.requests import rules
from halo_pipeline.requests.catalog import Catalog
from halo_pipeline.requests.identities import (
    AgentDirectory,
    Person,
    agent_with_email,
    os_user,
    person,
)
from halo_pipeline.requests.queue import Request, Status, add_event, load_requests
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.requests.signing import KeyRing
from halo_pipeline.warehouse import transaction

Confirm = Callable[[str], bool]
"""Shown what would be signed, says whether to sign it."""


@dataclass(frozen=True)
class Decided:
    request: Request
    by: Person


def approve(
    con: duckdb.DuckDBPyConnection, halo: AgentDirectory, ring: KeyRing, request_id: int,
    by: str, note: str | None, confirm: Confirm,
) -> Decided:  # fmt: skip
    """Move a request from awaiting approval to pending with a signed approval, if `by` (a
    HaloITSM agent) may approve it and `confirm` agrees to what is signed."""
    return _decide(con, halo, ring, request_id, by, note, confirm, APPROVAL)


def deny(
    con: duckdb.DuckDBPyConnection, halo: AgentDirectory, ring: KeyRing, request_id: int,
    by: str, reason: str, confirm: Confirm,
) -> Decided:  # fmt: skip
    """End a request that waits for approval, with the reason: the same people may deny it as
    may approve it."""
    return _decide(con, halo, ring, request_id, by, rules.reason(reason), confirm, DENIAL)


def _decide(
    con: duckdb.DuckDBPyConnection, halo: AgentDirectory, ring: KeyRing, request_id: int,
    by: str, note: str | None, confirm: Confirm, kind: str,
) -> Decided:  # fmt: skip
    verb = "approve" if kind == APPROVAL else "deny"
    request = _waiting(con, request_id)
    gate = Gate.load(con)
    via = gate.resolved.policy.approval_via if gate.resolved else "cli"
    if via == "halo":
        ticket = f"ticket {request.ticket_id}" if request.ticket_id else "its ticket"
        raise RequestRefused(
            f"Approvals are given in HaloITSM under the access policy (approval.via: halo): "
            f"an approver answers request {request_id} on {ticket} there, and the next "
            "provisioning run reads it."
        )
    who = person(halo, by, "The approver")
    requester = agent_with_email(halo, request.requested_by)
    problem = gate.approval_problem(who, request, requester)
    if problem:
        raise RequestRefused(problem)
    if not confirm(f"{who.label} would {verb} request {request_id}: {describe(con, request)}"):
        raise RequestRefused(f"Not signed: request {request_id} still waits for approval.")
    to = Status.PENDING if kind == APPROVAL else Status.DENIED
    detail = f"{'approved' if kind == APPROVAL else 'denied'} by {who.label}"
    if via == "either":  # the evidence says which of the two ways it came
        detail += " on the command line"
    if kind == DENIAL:
        detail += f": {note}"
    with transaction(con):
        con.execute(
            "UPDATE provisioning.requests SET status = ?, error = coalesce(?, error), "
            "updated_at = now() WHERE request_id = ?",
            [to.value, detail if to == Status.DENIED else None, request_id],
        )
        add_event(
            con, replace(request, status=to.value), request.status, detail, actor=who.email,
            actor_agent_id=who.agent_id, os_user=os_user(), note=note, ring=ring,
            signed={"kind": kind, "by": who.agent_id, "by_email": who.email,
                    "by_name": who.name, "note": note},
        )  # fmt: skip
    return Decided(request, who)


def describe(con: duckdb.DuckDBPyConnection, request: Request) -> str:
    """The request in words, every field the signature covers."""
    catalog = Catalog.load(con)
    if request.action in ("grant", "revoke"):
        agent = catalog.agents.get(request.agent_id) if request.agent_id is not None else None
        who = agent.label if agent else f"agent {request.agent_id}"
        try:
            what = catalog.entitlement(request.entitlement_id).label
        except RequestRefused:
            what = "an unknown entitlement"
        said = f"{request.action} {what} ({request.entitlement_id}) "
        said += f"{'to' if request.action == 'grant' else 'from'} {who}"
    elif request.action == "create_account":
        said = f"create an agent account for {request.account_name!r} <{request.account_email}>" + (
            f" in team {request.account_team!r}" if request.account_team else ""
        )
    else:
        agent = catalog.agents.get(request.agent_id) if request.agent_id is not None else None
        said = f"{request.action.replace('_', ' ')} of {agent.label if agent else request.agent_id}"
    if request.expires_at is not None:
        said += f", until {request.expires_at:%Y-%m-%d %H:%M %Z}"
    elif request.valid_for is not None:
        said += f", for {say_duration(request.valid_for)} from when it is applied"
    return f"{said}; requested by {request.requested_by}: {request.reason}"


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
