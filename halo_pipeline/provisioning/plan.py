"""Deciding, from an agent as HaloITSM holds it now, what each request needs. Pure functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from halo_pipeline.halo import HaloMalformedResponseError
from halo_pipeline.halo.models import Agent
from halo_pipeline.provisioning.catalog import Entitlement
from halo_pipeline.provisioning.queue import Request, Status

DRY_RUN = "dry run (HALO_PROVISIONING is not true): recorded the change it would make"


def post_text(payload: dict[str, Any]) -> str:
    """A write as HaloITSM receives it: what a dry run records and a ticket quotes."""
    return f"POST /api/agent {json.dumps([payload], ensure_ascii=False)}"


def holds(agent: Agent, entitlement: Entitlement) -> bool:
    if entitlement.kind == "role":
        return any(role.id == entitlement.target for role in agent.roles or ())
    return any(team.team_id == entitlement.target for team in agent.teams or ())


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

    @property
    def description(self) -> str:
        if self.payload is None:
            return f"nothing to change: agent {self.agent.id} is already as asked"
        return f"{post_text(self.payload)} ({'; '.join(self.changes)})"


def plan_memberships(agent: Agent, requests: list[tuple[Request, Entitlement]]) -> MembershipPlan:
    """The agent's whole `roles` and/or `teams` list as it must be written back.

    Halo has no PATCH: the list is read, changed and written whole, so an agent read without
    its roles or teams is refused rather than written back empty. Requests for the same
    entitlement that agree share the outcome; when they disagree the later one wins, unless the
    earlier may already have been written (a rerun must finish it first).
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
    teams = [team.team_id for team in agent.teams or ()]
    changes = []
    for request, entitlement in latest.values():
        if satisfied(agent, request, entitlement):
            continue
        members: list[Any] = roles if entitlement.kind == "role" else teams
        if request.action == "grant":
            members.append(entitlement.target)
            changes.append(f"adds {entitlement.label}")
        else:
            members.remove(entitlement.target)
            changes.append(f"removes {entitlement.label}")

    payload: dict[str, Any] | None = None
    if changes:
        payload = {"id": agent.id}
        if roles != [role.id for role in agent.roles or ()]:
            payload["roles"] = [{"id": role_id} for role_id in roles]
        if teams != [team.team_id for team in agent.teams or ()]:
            payload["teams"] = [{"team_id": team_id} for team_id in teams]
    return MembershipPlan(agent, served, superseded, payload, changes)
