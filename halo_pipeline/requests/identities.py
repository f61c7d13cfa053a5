"""Who is who. People who decide (approvers, deniers, reviewers) are HaloITSM agents, read from
HaloITSM: an email typed on the command line must name exactly one enabled agent. Requesters
and grantees are compared with them by agent id when they resolve to one, and otherwise by
email, normalised (NFKC) and casefolded: `Ana@Example.com` is `ana@example.com`. A typed email
that normalising would change (a fullwidth `ａ`) is refused with its normal form, so a look-alike
never passes for someone else."""

from __future__ import annotations

import getpass
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from halo_pipeline.requests.rules import RequestRefused, email, shorten


class AgentDirectory(Protocol):
    """What identities need of HaloITSM: the agents a search answers (the client has it)."""

    def list_agents_where(self, **filters: str) -> list: ...


@dataclass(frozen=True)
class Person:
    """An agent as HaloITSM has them; `email` is HaloITSM's, normalised."""

    agent_id: int
    name: str
    email: str

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}> (agent {self.agent_id})"


def os_user() -> str | None:
    """The operating-system user running the command, recorded beside an unauthenticated `--by`."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return None


def normal(text: str | None) -> str:
    """An email as it is compared: NFKC-normalised, casefolded, trimmed."""
    return unicodedata.normalize("NFKC", text or "").strip().casefold()


def typed_email(value: str | None, what: str) -> str:
    """A typed email, refused when normalising would change it (look-alike characters), and
    otherwise validated and lower-cased."""
    given = (value or "").strip()
    plain = unicodedata.normalize("NFKC", given)
    if plain != given:
        raise RequestRefused(
            f"{what} {shorten(given)} has characters that stand for others (it reads "
            f"{plain!r} once normalised): type the address in plain characters."
        )
    return email(given, what)


def person(halo: AgentDirectory, value: str | None, what: str) -> Person:
    """The one enabled HaloITSM agent whose email was typed, read from HaloITSM now."""
    wanted = typed_email(value, what)
    found = [
        agent
        for agent in halo.list_agents_where(search=wanted)
        if normal(agent.email) == normal(wanted) and not agent.isdisabled
    ]
    if len(found) != 1:
        state = "no enabled agent" if not found else f"{len(found)} enabled agents"
        raise RequestRefused(
            f"{what} {wanted} is {state} in HaloITSM: whoever decides must be exactly one "
            "enabled HaloITSM agent, named by their email there."
        )
    [agent] = found
    return Person(int(agent.id), agent.name or wanted, normal(agent.email))


def agent_with_email(halo: AgentDirectory, value: str | None) -> int | None:
    """The agent (enabled or not) whose HaloITSM email this is, when exactly one is: a requester
    may be an end user with no agent, or a policy."""
    wanted = normal(value)
    if "@" not in wanted:
        return None
    found = [a for a in halo.list_agents_where(search=wanted) if normal(a.email) == wanted]
    return int(found[0].id) if len(found) == 1 else None


def same_person(one: Person, agent_id: int | None, email_text: str | None) -> bool:
    """Whether `one` is the agent `agent_id`, or has that email (normalised)."""
    same_agent = agent_id is not None and one.agent_id == agent_id
    return same_agent or (bool(email_text) and normal(one.email) == normal(email_text))
