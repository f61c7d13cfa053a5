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
from halo_pipeline.requests.rules import RequestRefused, shorten

T = TypeVar("T")


@dataclass(frozen=True)
class Entitlement:
    """A row of `access.entitlements`: its id is built there, by the models, and only read here."""

    entitlement_id: str
    kind: Literal["role", "team"]
    target: str | int
    """The role's GUID or the team's id: what goes into the agent's `roles` or `teams`."""
    name: str
    int_id: int | None = None
    """A role's `id_int`, by which people also name it."""

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


class Catalog:
    """Agents, entitlements and grants of the latest sync, looked up the ways people name them."""

    def __init__(
        self,
        agents: list[AgentRef],
        entitlements: list[Entitlement],
        ticket_types: list[TicketType] | None = None,
        grants: set[tuple[int, str]] | None = None,
    ) -> None:
        self.agents = {agent.agent_id: agent for agent in agents}
        self.entitlements = {e.entitlement_id: e for e in entitlements}
        self.ticket_types = ticket_types or []
        self.grants = grants or set()
        """(agent_id, entitlement_id) as the last sync saw them."""

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Catalog:
        try:
            agents = con.execute(
                "SELECT agent_id, name, email, is_disabled FROM halo.agents"
            ).fetchall()
            entitlements = con.execute(
                "SELECT e.entitlement_id, e.resource_type, e.resource_id, e.resource_name, "
                "r.role_int_id FROM access.entitlements AS e LEFT JOIN halo.roles AS r "
                "ON e.resource_type = 'role' AND r.role_id = e.resource_id"
            ).fetchall()
            ticket_types = con.execute(
                "SELECT ticket_type_id, name, has_mandatory_fields FROM halo.ticket_types"
            ).fetchall()
            grants = con.execute(
                "SELECT principal_id, entitlement_id FROM access.grants"
            ).fetchall()
        except duckdb.CatalogException:
            raise RequestRefused(
                "The warehouse has no synced HaloITSM data yet: run halo_sync_job first."
            ) from None
        return cls(
            [AgentRef(*row) for row in agents],
            [
                Entitlement(eid, kind, target if kind == "role" else int(target), name, int_id)
                for eid, kind, target, name, int_id in entitlements
            ],
            [TicketType(id=i, name=n, hasmandatorytechfields=m) for i, n, m in ticket_types],
            set(map(tuple, grants)),
        )

    def of_kind(self, kind: str) -> list[Entitlement]:
        return sorted(
            (e for e in self.entitlements.values() if e.kind == kind), key=lambda e: e.name
        )

    @property
    def team_names(self) -> set[str]:
        return {team.name for team in self.of_kind("team")}

    def holds(self, agent_id: int | None, entitlement: Entitlement) -> bool:
        """Whether the last sync saw the agent with the entitlement."""
        return (agent_id, entitlement.entitlement_id) in self.grants

    def entitlement(self, entitlement_id: str | None) -> Entitlement:
        """The entitlement an id names, or a refusal that lists what exists."""
        text = entitlement_id or ""
        if text in self.entitlements:
            return self.entitlements[text]
        kind = text.split(":", 1)[0]
        if not text:
            raise RequestRefused("The request names no entitlement (entitlement_id is empty).")
        if kind in ("role", "team"):
            known = ", ".join(f"{e.name} ({e.target})" for e in self.of_kind(kind))
            raise RequestRefused(
                f"Unknown entitlement {shorten(text)}: no such {kind}. "
                f"{kind.capitalize()}s: {known}."
            )
        raise RequestRefused(
            f"Unknown entitlement {shorten(text)}: use role:<role_id>:assigned or "
            "team:<team_id>:member (see access.entitlements)."
        )

    def agent(self, agent_id: int | None) -> AgentRef:
        if agent_id is None:
            raise RequestRefused("The request names no agent (agent_id is empty).")
        agent = self.agents.get(agent_id)
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
        return self._find("role", ref, lambda e: ref in (e.target, str(e.int_id)))

    def find_team(self, ref: str) -> Entitlement:
        """A team by id or exact name."""
        return self._find("team", ref, lambda e: ref == str(e.target))

    def _find(self, kind: str, ref: str, by_id: Callable[[Entitlement], bool]) -> Entitlement:
        ref = ref.strip()
        candidates = self.of_kind(kind)
        matches = [e for e in candidates if by_id(e) or ref.casefold() == e.name.casefold()]
        return _one(
            kind,
            ref,
            matches,
            {f"{e.name} ({e.target})": (e.name,) for e in candidates},
            lambda e: f"{e.name} ({e.target})",
        )


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
        raise RequestRefused(
            f"{kind} {shorten(ref)} is ambiguous: it matches {listed}. Use the id."
        )
    close = _candidates(ref[:200], searchable)
    hint = f" Did you mean: {'; '.join(close)}?" if close else ""
    raise RequestRefused(f"Unknown {kind} {shorten(ref)}: not in the last sync.{hint}")


_WORD = re.compile(r"\w+")


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
    # alike to difflib; and with each word of it, so 'Securty' finds 'Security "Red" Team'.
    by_text = {_fold(texts[0]): label for label, texts in searchable.items() if texts}
    close = difflib.get_close_matches(folded, list(by_text), n=limit, cutoff=0.6)
    if not close:
        close = [
            text
            for text in by_text
            if any(
                difflib.SequenceMatcher(None, folded, word).ratio() >= 0.75
                for word in _WORD.findall(text)
            )
        ][:limit]
    return list(dict.fromkeys(by_text[text] for text in close))
