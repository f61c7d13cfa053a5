"""One consistent read of everything a sync needs from HaloITSM."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from halo_pipeline.halo.client import HaloClient
from halo_pipeline.halo.errors import HaloNotFoundError
from halo_pipeline.halo.ladder import AgentTeam, Seen, read_memberships, team_rows
from halo_pipeline.halo.models import Agent, AgentRecord, Role, Team, TicketType
from halo_pipeline.halo.paging import Progress


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
    """Where roles and teams were read from (`halo.ladder`)."""
    read: frozenset[int] | None = None
    """The agents whose memberships were read; None: every agent in `agents`. The others keep
    the memberships they were last read with."""
    memberships_why: str = ""
    """Why the cheaper sources were not used."""
    detail_reads: int = 0


def fetch_snapshot(
    client: HaloClient,
    progress: Progress | None = None,
    *,
    previous: dict[int, Seen] | None = None,
    allowance: int | None = None,
    seed: int = 0,
) -> HaloSnapshot:
    """Agents, roles, teams, memberships and ticket types.

    Memberships come from the first source of `halo.ladder` that the details of a sample of
    agents prove exact on this tenant: the list rows, a request per role or team, `role_list`,
    or the agents' details, read as far as `allowance` permits (HALO_DETAIL_READS_PER_SYNC).
    `previous` (what the warehouse knew of each agent) says which agents are new, changed or
    read longest ago; `seed` (the sync's id) rotates the sample.
    """
    roles = client.list_roles()
    teams = client.list_teams()
    ticket_types = client.list_ticket_types()
    agents = client.agent_records(progress)
    found = read_memberships(
        client, agents, roles, teams, previous=previous, allowance=allowance, seed=seed
    )
    if found.why:
        client.log.info(f"memberships: {found.source}, because {found.why}")
    return HaloSnapshot(
        agents=agents,
        roles=roles,
        teams=teams,
        ticket_types=ticket_types,
        agent_roles=found.agent_roles,
        agent_teams=found.agent_teams,
        memberships_from=found.source,
        read=found.read,
        memberships_why=found.why,
        detail_reads=found.detail_reads,
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
        agent_teams=sorted(row for agent in agents for row in team_rows(agent)),
        memberships_from="agent details",
    )
