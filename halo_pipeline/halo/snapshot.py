"""One consistent read of everything a sync needs from HaloITSM."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from halo_pipeline.halo.client import HaloClient
from halo_pipeline.halo.models import Agent, Role, Team, TicketType
from halo_pipeline.halo.paging import Progress

T = TypeVar("T")


@dataclass(frozen=True)
class HaloSnapshot:
    agents: list[Agent]
    roles: list[Role]
    teams: list[Team]
    ticket_types: list[TicketType]
    agent_roles: list[tuple[int, str]]
    """(agent_id, role GUID) pairs."""
    agent_teams: list[tuple[int, int]]
    """(agent_id, team_id) pairs."""
    memberships_from: str
    """`agent rows` when the list carried roles and teams, else what was fetched separately."""


def fetch_snapshot(client: HaloClient, progress: Progress | None = None) -> HaloSnapshot:
    """Agents, roles, teams, memberships and ticket types.

    Memberships come from the agent rows when the server includes them. When it does not,
    they are fetched per role (`role=<id_int>`) and per team (`team_id=<id>`): one request
    per role or team, never one per agent, which on a 10,000-agent instance is the difference
    between minutes and the better part of an hour under Halo's rate limit.
    """
    roles = client.list_roles()
    teams = client.list_teams()
    ticket_types = client.list_ticket_types()
    agents = client.list_agents(progress)
    known = {agent.id for agent in agents}
    sources = []

    if all(agent.roles is not None for agent in agents):
        agent_roles = sorted({(a.id, r.id) for a in agents for r in a.roles or ()})
    else:
        client.log.info(f"agent rows carry no roles: fetching members of {len(roles)} roles")
        members = _per_item(client, roles, lambda role: {"role": str(role.id_int)})
        agent_roles = sorted({(a, r.id) for r, ids in members for a in ids if a in known})
        sources.append("roles")

    if all(agent.teams is not None for agent in agents):
        agent_teams = sorted({(a.id, t.team_id) for a in agents for t in a.teams or ()})
    else:
        client.log.info(f"agent rows carry no teams: fetching members of {len(teams)} teams")
        members = _per_item(client, teams, lambda team: {"team_id": str(team.id)})
        agent_teams = sorted({(a, t.id) for t, ids in members for a in ids if a in known})
        sources.append("teams")

    return HaloSnapshot(
        agents=agents,
        roles=roles,
        teams=teams,
        ticket_types=ticket_types,
        agent_roles=agent_roles,
        agent_teams=agent_teams,
        memberships_from="per " + " and per ".join(sources) if sources else "agent rows",
    )


def _per_item(
    client: HaloClient, items: Iterable[T], filters: Callable[[T], dict[str, str]]
) -> list[tuple[T, set[int]]]:
    """Member agent ids of each role or team, fetched concurrently (bounded)."""
    items = list(items)

    def member_ids(item: T) -> set[int]:
        return {agent.id for agent in client.list_agents_where(**filters(item))}

    with ThreadPoolExecutor(max_workers=client.settings.concurrency) as pool:
        return list(zip(items, pool.map(member_ids, items), strict=True))
