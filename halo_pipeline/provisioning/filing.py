"""Filing a request: check it against the last sync, refuse with candidates, or queue it."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from halo_pipeline.provisioning import rules
from halo_pipeline.provisioning.catalog import Catalog, Entitlement
from halo_pipeline.provisioning.requests import (
    FINAL,
    file_request,
    load_requests,
)
from halo_pipeline.provisioning.rules import RequestRefused


@dataclass(frozen=True)
class Filed:
    request_id: int
    description: str
    warning: str | None = None
    """Filed, but as of the last sync there is nothing to change: the job decides from
    HaloITSM as it is then."""


def file_membership(
    con: duckdb.DuckDBPyConnection,
    action: str,
    *,
    agent: str,
    role: str | None,
    team: str | None,
    reason: str,
    requested_by: str,
) -> Filed:
    """Queue a grant or revoke of a role or team membership; nothing is written on refusal."""
    if (role is None) == (team is None):
        raise RequestRefused("Name exactly one of --role and --team.")
    reason, requested_by = rules.reason(reason), rules.requester(requested_by)
    catalog = Catalog.load(con)
    who = catalog.find_agent(agent)
    entitlement = catalog.find_role(role) if role is not None else catalog.find_team(str(team))
    _refuse_duplicate(con, action, who.agent_id, entitlement)
    request_id = file_request(
        con,
        action=action,
        agent_id=who.agent_id,
        entitlement_id=entitlement.entitlement_id,
        reason=reason,
        requested_by=requested_by,
    )
    preposition = "to" if action == "grant" else "from"
    warning = None
    if catalog.holds(who.agent_id, entitlement) == (action == "grant"):
        state = "already holds" if action == "grant" else "does not hold"
        warning = (
            f"as of the last sync, {who.label} {state} {entitlement.label}: nothing to change "
            "unless that changed since. The job checks HaloITSM when it runs."
        )
    return Filed(
        request_id,
        f"{action} {entitlement.label} ({entitlement.entitlement_id}) {preposition} {who.label}",
        warning,
    )


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
    reason, requested_by = rules.reason(reason), rules.requester(requested_by)
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
        request_id = file_request(
            con, action=action, account_name=name, account_email=email, account_team=team_name,
            reason=reason, requested_by=requested_by,
        )  # fmt: skip
        return Filed(request_id, f"create an agent account for {rules.shorten(name)} <{email}>")
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
