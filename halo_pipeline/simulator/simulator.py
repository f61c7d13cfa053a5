"""The simulator as tests and the CLI use it: an app, ways to reach it, and scenario helpers."""

import base64
import copy
import dataclasses
import functools
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx

from halo_pipeline.simulator import persistence, service_desk, tickets
from halo_pipeline.simulator.app import HaloApp
from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.dataset import (
    ACCESS_FIELDS,
    FIELD_IDS,
    UNASSIGNED_AGENT_ID,
    Agent,
    Dataset,
    Membership,
    Role,
    generate_dataset,
)
from halo_pipeline.simulator.faults import Fault
from halo_pipeline.simulator.server import serve_in_background
from halo_pipeline.simulator.shapes import agent_detail
from halo_pipeline.simulator.state import LoggedRequest, State

_ROLE_IDS = uuid.UUID("5f0c2a8e-3d1b-4c7e-9a6f-2b8d4e1c7a30")
"""The namespace of the ids of roles added to a simulator."""

P = ParamSpec("P")
R = TypeVar("R")


def _persisted(method: Callable[P, R]) -> Callable[P, R]:
    """A helper that changes the state: saved to the state file afterwards, when there is one."""

    @functools.wraps(method)
    def change(*args: P.args, **kwargs: P.kwargs) -> R:
        result = method(*args, **kwargs)
        simulator = args[0]
        assert isinstance(simulator, Simulator)
        simulator._save()
        return result

    return change


class Simulator:
    """A HaloITSM stand-in. Helpers change the state at once, without the configured write lag,
    and raise KeyError for unknown ids.

    With `state_file`, the state is read from it when it exists (`dataset` is then only the
    seed of a new one) and written back after every change, through the API or a helper.
    """

    def __init__(
        self,
        dataset: Dataset | None = None,
        config: SimulatorConfig | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.state_file = state_file
        if state_file is not None and state_file.exists():
            self._state = persistence.load(state_file)
        else:
            self._state = State(dataset or generate_dataset())
        self.app = HaloApp(self._state, self.config)
        if state_file is not None:
            self.app.after_write = lambda: persistence.save(self._state, state_file)
            self._save()

    def _save(self) -> None:
        if self.state_file is not None:
            with self._state.lock:
                persistence.save(self._state, self.state_file)

    def transport(self) -> httpx.WSGITransport:
        """For `httpx.Client(transport=sim.transport(), base_url="http://halo.test")`."""
        return httpx.WSGITransport(app=self.app)

    def serve(
        self, host: str = "127.0.0.1", port: int = 0, access_log: bool = False
    ) -> AbstractContextManager[str]:
        """`with sim.serve() as url:` serves real HTTP from a daemon thread until the block ends."""
        return serve_in_background(self.app, host, port, access_log)

    def inject(self, fault: Fault) -> None:
        with self._state.lock:
            self.app.faults.add(fault)

    @property
    def request_counts(self) -> Counter[tuple[str, str]]:
        with self._state.lock:
            return self._state.request_counts.copy()

    @property
    def request_log(self) -> list[LoggedRequest]:
        with self._state.lock:
            return list(self._state.request_log)

    def reset_counts(self) -> None:
        with self._state.lock:
            self._state.request_counts.clear()
            self._state.request_log.clear()

    def expire_tokens(self) -> None:
        with self._state.lock:
            self._state.expire_tokens()

    def agent_ids(self) -> list[int]:
        """Every agent a full sync lists: all but Halo's Unassigned pseudo-agent."""
        with self._state.lock:
            return sorted(a for a in self._state.agents if a != UNASSIGNED_AGENT_ID)

    def get_agent(self, agent_id: int) -> dict:
        """The agent as `GET /api/agent/{id}?includedetails=true` answers it (ids as integers)."""
        with self._state.lock:
            return agent_detail(self._state.agents[agent_id], self._state)

    @_persisted
    def set_agent_roles(self, agent_id: int, role_ids: list[str]) -> None:
        with self._state.lock:
            self._require(self._state.roles, role_ids)
            self._update(agent_id, role_ids=tuple(role_ids))

    @_persisted
    def set_agent_teams(self, agent_id: int, team_ids: list[int]) -> None:
        """Make these the agent's teams: a team it keeps keeps its row's flags, a new one gets a
        new membership's; rows of other teams, in_section False ones too, go."""
        with self._state.lock:
            self._require(self._state.teams, team_ids)
            current = {row.team_id: row for row in self._state.agents[agent_id].teams}
            rows = (
                dataclasses.replace(current[team_id], in_section=True)
                if team_id in current
                else Membership(team_id)
                for team_id in team_ids
            )
            self._update(agent_id, teams=tuple(rows))

    @_persisted
    def set_membership(self, agent_id: int, team_id: int, **fields: Any) -> None:
        """Add or change one row of the agent's teams, e.g. `is_manager=True` or
        `in_section=False`; a new row starts from a new membership's defaults."""
        with self._state.lock:
            self._require(self._state.teams, [team_id])
            teams = self._state.agents[agent_id].teams
            current = next((row for row in teams if row.team_id == team_id), None)
            changed = dataclasses.replace(current or Membership(team_id), **fields)
            if current is None:
                self._update(agent_id, teams=(*teams, changed))
            else:
                self._update(
                    agent_id, teams=tuple(changed if row is current else row for row in teams)
                )

    @_persisted
    def add_agent(
        self,
        name: str,
        email: str,
        *,
        isdisabled: bool = False,
        isapiagent: bool = False,
        role_ids: tuple[str, ...] = (),
        team_ids: tuple[int, ...] = (),
    ) -> int:
        with self._state.lock:
            self._require(self._state.roles, role_ids)
            self._require(self._state.teams, team_ids)
            firstname, _, surname = name.partition(" ")
            team = self._state.teams[team_ids[0]] if team_ids else None
            agent = Agent(
                id=self._state.new_agent_id(),
                name=name,
                firstname=firstname,
                surname=surname,
                email=email,
                isdisabled=isdisabled,
                isapiagent=isapiagent,
                team=team.name if team else None,
                department=team.department_name if team else None,
                role_ids=tuple(role_ids),
                teams=tuple(Membership(team_id) for team_id in team_ids),
            )
            self._state.save_agents([agent])
            return agent.id

    @_persisted
    def disable_agent(self, agent_id: int) -> None:
        with self._state.lock:
            self._update(agent_id, isdisabled=True)

    @_persisted
    def delete_agent(self, agent_id: int) -> None:
        with self._state.lock:
            self._state.delete_agent(agent_id)

    @_persisted
    def delete_team(self, team_id: int) -> None:
        with self._state.lock:
            self._state.delete_team(team_id)

    @_persisted
    def add_role(self, name: str, notes: str = "", is_integration: bool = False) -> str:
        with self._state.lock:
            id_int = max((role.id_int for role in self._state.roles.values()), default=0) + 1
            # Derived, not random: a simulator given the same changes has the same ids, as
            # its seeded dataset does.
            guid = uuid.uuid5(_ROLE_IDS, f"{id_int}:{name}")
            role = Role(str(guid), id_int, name, notes, is_integration)
            self._state.roles[role.id] = role
            self._state.changed()
            return role.id

    def role_ids(self) -> dict[str, str]:
        """Each role's id by name."""
        with self._state.lock:
            return {role.name: role.id for role in self._state.roles.values()}

    def members_of(self, team_id: int) -> list[int]:
        """The ids of the agents in the team."""
        with self._state.lock:
            return [a.id for a in self._state.agents.values() if team_id in a.team_ids]

    @_persisted
    def add_user(self, name: str, email: str, linked_agent_id: int | None = None) -> int:
        """An end user; `linked_agent_id` when the user record belongs to an agent."""
        with self._state.lock:
            user_id = self._state.new_user_id()
            self._state.users[user_id] = {"id": user_id, "name": name, "emailaddress": email,
                                          "linked_agent_id": linked_agent_id}  # fmt: skip
            return user_id

    @_persisted
    def open_request_ticket(
        self,
        user_id: int,
        summary: str,
        details: str = "",
        *,
        fields: dict[str, str | None],
        logged_by: int | None = None,
        tickettype_id: int = 25,
    ) -> int:
        """An access request as a person files it in HaloITSM's portal (or an agent for them,
        `logged_by`): the form's custom fields by name, each given as its text."""
        with self._state.lock:
            user = self._state.users[user_id]
            logger = self._state.agents[logged_by] if logged_by is not None else None
            ticket = tickets.fault_record(self._state, self._state.ticket_types[tickettype_id], {
                "summary": summary,
                "details": details,
                "agent_id": 1,  # Unassigned
                "category_1": "Access",
                "user_id": user_id,
                "user_name": user["name"],
                "user_email": user["emailaddress"],
                "reportedby": logger.email if logger else user["emailaddress"],
                "customfields": _custom_fields(fields),
            })  # fmt: skip
            self._state.tickets[ticket["id"]] = ticket
            return ticket["id"]

    @_persisted
    def edit_request_ticket(self, ticket_id: int, fields: dict[str, str | None]) -> None:
        """A person changes the form's fields after filing it."""
        with self._state.lock:
            ticket = self._state.tickets[ticket_id]
            changed = {f["name"]: f for f in ticket["customfields"]}
            changed.update((f["name"], f) for f in _custom_fields(fields))
            self._state.tickets[ticket_id] = ticket | {
                "customfields": list(changed.values()), "last_update": tickets.now()
            }  # fmt: skip

    @_persisted
    def answer_approval(
        self,
        ticket_id: int,
        agent_id: int,
        result: int = service_desk.APPROVED,
        note: str = "",
        *,
        step_id: int = 1,
        admin_overridden: bool = False,
        delegated_by_uid: int | None = None,
        dated: bool = True,
    ) -> None:
        """An approver's row on the ticket, as HaloITSM's approval process records it: awaiting
        (0) until they answer, approved (1) or rejected (2) with the time they did (`dated`
        False: Halo's empty date, as a tenant may record an answer)."""
        with self._state.lock:
            agent = self._state.agents[agent_id]
            rows = self._state.approvals
            key = (ticket_id, agent_id, step_id)
            row = next((r for r in rows if (r["ticket_id"], r["agent_id"], r["step_id"]) == key),
                       None)  # fmt: skip
            if row is None:
                row = {"id": self._state.new_approval_id(), "ticket_id": ticket_id,
                       "seq": 1 + sum(r["ticket_id"] == ticket_id for r in rows)}  # fmt: skip
                rows.append(row)
            row.update(
                agent_id=agent_id, agent_name=agent.name, emailaddress=agent.email,
                result=result, approver_note=note, step_id=step_id,
                dateapproved=(tickets.UNSET_DATE if result == service_desk.AWAITING or not dated
                              else tickets.now()),
                approval_process_id=1, approval_process_name="Access approval",
                votes_required_to_accept=1, admin_overridden=admin_overridden,
                delegated_by_uid=delegated_by_uid,
            )  # fmt: skip

    @property
    def approvals(self) -> list[dict]:
        with self._state.lock:
            return copy.deepcopy(self._state.approvals)

    @property
    def attachments(self) -> list[dict]:
        """Files on tickets, each with its `content` decoded."""
        with self._state.lock:
            return [row | {"content": base64.b64decode(row["data_base64"])}
                    for row in copy.deepcopy(self._state.attachments)]  # fmt: skip

    @property
    def tickets(self) -> list[dict]:
        with self._state.lock:
            return copy.deepcopy(list(self._state.tickets.values()))

    @property
    def actions(self) -> list[dict]:
        with self._state.lock:
            return copy.deepcopy(self._state.actions)

    def _update(self, agent_id: int, **changes: Any) -> None:
        agent = self._state.agents[agent_id]
        self._state.save_agents([dataclasses.replace(agent, **changes)])

    @staticmethod
    def _require(known: dict, ids: Iterable[object]) -> None:
        unknown = [value for value in ids if value not in known]
        if unknown:
            raise KeyError(unknown[0])


def _custom_fields(given: dict[str, str | None]) -> list[dict]:
    """The form's fields as Halo sends them: `value` raw (a select's option id, a date or
    Halo's empty date), `display` the text a person sees."""
    kinds = {name: (label, kind) for name, label, kind in ACCESS_FIELDS}
    fields = []
    for name, text in given.items():
        label, kind = kinds[name]
        if kind == 4:  # a date
            value, display = (text, text[:10]) if text else (tickets.UNSET_DATE, "")
        elif kind == 2:  # a select: the option's id, stable for its text
            value, display = (zlib.crc32(text.encode()) % 10_000 if text else 0), text or ""
        else:
            value = display = text or ""
        fields.append({"id": FIELD_IDS[name], "name": name, "label": label, "type": kind,
                       "value": value, "display": display})  # fmt: skip
    return fields
