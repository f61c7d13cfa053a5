"""The simulator's HaloITSM kept in a JSON file, so that a simulator started again (the next
`make demo`, `make dev`) goes on from where the last one stopped instead of from its seed: a
sync then records only what really changed."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from halo_pipeline.simulator.dataset import (
    Agent,
    Dataset,
    Membership,
    Role,
    Status,
    Team,
    TicketType,
)
from halo_pipeline.simulator.state import State

FORMAT = 1


class StateFileError(ValueError):
    """The state file cannot be read back; it says which file and what to do."""


def save(state: State, path: Path) -> None:
    """Write the state (the caller holds its lock) atomically: a crash leaves the last file."""
    dataset = state.dataset()
    document = {
        "format": FORMAT,
        "agents": dataset.agents,
        "roles": dataset.roles,
        "teams": dataset.teams,
        "ticket_types": dataset.ticket_types,
        "statuses": dataset.statuses,
        "login_agent_id": dataset.login_agent_id,
        "tickets": list(state.tickets.values()),
        "actions": state.actions,
        "next_ids": state.next_ids,
        "users": list(state.users.values()),
        "approvals": state.approvals,
        "attachments": state.attachments,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, ensure_ascii=False, default=_fields), encoding="utf-8")
    os.replace(partial, path)


def _fields(value: object) -> dict[str, Any]:
    """A dataclass (an agent, its memberships) as the file holds it. `dataclasses.asdict`
    deep-copied every value first: a tenth of a demo's time, the state being saved after
    every write."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"{type(value).__name__} is not kept in the state file")
    return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}


def load(path: Path) -> State:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, not {FORMAT}")
        dataset = Dataset(
            agents=tuple(_agent(row) for row in document["agents"]),
            roles=tuple(Role(**row) for row in document["roles"]),
            teams=tuple(Team(**row) for row in document["teams"]),
            ticket_types=tuple(_ticket_type(row) for row in document["ticket_types"]),
            statuses=tuple(Status(**row) for row in document["statuses"]),
            login_agent_id=document["login_agent_id"],
        )
        tickets = {ticket["id"]: ticket for ticket in document["tickets"]}
        users = {user["id"]: user for user in document.get("users", [])}
        return State(dataset, tickets, document["actions"], document["next_ids"], users,
                     document.get("approvals", []), document.get("attachments", []))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StateFileError(
            f"The simulator's state file {path} cannot be read ({error}); delete it (or run "
            "`make clean`) to start the simulator from its seed."
        ) from None


def _agent(row: dict[str, Any]) -> Agent:
    return Agent(
        **{
            **row,
            "role_ids": tuple(row["role_ids"]),
            "teams": tuple(Membership(**membership) for membership in row["teams"]),
        }
    )


def _ticket_type(row: dict[str, Any]) -> TicketType:
    return TicketType(
        **{
            **row,
            "allowed_status": tuple(row["allowed_status"]),
            "fields": tuple(row["fields"]),
            "mandatory": tuple(tuple(pair) for pair in row["mandatory"]),
        }
    )
