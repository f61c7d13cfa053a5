"""Filing a request: check it against the last sync, refuse with candidates, or queue it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from halo_pipeline.policy.gate import Gate, say_duration
from halo_pipeline.policy.resolved import role_of
from halo_pipeline.requests import rules
from halo_pipeline.requests.catalog import Catalog, Entitlement
from halo_pipeline.requests.queue import (
    FINAL,
    Status,
    file_request,
    load_requests,
)
from halo_pipeline.requests.rules import RequestRefused


@dataclass(frozen=True)
class Filed:
    request_id: int
    description: str
    warning: str | None = None
    """Filed, but as of the last sync there is nothing to change: the job decides from
    HaloITSM as it is then."""
    awaiting_approval: bool = False


def file_membership(
    con: duckdb.DuckDBPyConnection,
    action: str,
    *,
    agent: str,
    role: str | None,
    team: str | None,
    reason: str,
    requested_by: str,
    ends: datetime | timedelta | None = None,
    ticket_id: int | None = None,
) -> Filed:
    """Queue a grant or revoke of a role or team membership; nothing is written on refusal.
    A grant may end (`ends`: a time, or a length from when it is applied) and, under the
    access policy, wait for approval. `ticket_id`: the HaloITSM ticket a person asked in,
    which is then the request's ticket."""
    if (role is None) == (team is None):
        raise RequestRefused("Name exactly one of --role and --team.")
    if ends is not None and action != "grant":
        raise RequestRefused("Only a grant has an end: --for and --until go with grant.")
    reason, requested_by = rules.reason(reason), rules.requester(requested_by, person=True)
    catalog = Catalog.load(con)
    who = catalog.find_agent(agent)
    entitlement = catalog.find_role(role) if role is not None else catalog.find_team(str(team))
    _refuse_duplicate(con, action, who.agent_id, entitlement)
    status = Status.PENDING
    if action == "grant":
        status = _policy_status(con, catalog, who.agent_id, entitlement.entitlement_id, ends)
    request_id = file_request(
        con,
        status=status,
        action=action,
        agent_id=who.agent_id,
        entitlement_id=entitlement.entitlement_id,
        reason=reason,
        requested_by=requested_by,
        expires_at=ends if isinstance(ends, datetime) else None,
        valid_for=ends if isinstance(ends, timedelta) else None,
        ticket_id=ticket_id,
        detail=f"filed from HaloITSM ticket {ticket_id}" if ticket_id else None,
    )
    preposition = "to" if action == "grant" else "from"
    warning = None
    if catalog.holds(who.agent_id, entitlement) == (action == "grant"):
        state = "already holds" if action == "grant" else "does not hold"
        warning = (
            f"as of the last sync, {who.label} {state} {entitlement.label}: nothing to change "
            "unless that changed since. The job checks HaloITSM when it runs."
        )
    description = (
        f"{action} {entitlement.label} ({entitlement.entitlement_id}) {preposition} {who.label}"
    )
    if isinstance(ends, datetime):
        description += f" until {ends:%Y-%m-%d %H:%M} UTC"
    elif ends is not None:
        description += f" for {say_duration(ends)} from when it is applied"
    if status == Status.AWAITING_APPROVAL:
        description += "; it waits for approval under the access policy"
    return Filed(request_id, description, warning, status == Status.AWAITING_APPROVAL)


def _policy_status(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, agent_id: int, entitlement_id: str,
    ends: datetime | timedelta | None,
) -> Status:  # fmt: skip
    """Refuse a grant the access policy refuses; else whether it waits for approval."""
    gate = Gate.load(con)
    if gate.blocked:
        raise RequestRefused(gate.blocked)
    too_long = gate.duration_problem("grant", entitlement_id, ends, datetime.now(UTC))
    if too_long:
        raise RequestRefused(too_long)
    conflict = gate.conflict(held_roles(con, catalog, agent_id), entitlement_id)
    if conflict:
        raise RequestRefused(f"Refused by the {conflict}.")
    return (
        Status.AWAITING_APPROVAL if gate.needs_approval("grant", entitlement_id) else Status.PENDING
    )


def held_roles(con: duckdb.DuckDBPyConnection, catalog: Catalog, agent_id: int) -> set[str]:
    """The roles the agent holds as of the last sync, and those open requests would grant."""
    held = {role_of(e) for a, e in catalog.grants if a == agent_id}
    asked = load_requests(
        con,
        "action = 'grant' AND agent_id = ? AND NOT list_contains(?, status)",
        [agent_id, [str(status) for status in FINAL]],
    )
    held |= {role_of(request.entitlement_id) for request in asked}
    return {role for role in held if role}


def file_account(
    con: duckdb.DuckDBPyConnection,
    action: str,
    *,
    agent: str | None = None,
    name: str | None = None,
    email: str | None = None,
    team: str | None = None,
    reason: str,
    requested_by: str,
) -> Filed:
    """Queue creating, disabling or enabling an agent account."""
    reason, requested_by = rules.reason(reason), rules.requester(requested_by, person=True)
    catalog = Catalog.load(con)
    if action == "create_account":
        if not (name or "").strip() or not email:
            raise RequestRefused("create-account needs --name and --email.")
        name, email = name.strip(), rules.email(email, "The new agent's email")
        taken = [
            a for a in catalog.agents.values() if (a.email or "").casefold() == email.casefold()
        ]
        if taken:
            raise RequestRefused(f"{taken[0].label} already has the email {taken[0].email}.")
        team_name = catalog.find_team(team).name if team else None
        gate = Gate.load(con)
        waits = gate.needs_approval(action, None)
        if waits and gate.blocked:
            raise RequestRefused(gate.blocked)
        request_id = file_request(
            con, action=action, account_name=name, account_email=email, account_team=team_name,
            reason=reason, requested_by=requested_by,
            status=Status.AWAITING_APPROVAL if waits else Status.PENDING,
        )  # fmt: skip
        description = f"create an agent account for {rules.shorten(name)} <{email}>"
        if waits:
            description += "; it waits for approval under the access policy"
        return Filed(request_id, description, awaiting_approval=waits)
    if agent is None:
        raise RequestRefused(f"{action.replace('_', '-')} needs --agent.")
    who = catalog.find_agent(agent)
    request_id = file_request(
        con, action=action, agent_id=who.agent_id, reason=reason, requested_by=requested_by
    )
    return Filed(request_id, f"{action.split('_')[0]} the account of {who.label}")


def _refuse_duplicate(
    con: duckdb.DuckDBPyConnection, action: str, agent_id: int, entitlement: Entitlement
) -> None:
    open_requests = load_requests(
        con,
        "action = ? AND agent_id = ? AND entitlement_id = ? AND NOT list_contains(?, status)",
        [action, agent_id, entitlement.entitlement_id, [str(status) for status in FINAL]],
    )
    if open_requests:
        first = open_requests[0]
        raise RequestRefused(
            f"Request {first.request_id} already asks for this and is {first.status}."
        )
