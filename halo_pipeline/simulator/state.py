"""The simulator's in-memory HaloITSM: directory records, tickets, tokens and request counters."""

import dataclasses
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from halo_pipeline.simulator.dataset import Agent, Dataset


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    # Entries are logged on arrival, to keep arrival order; the status is filled in on answering.
    status: int | None = None
    body: Any = None
    """A write's JSON body, as sent (what tests count writes by); None for reads and forms."""


class State:
    """Everything a running simulator remembers.

    Methods do not lock: callers hold `lock` around each request or test helper, so that a
    request sees and changes the state as one step, as it would on a transactional server.
    """

    def __init__(
        self,
        dataset: Dataset,
        tickets: dict[int, dict] | None = None,
        actions: list[dict] | None = None,
        next_ids: dict[str, int] | None = None,
        users: dict[int, dict] | None = None,
        approvals: list[dict] | None = None,
        attachments: list[dict] | None = None,
    ) -> None:
        """A fresh HaloITSM from `dataset`, or, with the rest, one a saved state continues."""
        self.lock = threading.Lock()
        # Records are frozen, so copying the mappings is enough to keep simulators apart.
        self.agents = {agent.id: agent for agent in dataset.agents}
        self.roles = {role.id: role for role in dataset.roles}
        self.teams = {team.id: team for team in dataset.teams}
        self.ticket_types = {ticket_type.id: ticket_type for ticket_type in dataset.ticket_types}
        self.statuses = {status.id: status for status in dataset.statuses}
        self.login_agent_id = dataset.login_agent_id
        self.tickets: dict[int, dict] = dict(tickets or {})
        self.actions: list[dict] = list(actions or [])
        self.users: dict[int, dict] = dict(users or {})
        """End users (not agents), as `GET /api/users/{id}` answers them."""
        self.approvals: list[dict] = list(approvals or [])
        """`TicketApproval` rows: each approver's answer on a ticket."""
        self.attachments: list[dict] = list(attachments or [])
        """Files on tickets, their content as posted (base64)."""
        self.tokens: dict[str, float] = {}  # token -> expiry on the config clock
        self.request_counts: Counter[tuple[str, str]] = Counter()
        self.request_log: list[LoggedRequest] = []
        self._lagging: dict[int, tuple[float, Agent | None]] = {}  # id -> (until, what reads see)
        # What each list request's filters selected, until the directory changes: paging
        # through a list then costs a page, not a pass over the whole directory.
        self._listings: dict[Hashable, list[Agent]] = {}
        self._rendered: dict[Hashable, str] = {}
        self._holders: tuple[dict[str, set[int]], dict[int, set[int]]] | None = None
        # Halo never reuses ids, even after a delete.
        self.next_ids = next_ids or {
            "agent": max(self.agents, default=0) + 1,
            "ticket": 1001,
            "action": 1,
        }
        # State files from before users and approvals start them here.
        self.next_ids.setdefault("user", 1)
        self.next_ids.setdefault("approval", 1)
        self.next_ids.setdefault("attachment", 1)

    def visible_agent(self, agent_id: int, now: float) -> Agent | None:
        """The agent as reads see it: the version before a write until the write lag has passed."""
        lagging = self._lagging.get(agent_id)
        if lagging is not None:
            until, seen = lagging
            if now < until:
                return seen
            del self._lagging[agent_id]
        return self.agents.get(agent_id)

    def visible_agents(self, now: float) -> list[Agent]:
        """Every agent as reads see it, by id (ids only grow, so dict order is id order)."""
        seen = (self.visible_agent(agent_id, now) for agent_id in list(self.agents))
        return [agent for agent in seen if agent is not None]

    def listing(
        self,
        key: Hashable,
        now: float,
        wanted: Callable[[Agent], bool],
        among: Callable[[], set[int]] | None = None,
    ) -> list[Agent]:
        """The agents that `wanted` keeps, by id; `key` names the filters that `wanted` applies
        and `among`, when given, the only ids it can keep (from `holders`, so a role's members
        are found without a pass over the whole directory)."""
        if self._lagging:  # what reads see changes with time: nothing to keep
            return [agent for agent in self.visible_agents(now) if wanted(agent)]
        if key not in self._listings:
            agents = (
                self.visible_agents(now)
                if among is None
                else [self.agents[agent_id] for agent_id in sorted(among())]
            )
            self._listings[key] = [agent for agent in agents if wanted(agent)]
        return self._listings[key]

    def holders(self, role_ids: set[str] | None, team_ids: set[int] | None) -> set[int]:
        """Ids of the agents holding any of these roles (and in any of these teams)."""
        if self._holders is None:
            by_role: dict[str, set[int]] = {}
            by_team: dict[int, set[int]] = {}
            for agent in self.agents.values():
                for role_id in agent.role_ids:
                    by_role.setdefault(role_id, set()).add(agent.id)
                for team_id in agent.team_ids:
                    by_team.setdefault(team_id, set()).add(agent.id)
            self._holders = by_role, by_team
        by_role, by_team = self._holders
        found: set[int] | None = None
        if role_ids is not None:
            found = set().union(*(by_role.get(role_id, set()) for role_id in role_ids))
        if team_ids is not None:
            in_teams = set().union(*(by_team.get(team_id, set()) for team_id in team_ids))
            found = in_teams if found is None else found & in_teams
        return set(self.agents) if found is None else found

    def rendered(self, key: Hashable, render: Callable[[], str]) -> str:
        """`render()`, kept under `key` until the directory changes."""
        if self._lagging:
            return render()
        if key not in self._rendered:
            self._rendered[key] = render()
        return self._rendered[key]

    def changed(self) -> None:
        """The directory changed: every kept listing and rendering is stale."""
        self._listings.clear()
        self._rendered.clear()
        self._holders = None

    def save_agents(self, agents: list[Agent], now: float = 0.0, lag_s: float = 0.0) -> None:
        self.changed()
        for agent in agents:
            if lag_s > 0:
                self._lagging[agent.id] = (now + lag_s, self.visible_agent(agent.id, now))
            else:
                self._lagging.pop(agent.id, None)
            self.agents[agent.id] = agent

    def new_agent_id(self) -> int:
        return self._next("agent")

    def _next(self, kind: str) -> int:
        self.next_ids[kind] += 1
        return self.next_ids[kind] - 1

    def delete_agent(self, agent_id: int) -> None:
        self.changed()
        del self.agents[agent_id]
        self._lagging.pop(agent_id, None)

    def delete_team(self, team_id: int) -> None:
        self.changed()
        team = self.teams.pop(team_id)
        # Rows with in_section False go too: they belong to the team, not to the agent.
        holders = [
            agent
            for agent in self.agents.values()
            if any(row.team_id == team_id for row in agent.teams)
        ]
        self.save_agents(
            [
                dataclasses.replace(
                    agent,
                    teams=tuple(row for row in agent.teams if row.team_id != team_id),
                    team=None if agent.team == team.name else agent.team,
                )
                for agent in holders
            ]
        )

    def new_ticket_id(self) -> int:
        return self._next("ticket")

    def new_action_id(self) -> int:
        return self._next("action")

    def new_user_id(self) -> int:
        return self._next("user")

    def new_approval_id(self) -> int:
        return self._next("approval")

    def new_attachment_id(self) -> int:
        return self._next("attachment")

    def dataset(self) -> Dataset:
        """The directory as it is now."""
        return Dataset(
            agents=tuple(self.agents.values()),
            roles=tuple(self.roles.values()),
            teams=tuple(self.teams.values()),
            ticket_types=tuple(self.ticket_types.values()),
            statuses=tuple(self.statuses.values()),
            login_agent_id=self.login_agent_id,
        )

    def issue_token(self, expires_at: float) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = expires_at
        return token

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def token_valid(self, token: str, now: float) -> bool:
        return now < self.tokens.get(token, now)

    def log_request(
        self, method: str, route: str, path: str, query: dict[str, str], body: Any = None
    ) -> LoggedRequest:
        self.request_counts[(method, route)] += 1
        entry = LoggedRequest(method, path, query, body=body)
        self.request_log.append(entry)
        return entry
