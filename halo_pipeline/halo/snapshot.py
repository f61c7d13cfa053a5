"""One consistent read of everything a sync needs from HaloITSM."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from halo_pipeline.halo.client import HaloClient
from halo_pipeline.halo.errors import HaloInconsistentError, HaloNotFoundError
from halo_pipeline.halo.models import (
    MEMBERSHIP_FLAGS,
    Agent,
    AgentRecord,
    Role,
    Team,
    TicketType,
)
from halo_pipeline.halo.paging import Progress

T = TypeVar("T")
AgentTeam = tuple[Any, ...]
"""(agent_id, team_id, *MEMBERSHIP_FLAGS): a flag is None when it was not read."""


@dataclass(frozen=True)
class HaloSnapshot:
    agents: list[AgentRecord]
    roles: list[Role]
    teams: list[Team]
    ticket_types: list[TicketType]
    agent_roles: list[tuple[int, str]]
    """(agent_id, role GUID) pairs."""
    agent_teams: list[AgentTeam]
    memberships_from: str
    """`agent rows` when the list carried roles and teams, else what was fetched separately."""


def agent_team_rows(agent: AgentRecord) -> list[AgentTeam]:
    """The agent's memberships with their flags (rows with `in_section: false` are not)."""
    return [(agent.id, *team) for team in agent.teams or ()]


def fetch_snapshot(client: HaloClient, progress: Progress | None = None) -> HaloSnapshot:
    """Agents, roles, teams, memberships and ticket types.

    Memberships come from the agent rows when the server includes them (rows that all carry
    an empty list count as carrying none). Halo's list rows
    (`Uname_List`) carry teams but not roles, so roles are usually read per role
    (`role=<id_int>`), and teams per team (`team_id=<id>`) when rows lack them too: one request
    per role or team, never one per agent, which on a 10,000-agent instance is the difference
    between minutes and the better part of an hour under Halo's rate limit. A server that
    ignores the `role` filter would make every agent hold every role, so the filter is proved
    first, and the answers are checked against each agent's own `role_list`.
    """
    roles = client.list_roles()
    teams = client.list_teams()
    ticket_types = client.list_ticket_types()
    agents = client.agent_records(progress)
    known = {agent.id for agent in agents}
    sources = []

    if _rows_carry(agent.roles for agent in agents):
        agent_roles = sorted({(a.id, role) for a in agents for role in a.roles or ()})
    else:
        client.log.info(f"agent rows carry no roles: fetching members of {len(roles)} roles")
        members = role_members(client, roles)
        check_role_lists(members, agents)
        agent_roles = sorted({(a, r.id) for r, ids in members for a in ids if a in known})
        sources.append("roles")

    if _rows_carry(agent.teams for agent in agents):
        agent_teams = sorted(row for agent in agents for row in agent_team_rows(agent))
    else:
        client.log.info(f"agent rows carry no teams: fetching members of {len(teams)} teams")
        members = _per_item(client, teams, lambda team: {"team_id": str(team.id)})
        unknown_flags = (None,) * len(MEMBERSHIP_FLAGS)
        agent_teams = sorted(
            {(a, t.id, *unknown_flags) for t, ids in members for a in ids if a in known}
        )
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


def fetch_agents(client: HaloClient, agent_ids: list[int]) -> HaloSnapshot:
    """The roles, teams and ticket types, and these agents with their details (roles and
    teams), read one by one: what a targeted sync after provisioning needs. An agent HaloITSM
    no longer has is left out."""
    roles = client.list_roles()
    teams = client.list_teams()
    ticket_types = client.list_ticket_types()

    def detail(agent_id: int) -> Agent | None:
        try:
            return client.get_agent(agent_id)
        except HaloNotFoundError:
            return None

    with ThreadPoolExecutor(max_workers=client.settings.concurrency) as pool:
        agents = [agent for agent in pool.map(detail, agent_ids) if agent is not None]
    return snapshot_of([AgentRecord.of(agent) for agent in agents], roles, teams, ticket_types)


def snapshot_of(
    agents: list[AgentRecord], roles: list[Role], teams: list[Team], ticket_types: list[TicketType]
) -> HaloSnapshot:
    """A snapshot whose memberships are those the agents were read with."""
    return HaloSnapshot(
        agents=agents,
        roles=roles,
        teams=teams,
        ticket_types=ticket_types,
        agent_roles=sorted({(a.id, role) for a in agents for role in a.roles or ()}),
        agent_teams=sorted(row for agent in agents for row in agent_team_rows(agent)),
        memberships_from="agent details",
    )


def role_members(client: HaloClient, roles: list[Role]) -> list[tuple[Role, set[int]]]:
    """Member agent ids of each role, once a request for a role nobody has came back empty
    (a server that ignores `role` answers every agent)."""
    if not roles:
        return []
    unused = max(role.id_int for role in roles) + 1
    answered = client.member_ids(role=str(unused))
    if answered:
        raise HaloInconsistentError(
            f"GET /api/agent?role={unused} (a role id no role has) answered {len(answered)} "
            "agents: this HaloITSM ignores the `role` filter, so the members of each role "
            "cannot be read from it and every agent would seem to hold every role. The sync "
            "stopped and the last good tables were kept. `halo-pipeline doctor` shows what "
            "this instance answers."
        )
    return _per_item(client, roles, lambda role: {"role": str(role.id_int)})


def check_role_lists(members: list[tuple[Role, set[int]]], agents: list[AgentRecord]) -> None:
    """Cross-check the members read per role against each agent's `role_list` (role names,
    comma-separated), wherever that list can be read without guessing."""
    names = [role.name.strip().casefold() for role, _ in members]
    if any("," in name for name in names) or len(set(names)) != len(names):
        return  # a comma in a name or a repeated name: role_list cannot be split for sure
    known = set(names)
    listed = {
        agent.id: parts
        for agent in agents
        if agent.role_list is not None
        for parts in [{p.strip().casefold() for p in agent.role_list.split(",") if p.strip()}]
    }
    if any(parts and not parts & known for parts in listed.values()):
        return  # a role_list that names no known role is written some other way: no guess
    named: dict[str, set[int]] = {name: set() for name in names}
    for agent_id, parts in listed.items():
        for part in parts & known:
            named[part].add(agent_id)
    problems = []
    for role, ids in members:
        name = role.name.strip().casefold()
        problems += [
            f"agent {agent_id} came back for role={role.id_int} ({role.name!r}) but its "
            "role_list does not name it"
            for agent_id in sorted((ids & listed.keys()) - named[name])
        ]
        problems += [
            f"agent {agent_id}'s role_list names {role.name!r} but role={role.id_int} did not "
            "return it"
            for agent_id in sorted(named[name] - ids)
        ]
    if problems:
        raise HaloInconsistentError(
            f"The members HaloITSM answered per role disagree with the agents' role_list in "
            f"{len(problems)} places, so neither can be trusted: {'; '.join(problems[:3])}"
            f"{' ...' if len(problems) > 3 else ''}. The sync stopped and the last good "
            "tables were kept."
        )


def _rows_carry(memberships: Iterable[Sequence[object] | None]) -> bool:
    """Whether the list rows carry these memberships: every row has the key, and not every
    row has it empty (a tenant can send `roles: []` for everyone and name roles only in each
    agent's detail; taken at its word, nobody would hold any)."""
    seen = list(memberships)
    return all(held is not None for held in seen) and any(seen)


def _per_item(
    client: HaloClient, items: Iterable[T], filters: Callable[[T], dict[str, str]]
) -> list[tuple[T, set[int]]]:
    """Member agent ids of each role or team, fetched concurrently (bounded)."""
    items = list(items)

    def member_ids(item: T) -> set[int]:
        return client.member_ids(**filters(item))

    with ThreadPoolExecutor(max_workers=client.settings.concurrency) as pool:
        return list(zip(items, pool.map(member_ids, items), strict=True))
