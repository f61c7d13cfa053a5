"""What the last sync knows: agents, roles and teams, for checking and naming requests."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import duckdb

from halo_pipeline.halo.models import TicketType

T = TypeVar("T")
_ROLE = re.compile(r"^role:(?P<id>[^:]+):assigned$")
_TEAM = re.compile(r"^team:(?P<id>\d+):member$")


class RequestRefused(ValueError):
    """A request names something the warehouse does not know, or more than one thing."""


@dataclass(frozen=True)
class Entitlement:
    entitlement_id: str
    kind: Literal["role", "team"]
    target: str | int
    """The role's GUID or the team's id: what goes into the agent's `roles` or `teams`."""
    name: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True)
class AgentRef:
    agent_id: int
    name: str
    email: str | None
    is_disabled: bool

    @property
    def label(self) -> str:
        return f"agent {self.agent_id} ({self.name}{', disabled' if self.is_disabled else ''})"


def role_entitlement(role_id: str) -> str:
    return f"role:{role_id}:assigned"


def team_entitlement(team_id: int) -> str:
    return f"team:{team_id}:member"


class Catalog:
    """Agents, roles and teams of the latest sync, looked up the ways people name them."""

    def __init__(
        self,
        agents: list[AgentRef],
        roles: list[tuple[str, int, str]],
        teams: list[tuple[int, str]],
        ticket_types: list[TicketType] | None = None,
        memberships: set[tuple[int, str | int]] | None = None,
    ) -> None:
        self.agents = {agent.agent_id: agent for agent in agents}
        self.roles = {role_id: (int_id, name) for role_id, int_id, name in roles}
        self.teams = dict(teams)
        self.ticket_types = ticket_types or []
        self.memberships = memberships or set()
        """(agent_id, role GUID or team id) as the last sync saw them."""

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Catalog:
        try:
            agents = con.execute(
                "SELECT agent_id, name, email, is_disabled FROM halo.agents"
            ).fetchall()
            roles = con.execute("SELECT role_id, role_int_id, name FROM halo.roles").fetchall()
            teams = con.execute("SELECT team_id, name FROM halo.teams").fetchall()
            ticket_types = con.execute(
                "SELECT ticket_type_id, name, has_mandatory_fields FROM halo.ticket_types"
            ).fetchall()
            # Two queries, not a UNION: that would turn the team ids into text.
            memberships = con.execute("SELECT agent_id, role_id FROM halo.agent_roles").fetchall()
            memberships += con.execute("SELECT agent_id, team_id FROM halo.agent_teams").fetchall()
        except duckdb.CatalogException:
            raise RequestRefused(
                "The warehouse has no synced HaloITSM data yet: run halo_sync_job first."
            ) from None
        types = [TicketType(id=i, name=n, hasmandatorytechfields=m) for i, n, m in ticket_types]
        return cls(
            [AgentRef(*row) for row in agents], roles, teams, types, set(map(tuple, memberships))
        )

    def holds(self, agent_id: int | None, entitlement: Entitlement) -> bool:
        """Whether the last sync saw the agent with the entitlement."""
        return (agent_id, entitlement.target) in self.memberships

    def entitlement(self, entitlement_id: str | None) -> Entitlement:
        """The entitlement an id names, or a refusal that lists what exists."""
        text = entitlement_id or ""
        if match := _ROLE.match(text):
            role = self.roles.get(match["id"])
            if role:
                return Entitlement(text, "role", match["id"], role[1])
            known = ", ".join(f"{name} ({rid})" for rid, (_, name) in sorted(self.roles.items()))
            raise RequestRefused(f"Unknown entitlement {text!r}: no such role. Roles: {known}.")
        if match := _TEAM.match(text):
            team = self.teams.get(int(match["id"]))
            if team:
                return Entitlement(text, "team", int(match["id"]), team)
            known = ", ".join(f"{name} ({tid})" for tid, name in sorted(self.teams.items()))
            raise RequestRefused(f"Unknown entitlement {text!r}: no such team. Teams: {known}.")
        raise RequestRefused(
            f"Unknown entitlement {text!r}: use role:<role_id>:assigned or team:<team_id>:member "
            "(see access.entitlements)."
        )

    def agent(self, agent_id: int | None) -> AgentRef:
        agent = self.agents.get(agent_id) if agent_id is not None else None
        if agent is None:
            raise RequestRefused(f"Unknown agent {agent_id}: not in the last sync.")
        return agent

    def find_agent(self, ref: str) -> AgentRef:
        """An agent by id, email or exact name."""
        ref = ref.strip()
        if ref.isdigit() and int(ref) in self.agents:
            return self.agents[int(ref)]
        folded = ref.casefold()
        matches = [
            agent
            for agent in self.agents.values()
            if folded in ((agent.email or "").casefold(), agent.name.casefold())
        ]
        return _one(
            "agent",
            ref,
            matches,
            {_agent_label(a): (a.name, a.email or "") for a in self.agents.values()},
            _agent_label,
        )

    def find_role(self, ref: str) -> Entitlement:
        """A role by GUID, integer id or exact name."""
        ref = ref.strip()
        matches = [
            role_id
            for role_id, (int_id, name) in self.roles.items()
            if ref in (role_id, str(int_id)) or ref.casefold() == name.casefold()
        ]
        label = {role_id: f"{name} ({role_id})" for role_id, (_, name) in self.roles.items()}
        chosen = _one(
            "role",
            ref,
            matches,
            {label[rid]: (name,) for rid, (_, name) in self.roles.items()},
            label.__getitem__,
        )
        return self.entitlement(role_entitlement(chosen))

    def find_team(self, ref: str) -> Entitlement:
        """A team by id or exact name."""
        ref = ref.strip()
        matches = [
            team_id
            for team_id, name in self.teams.items()
            if ref == str(team_id) or ref.casefold() == name.casefold()
        ]
        label = {team_id: f"{name} ({team_id})" for team_id, name in self.teams.items()}
        chosen = _one(
            "team",
            ref,
            matches,
            {label[tid]: (name,) for tid, name in self.teams.items()},
            label.__getitem__,
        )
        return self.entitlement(team_entitlement(chosen))


def _agent_label(agent: AgentRef) -> str:
    return f"{agent.agent_id} {agent.name} <{agent.email}>"


def _one(
    kind: str,
    ref: str,
    matches: list[T],
    searchable: Mapping[str, Sequence[str]],
    describe: Callable[[T], str],
) -> T:
    """The single match, or a refusal listing the candidates a person probably meant.

    `searchable` maps each candidate's label to the texts a person might have typed for it.
    """
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = "; ".join(describe(m) for m in matches)
        raise RequestRefused(f"{kind} {ref!r} is ambiguous: it matches {listed}. Use the id.")
    close = _candidates(ref, searchable)
    hint = f" Did you mean: {'; '.join(close)}?" if close else ""
    raise RequestRefused(f"Unknown {kind} {ref!r}: not in the last sync.{hint}")


def _fold(text: str) -> str:
    """Lower case without accents, so 'zoe' finds 'Zoë'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _candidates(ref: str, searchable: Mapping[str, Sequence[str]], limit: int = 5) -> list[str]:
    """Labels whose texts contain what was typed, else those closest to it in spelling."""
    folded = _fold(ref)
    containing = [
        label for label, texts in searchable.items() if any(folded in _fold(t) for t in texts)
    ]
    if folded and containing:
        return sorted(containing)[:limit]
    # Spelling is compared with the first text (the name), not with emails, which all look
    # alike to difflib.
    by_text = {_fold(texts[0]): label for label, texts in searchable.items() if texts}
    close = difflib.get_close_matches(folded, list(by_text), n=limit, cutoff=0.6)
    return list(dict.fromkeys(by_text[text] for text in close))
