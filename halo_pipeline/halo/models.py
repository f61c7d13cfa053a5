"""Typed views of HaloITSM API objects, with Halo's own field names.

Only the fields this project uses are declared; the rest are ignored, so a Halo release that
adds fields changes nothing. Validation failures become `HaloMalformedResponseError` in the
client, naming the endpoint and the field.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HaloModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class AgentRoleRef(HaloModel):
    """A role as it appears inside an agent (`agent.roles[]`)."""

    id: str
    name: str | None = None


class AgentTeamRef(HaloModel):
    """A team membership as it appears inside an agent (`agent.teams[]`)."""

    team_id: int
    team_name: str | None = None
    department_id: int | None = None
    is_manager: bool = False


class Agent(HaloModel):
    """`GET /api/agent` rows and `GET /api/agent/{id}`.

    `roles` and `teams` are None when the server left them out of the row (as opposed to an
    empty list, which means the agent holds none): the sync then fetches memberships per role
    and per team instead.
    """

    id: int
    name: str
    firstname: str | None = None
    surname: str | None = None
    email: str | None = None
    isdisabled: bool = False
    isapiagent: bool = False
    is_admin: bool = False
    team: str | None = None
    department: str | None = None
    teams: tuple[AgentTeamRef, ...] | None = None
    roles: tuple[AgentRoleRef, ...] | None = None


class Role(HaloModel):
    """`GET /api/roles`. `id` is a GUID; `id_int` is what the agent list's `role` filter takes."""

    id: str
    id_int: int
    name: str
    notes: str | None = None
    is_integration: bool = False


class Team(HaloModel):
    """`GET /api/team` (with `includedisabled=true` so inactive teams come too)."""

    id: int
    name: str
    department_id: int | None = None
    department_name: str | None = None
    inactive: bool = False


class TicketType(HaloModel):
    """`GET /api/tickettype`: Halo's "ticket schemas"."""

    id: int
    name: str
    use: int | str | None = None
    initial_status: int | None = None


class Status(HaloModel):
    """`GET /api/status`. Ids differ per tenant, so they are looked up by name."""

    id: int
    name: str


class Ticket(HaloModel):
    """`GET/POST /api/tickets`."""

    id: int
    summary: str = ""
    details: str | None = None
    status_id: int | None = None
    tickettype_id: int | None = None
    agent_id: int | None = None
    datecreated: str | None = None


class TokenResponse(HaloModel):
    access_token: str = Field(repr=False)
    token_type: str = "Bearer"
    expires_in: int = 3600
