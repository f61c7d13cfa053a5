"""Who holds which role and team: read from the first source this tenant proves exact on this
sync, a ladder from cheapest to surest.

Roles:
1. the agent list rows, when they carry `roles` (rows that all carry an empty list carry none);
2. one list request per role (`role=<id_int>`), once a role id nobody has answers nobody;
3. each agent's `role_list` (role names), when it names only known, unambiguous roles;
4. each agent's detail (`GET /api/agent/{id}`), a request per agent.

Teams: the rows' `teams`, then one request per team (`team_id=`), proved the same way, then the
details. Every source is proved on every sync against the details of a sample of agents,
rotating from sync to sync and spread across roles, plus agents whose list row changed. Any
disagreement drops the sync to the next source and is said.

Only details are sure, and they cost a request per agent: 10,000 agents take about three
hours at 270 requests per 5 minutes. So on the last rung each sync reads what its allowance
(HALO_DETAIL_READS_PER_SYNC) permits: new agents first, then those whose row changed, then
those read longest ago. The others keep the memberships they were last read with
(`HaloSnapshot.read` says which were read).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from halo_pipeline.halo.client import HaloClient
from halo_pipeline.halo.errors import HaloMalformedResponseError, HaloNotFoundError
from halo_pipeline.halo.models import MEMBERSHIP_FLAGS, AgentRecord, Role, Team

T = TypeVar("T")
AgentTeam = tuple[Any, ...]
"""(agent_id, team_id, *MEMBERSHIP_FLAGS): a flag is None when it was not read."""

PROOF_SAMPLE = 20
"""Agents whose details prove a source on each sync, and at most as many more whose list row
changed: a wrong source shows in a few agents, and the sample rotates."""


@dataclass(frozen=True)
class Seen:
    """What the warehouse knew of an agent before this sync."""

    row: int
    """The hash of its list row's fields (`row_fields`), to notice a change."""
    roles_read_at: datetime | None
    """When its memberships were last read; None when never."""


def row_fields(agent: AgentRecord) -> int:
    """A hash of what a list row says of an agent (a hash: 100,000 agents' rows are kept)."""
    return hash((agent.name, agent.firstname, agent.surname, agent.email, agent.isdisabled,
                 agent.isapiagent, agent.team, agent.role_list))  # fmt: skip


@dataclass(frozen=True)
class Memberships:
    agent_roles: list[tuple[int, str]]
    """(agent_id, role GUID) of the agents read."""
    agent_teams: list[AgentTeam]
    read: frozenset[int] | None
    """The agents whose memberships were read this sync; None: every agent listed."""
    source: str
    """Where roles and teams came from, as `halo.sync_runs.memberships_from` says it: one of
    `agent rows`, `agent details (N of M agents read this sync)`, or `roles <source>, teams
    <source>` (`per role`, `per team`, `role_list`, `agent rows`)."""
    why: str
    """Why the sources above it were not used; empty when the first was."""
    detail_reads: int


@dataclass
class _Ladder:
    client: HaloClient
    agents: list[AgentRecord]
    roles: list[Role]
    teams: list[Team]
    previous: dict[int, Seen]
    allowance: int
    seed: int
    details: dict[int, AgentRecord] = field(default_factory=dict)
    asked: int = 0
    """Details requested (an agent deleted since it was listed is asked, but not kept)."""
    why: list[str] = field(default_factory=list)

    def read_details(self, agent_ids: Iterable[int]) -> None:
        """Details of these agents, concurrently (bounded); an agent deleted since it was
        listed is left out."""
        wanted = [a for a in dict.fromkeys(agent_ids) if a not in self.details]

        def detail(agent_id: int) -> AgentRecord | None:
            try:
                return AgentRecord.of(self.client.get_agent(agent_id))
            except HaloNotFoundError:
                return None

        with ThreadPoolExecutor(max_workers=self.client.settings.concurrency) as pool:
            for agent_id, record in zip(wanted, pool.map(detail, wanted), strict=True):
                if record is not None:
                    self.details[agent_id] = record
        self.asked += len(wanted)

    def proved(self, pairs: Iterable[tuple[Any, ...]], what: str, noun: str) -> bool:
        """Whether `pairs` ((agent_id, role or team, ...)) agree with every detail read; when
        not, why is said."""
        problem = self._disagreement(pairs, what, noun)
        if problem:
            self.why.append(problem)
        return not problem

    def _disagreement(self, pairs: Iterable[tuple[Any, ...]], what: str, noun: str) -> str:
        # A detail without the memberships (a tenant whose details leave them out) proves
        # nothing either way.
        truth = _held(self.details.values(), noun)
        claimed: dict[int, set[Any]] = {agent_id: set() for agent_id in truth}
        for agent_id, held, *_ in pairs:
            if agent_id in claimed:
                claimed[agent_id].add(held)
        wrong = [a for a in sorted(claimed) if claimed[a] != truth[a]]
        if not wrong:
            return ""
        names = _names(self.roles if noun == "roles" else self.teams)
        first = wrong[0]
        return (
            f"{what} disagrees with the details of {len(wrong)} of {len(claimed)} agents read "
            f"(agent {first}: {_said(claimed[first], names)} against its detail's "
            f"{_said(truth[first], names)})"
        )


def read_memberships(
    client: HaloClient,
    agents: list[AgentRecord],
    roles: list[Role],
    teams: list[Team],
    *,
    previous: dict[int, Seen] | None = None,
    allowance: int | None = None,
    seed: int = 0,
) -> Memberships:
    """The roles and teams of the listed agents, from the first source proved exact."""
    if allowance is None:
        allowance = client.settings.detail_allowance
    ladder = _Ladder(client, agents, roles, teams, previous or {}, allowance, seed)
    listed = role_lists(agents, roles)
    hints = listed if isinstance(listed, dict) else _row_roles(agents)
    ladder.read_details(proof_sample(agents, ladder.previous, hints, ladder.allowance, seed))

    role_pairs, role_source = _roles(ladder, listed)
    # When only details give roles, they give teams too: no team source is worth a request.
    team_pairs, team_source = _teams(ladder) if role_pairs is not None else (None, "")
    read: frozenset[int] | None = None
    if role_pairs is None or team_pairs is None:
        # Only details are left for one of them: the same reads give both, so that one set
        # of agents was read this sync, and their read time says how old both are.
        read = _refresh(ladder)
        details = [ladder.details[a] for a in sorted(read)]
        role_pairs = sorted((a.id, role) for a in details for role in a.roles or ())
        team_pairs = sorted(row for a in details for row in team_rows(a))
        role_source = team_source = (
            f"agent details ({len(read)} of {len(agents)} agents read this sync)"
        )
    source = (
        role_source if role_source == team_source else f"roles {role_source}, teams {team_source}"
    )
    return Memberships(
        agent_roles=role_pairs,
        agent_teams=team_pairs,
        read=read,
        source=source,
        why="; ".join(ladder.why),
        detail_reads=ladder.asked,
    )


def _roles(ladder: _Ladder, listed: dict[int, set[str]] | str) -> tuple[list | None, str]:
    agents = ladder.agents
    if _rows_carry(agent.roles for agent in agents):
        pairs = sorted({(a.id, role) for a in agents for role in a.roles or ()})
        if ladder.proved(pairs, "the list rows' roles", "roles"):
            return pairs, "agent rows"
    else:
        ladder.why.append("the list rows carry no roles")

    pairs = role_members(ladder.client, ladder.roles)
    if pairs is None:
        unused = max(role.id_int for role in ladder.roles) + 1
        ladder.why.append(f"the role filter is ignored (role={unused}, a role id no role has, "
                          "answered agents)")  # fmt: skip
    else:
        if isinstance(listed, dict):
            # Where role_list says otherwise, the details say who is right.
            by_filter = _by_agent(pairs, {a.id for a in agents})
            differ = [a.id for a in agents if by_filter[a.id] != listed.get(a.id, set())]
            room = min(PROOF_SAMPLE, ladder.allowance - len(ladder.details))
            ladder.read_details(differ[: max(0, room)])
        if ladder.proved(pairs, "the role filter", "roles"):
            return pairs, "per role"

    if isinstance(listed, str):
        ladder.why.append(listed)
    else:
        pairs = sorted((agent_id, role) for agent_id, held in listed.items() for role in held)
        if ladder.proved(pairs, "role_list", "roles"):
            return pairs, "role_list"
    return None, "agent details"


def _teams(ladder: _Ladder) -> tuple[list | None, str]:
    agents = ladder.agents
    if _rows_carry(agent.teams for agent in agents):
        pairs = sorted(row for agent in agents for row in team_rows(agent))
        if ladder.proved(pairs, "the list rows' teams", "teams"):
            return pairs, "agent rows"
    else:
        ladder.why.append("the list rows carry no teams")
    if not ladder.teams:
        return [], "agent rows"
    unused = max(team.id for team in ladder.teams) + 1
    if ladder.client.member_ids(team_id=str(unused)):
        ladder.why.append(f"the team filter is ignored (team_id={unused}, a team id no team "
                          "has, answered agents)")  # fmt: skip
        return None, "agent details"
    known = {agent.id for agent in agents}
    members = _per_item(ladder.client, ladder.teams, lambda team: {"team_id": str(team.id)})
    flags = (None,) * len(MEMBERSHIP_FLAGS)
    pairs = sorted({(a, t.id, *flags) for t, ids in members for a in ids if a in known})
    if ladder.proved(pairs, "the team filter", "teams"):
        return pairs, "per team"
    return None, "agent details"


def _refresh(ladder: _Ladder) -> frozenset[int]:
    """Read details as far as the allowance goes: new agents, then changed rows, then those
    read longest ago (never read first). Returns every agent read this sync."""
    _refuse_bare_details(ladder)  # before spending the allowance on them
    order = refresh_order(ladder.agents, ladder.previous, ladder.seed)
    room = max(0, ladder.allowance - len(ladder.details))
    ladder.read_details([a for a in order if a not in ladder.details][:room])
    _refuse_bare_details(ladder)
    listed = {agent.id for agent in ladder.agents}
    return frozenset(ladder.details) & listed


def _refuse_bare_details(ladder: _Ladder) -> None:
    lacking = sorted(a.id for a in ladder.details.values() if a.roles is None or a.teams is None)
    if lacking:
        raise HaloMalformedResponseError(
            f"GET /api/agent/{lacking[0]}: the agent's detail carries no roles or teams, and no "
            f"cheaper source could be trusted ({'; '.join(ladder.why)}), so this HaloITSM's "
            "memberships cannot be read. The sync stopped and the last good tables were kept."
        )


def refresh_order(agents: Sequence[AgentRecord], previous: dict[int, Seen], seed: int) -> list[int]:
    """Agent ids in the order their details are due: new, changed, then oldest read."""
    return [agent_id for group in _due_groups(agents, previous, seed) for agent_id in group]


def _due_groups(
    agents: Sequence[AgentRecord], previous: dict[int, Seen], seed: int
) -> list[list[int]]:
    """The refresh order as groups equally due (new agents; changed rows; never read; read
    by one sync), each in an order of its own that rotates from sync to sync."""

    def due(agent: AgentRecord) -> tuple[Any, ...]:
        seen = previous.get(agent.id)
        if seen is None:
            return (0, 0)
        if seen.row != row_fields(agent):
            return (1, 0)
        read_at = seen.roles_read_at
        return (2, 0) if read_at is None else (3, read_at.timestamp())

    groups: dict[tuple[Any, ...], list[int]] = {}
    for agent in sorted(agents, key=lambda a: _turn(a.id, seed)):
        groups.setdefault(due(agent), []).append(agent.id)
    return [groups[key] for key in sorted(groups)]


def proof_sample(
    agents: Sequence[AgentRecord],
    previous: dict[int, Seen],
    hints: dict[int, set[str]],
    allowance: int,
    seed: int,
) -> list[int]:
    """The agents whose details prove this sync's source: PROOF_SAMPLE agents, and up to as
    many more whose list row changed, within the allowance, taken in the refresh order. Within
    a group equally due, each pick holds a role no earlier pick holds (by `hints`, what the
    cheap sources claim) while any is left, so that the sample spans the roles."""
    groups = _due_groups(agents, previous, seed)
    changed = sum(1 for a in agents if a.id in previous and previous[a.id].row != row_fields(a))
    size = min(PROOF_SAMPLE + min(changed, PROOF_SAMPLE), allowance)
    sample: list[int] = []
    covered: set[str] = set()
    for group in groups:
        room = size - len(sample)
        if room <= 0:
            break
        spread = []
        for agent_id in group:
            new = hints.get(agent_id, set()) - covered
            if new and len(spread) < room:
                spread.append(agent_id)
                covered |= new
        chosen = set(spread)
        sample += [*spread, *[a for a in group if a not in chosen]][:room]
    return sample


def role_lists(agents: Sequence[AgentRecord], roles: Sequence[Role]) -> dict[int, set[str]] | str:
    """Each agent's roles as its `role_list` names them, or why that cannot be read for sure."""
    names: dict[str, str] = {}
    for role in roles:
        name = role.name.strip().casefold()
        if "," in name or name in names:
            return f"role_list cannot be split for sure (role name {role.name!r})"
        names[name] = role.id
    held: dict[int, set[str]] = {}
    for agent in agents:
        if agent.role_list is None:
            return f"agent {agent.id}'s list row carries no role_list"
        parts = {p.strip().casefold() for p in agent.role_list.split(",") if p.strip()}
        unknown = parts - names.keys()
        if unknown:
            return f"agent {agent.id}'s role_list names no known role ({sorted(unknown)[0]!r})"
        held[agent.id] = {names[part] for part in parts}
    return held


def role_members(client: HaloClient, roles: list[Role]) -> list[tuple[int, str]] | None:
    """(agent_id, role GUID) read a request per role, or None when a role id nobody has
    answers agents (the server ignores the `role` filter)."""
    if not roles:
        return []
    unused = max(role.id_int for role in roles) + 1
    if client.member_ids(role=str(unused)):
        return None
    members = _per_item(client, roles, lambda role: {"role": str(role.id_int)})
    return sorted({(a, role.id) for role, ids in members for a in ids})


def _rows_carry(memberships: Iterable[Sequence[object] | None]) -> bool:
    """Whether the list rows carry these memberships: every row has the key, and not every
    row has it empty (a tenant can send `roles: []` for everyone and name roles only in each
    agent's detail; taken at its word, nobody would hold any)."""
    seen = list(memberships)
    return all(held is not None for held in seen) and any(seen)


def team_rows(agent: AgentRecord) -> list[AgentTeam]:
    """The agent's memberships with their flags (rows with `in_section: false` are not)."""
    return [(agent.id, *team) for team in agent.teams or ()]


def _row_roles(agents: Sequence[AgentRecord]) -> dict[int, set[str]]:
    return {agent.id: set(agent.roles or ()) for agent in agents}


def _held(agents: Iterable[AgentRecord], noun: str) -> dict[int, set[Any]]:
    if noun == "roles":
        return {a.id: set(a.roles) for a in agents if a.roles is not None}
    return {a.id: {team[0] for team in a.teams} for a in agents if a.teams is not None}


def _by_agent(pairs: Iterable[tuple[int, str]], agent_ids: set[int]) -> dict[int, set[str]]:
    held: dict[int, set[str]] = {agent_id: set() for agent_id in agent_ids}
    for agent_id, role in pairs:
        if agent_id in held:
            held[agent_id].add(role)
    return held


def _names(items: Sequence[Role] | Sequence[Team]) -> dict[Any, str]:
    return {item.id: item.name for item in items}


def _said(held: set[Any], names: dict[Any, str]) -> str:
    return "[" + ", ".join(sorted(str(names.get(h, h)) for h in held)) + "]"


def _turn(agent_id: int, seed: int) -> bytes:
    """A stable order that differs from sync to sync: the sample rotates."""
    return hashlib.blake2b(f"{seed}:{agent_id}".encode(), digest_size=8).digest()


def _per_item(
    client: HaloClient, items: Iterable[T], filters: Callable[[T], dict[str, str]]
) -> list[tuple[T, set[int]]]:
    """Member agent ids of each role or team, fetched concurrently (bounded)."""
    items = list(items)

    def member_ids(item: T) -> set[int]:
        return client.member_ids(**filters(item))

    with ThreadPoolExecutor(max_workers=client.settings.concurrency) as pool:
        return list(zip(items, pool.map(member_ids, items), strict=True))
