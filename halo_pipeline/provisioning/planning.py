"""Deciding, from an agent as HaloITSM holds it now, what each request needs, and saying it in
words for tickets, events and errors. Pure functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from halo_pipeline.halo import HaloMalformedResponseError
from halo_pipeline.halo.models import MEMBERSHIP_FLAGS, Agent, TeamMembership
from halo_pipeline.policy.gate import say_duration
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import TicketText
from halo_pipeline.requests.catalog import Catalog, Entitlement
from halo_pipeline.requests.queue import Request, Status
from halo_pipeline.requests.rules import RequestRefused

DRY_RUN = "dry run (HALO_PROVISIONING is not true): recorded the change it would make"


def post_text(payload: dict[str, Any]) -> str:
    """A write as HaloITSM receives it: what a dry run records and a ticket quotes."""
    return f"POST /api/agent {json.dumps([payload], ensure_ascii=False)}"


def holds(agent: Agent, entitlement: Entitlement) -> bool:
    if entitlement.kind == "role":
        return any(role.id == entitlement.target for role in agent.roles or ())
    return any(team.team_id == entitlement.target for team in agent.memberships or ())


def satisfied(agent: Agent, request: Request, entitlement: Entitlement) -> bool:
    """Whether the agent is already as the request asks."""
    return holds(agent, entitlement) == (request.action == "grant")


@dataclass(frozen=True)
class MembershipPlan:
    """One write for all of an agent's role and team requests, or none."""

    agent: Agent
    requests: list[tuple[Request, Entitlement]]
    """The requests this plan serves (a later request that must wait is left out)."""
    superseded: list[tuple[Request, int]]
    """Earlier requests for the same entitlement, with the request that overrides each."""
    payload: dict[str, Any] | None
    """The element to POST to /api/agent, or None when every request is already satisfied."""
    changes: list[str]
    kept_teams: tuple[TeamMembership, ...] = ()
    """The team rows written back as they were read: they must read back the same."""
    roles_after: frozenset[str] = frozenset()
    teams_after: frozenset[int] = frozenset()
    asked: frozenset[str | int] = frozenset()
    """The roles and teams the requests change: whether those took is each request's check."""

    @property
    def description(self) -> str:
        if self.payload is None:
            return f"nothing to change: agent {self.agent.id} is already as asked"
        return f"{post_text(self.payload)} ({'; '.join(self.changes)})"

    def side_effects(self, after: Agent) -> list[str]:
        """What the write changed that it did not ask for: roles or teams gained or lost, and
        any flag of a membership it posted back unchanged."""
        found = []
        if after.roles is not None:
            roles = {role.id for role in after.roles}
            lost, gained = self.roles_after - roles, roles - self.roles_after
            found += [f"role {r} was removed" for r in sorted(lost - self.asked)]
            found += [f"role {r} was added" for r in sorted(gained - self.asked)]
        if after.teams is None:
            return found
        rows = {team.team_id: team for team in after.teams}
        members = {team.team_id for team in after.memberships or ()}
        found += [f"agent joined team {t}" for t in sorted(members - self.teams_after - self.asked)]
        found += [f"agent left team {t}" for t in sorted(self.teams_after - members - self.asked)]
        for kept in self.kept_teams:
            now = rows.get(kept.team_id)
            if now is None:
                continue  # reported above, or an in_section=false row gone: nothing held
            for field in ("in_section", *MEMBERSHIP_FLAGS):
                was, became = getattr(kept, field), getattr(now, field)
                if was is not None and became != was:
                    found.append(f"team {kept.team_id} {field} {was} -> {became}")
        return found


def plan_memberships(agent: Agent, requests: list[tuple[Request, Entitlement]]) -> MembershipPlan:
    """The agent's whole `roles` and/or `teams` list as it must be written back.

    Halo has no PATCH: the list is read, changed and written whole, so an agent read without
    its roles or teams is refused rather than written back empty. Every team row the agent
    keeps is posted exactly as it was read (a row posted with its `team_id` alone is reset to
    Halo's defaults: `is_manager` false, permissions off); a new membership is `{"team_id": N}`
    alone, so Halo gives it its defaults; a removal leaves out that team's row and nothing
    else. Requests for the same entitlement that agree share the outcome; when they disagree
    the later one wins, unless the earlier may already have been written (a rerun must finish
    it first).
    """
    kinds = {entitlement.kind for _, entitlement in requests}
    for kind, held in (("role", agent.roles), ("team", agent.teams)):
        if kind in kinds and held is None:
            raise HaloMalformedResponseError(
                f"GET /api/agent/{agent.id} answered without the agent's {kind}s; writing the "
                f"list back would remove them all, so nothing was written."
            )

    latest: dict[str, tuple[Request, Entitlement]] = {}
    served: list[tuple[Request, Entitlement]] = []
    superseded: list[tuple[Request, int]] = []
    for request, entitlement in sorted(requests, key=lambda pair: pair[0].request_id):
        earlier = latest.get(entitlement.entitlement_id)
        if earlier and earlier[0].action != request.action:
            if earlier[0].status == Status.APPLYING:
                continue  # the later request waits for a run after this one
            superseded.append((earlier[0], request.request_id))
            served.remove(earlier)
        latest[entitlement.entitlement_id] = (request, entitlement)
        served.append((request, entitlement))

    roles = [role.id for role in agent.roles or ()]
    rows = list(agent.teams or ())
    joined: list[int] = []
    changes = []
    for request, entitlement in latest.values():
        if satisfied(agent, request, entitlement):
            continue
        if entitlement.kind == "role":
            if request.action == "grant":
                roles.append(str(entitlement.target))
            else:
                roles.remove(str(entitlement.target))
        else:
            # A grant also replaces an `in_section: false` row of the team: a row per team.
            rows = [row for row in rows if row.team_id != entitlement.target]
            if request.action == "grant":
                joined.append(int(entitlement.target))
        verb = "adds" if request.action == "grant" else "removes"
        changes.append(f"{verb} {entitlement.label}")

    payload: dict[str, Any] | None = None
    if changes:
        payload = {"id": agent.id}
        if roles != [role.id for role in agent.roles or ()]:
            payload["roles"] = [{"id": role_id} for role_id in roles]
        if len(rows) != len(agent.teams or ()) or joined:
            payload["teams"] = [row.as_read() for row in rows]
            payload["teams"] += [{"team_id": team_id} for team_id in joined]
    return MembershipPlan(
        agent,
        served,
        superseded,
        payload,
        changes,
        kept_teams=tuple(rows),
        roles_after=frozenset(roles),
        teams_after=frozenset({row.team_id for row in rows if row.is_member} | set(joined)),
        asked=frozenset(entitlement.target for _, entitlement in latest.values()),
    )


def who(catalog: Catalog, request: Request) -> str:
    agent = catalog.agents.get(request.agent_id) if request.agent_id is not None else None
    return agent.label if agent else f"agent {request.agent_id}"


def change(catalog: Catalog, request: Request, entitlement: Entitlement) -> str:
    """`grant role 'Agent' to agent 9 (Priya Patel)`, `remove ... from team ...`."""
    agent = who(catalog, request)
    if entitlement.kind == "team":
        if request.action == "grant":
            return f"add {agent} to {entitlement.label}"
        return f"remove {agent} from {entitlement.label}"
    if request.action == "grant":
        return f"grant {entitlement.label} to {agent}"
    return f"revoke {entitlement.label} from {agent}"


def already(request: Request, entitlement: Entitlement) -> str:
    verb = "already holds" if request.action == "grant" else "does not hold"
    return f"agent {request.agent_id} {verb} {entitlement.label}"


def ticket_text(
    catalog: Catalog, settings: ProvisioningSettings, request: Request, manual: bool = False
) -> TicketText:
    if request.action in ("grant", "revoke"):
        try:
            what = change(catalog, request, catalog.entitlement(request.entitlement_id))
        except RequestRefused:  # gone since it was filed: the id still says what was asked
            what = f"{request.action} {request.entitlement_id} for {who(catalog, request)}"
    elif request.action == "create_account":
        what = f"create an agent account for {request.account_name} <{request.account_email}>"
    else:
        what = f"{request.action.split('_')[0]} the account of {who(catalog, request)}"
    last_line = (
        "Please make this change in HaloITSM, then set this ticket to "
        f"{' or '.join(sorted(settings.ticket_done_statuses))} (or "
        f"{' or '.join(sorted(settings.ticket_failed_statuses))} if it should not be made)."
        if manual
        else "halo-pipeline makes the change and closes this ticket with the outcome."
    )
    ends = []  # what an approver answering on the ticket approves includes the end
    if request.expires_at is not None:
        ends = [f"Ends: {request.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"]
    elif request.valid_for is not None:
        ends = [f"Ends: {say_duration(request.valid_for)} after it is applied"]
    details = "\n".join(
        [
            f"Access request #{request.request_id}, filed with halo-pipeline: {what}.",
            *ends,
            f"Reason: {request.reason or '(none given)'}",
            f"Requested by: {request.requested_by or '(unknown)'}",
            last_line,
        ]
    )
    return TicketText(what[0].upper() + what[1:], details)
