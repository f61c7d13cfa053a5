"""Typed views of HaloITSM API objects, with Halo's own field names.

Only the fields this project uses are declared; the rest are ignored, so a Halo release that
adds fields changes nothing. A field the server did not send is None: unknown, never false.
Validation failures become `HaloMalformedResponseError` in the client, naming the endpoint and
the field.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

EMPTY_DATES = ("1900-01-01", "0001-01-01")
"""How Halo sends a date that has no value."""


def is_empty_date(value: Any) -> bool:
    """Whether Halo's answer means "no date": nothing, or one of its sentinels."""
    return value in (None, "") or (isinstance(value, str) and value.startswith(EMPTY_DATES))


def halo_id(value: Any) -> Any:
    """An integer id, also when Halo sends it as an integral float (`18.0`, seen on real
    tenants). Anything else that is not an id (a bool, `18.5`, text) is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected an integer id, got {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected an integer id, got a fraction")
        return int(value)
    return value


HaloId = Annotated[int, BeforeValidator(halo_id)]


class HaloModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class AgentRoleRef(HaloModel):
    """A role as it appears inside an agent (`agent.roles[]`)."""

    id: str
    name: str | None = None


MEMBERSHIP_FLAGS = (
    "is_manager",
    "fortickets",
    "foropps",
    "forprojects",
    "unassigned_access",
    "otheragent_access",
    "no_config_access",
)
"""What a team membership says besides the team: kept in `halo.agent_teams`, and compared
after every write so that a change to one membership never resets another."""


class TeamMembership(BaseModel):
    """A row of `agent.teams[]` (Halo's `UnameSection`).

    Every field Halo sent is kept, declared or not (`extra="allow"`), because a team write
    must post each kept membership back exactly as it was read: a row posted with only its
    `team_id` is reset to Halo's defaults, losing `is_manager` and the permissions.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    team_id: HaloId
    team_name: str | None = None
    in_section: bool | None = None
    is_manager: bool | None = None
    fortickets: bool | None = None
    foropps: bool | None = None
    forprojects: bool | None = None
    unassigned_access: bool | None = None
    otheragent_access: bool | None = None
    no_config_access: bool | None = None

    @property
    def is_member(self) -> bool:
        """`in_section: false` rows name a team the agent is not in."""
        return self.in_section is not False

    def as_read(self) -> dict[str, Any]:
        """The row as HaloITSM sent it, for writing back unchanged."""
        return self.model_dump(exclude_unset=True)

    def flags(self) -> dict[str, bool | None]:
        return {flag: getattr(self, flag) for flag in MEMBERSHIP_FLAGS}


class Agent(HaloModel):
    """`GET /api/agent` rows (Halo's `Uname_List`) and `GET /api/agent/{id}` (`Uname`).

    List rows carry no `roles`, `is_admin` or `department` (Halo's OpenAPI file); those stay
    None, which the warehouse stores as NULL. `roles` and `teams` are None when the server
    left them out, as opposed to an empty list, which means the agent holds none: the sync
    then reads memberships per role and per team instead.
    """

    id: HaloId
    name: str
    firstname: str | None = None
    surname: str | None = None
    email: str | None = None
    isdisabled: bool = False
    isapiagent: bool = False
    is_admin: bool | None = None
    team: str | None = None
    department: str | None = None
    role_list: str | None = None
    teams: tuple[TeamMembership, ...] | None = None
    roles: tuple[AgentRoleRef, ...] | None = None

    @property
    def memberships(self) -> tuple[TeamMembership, ...] | None:
        """The team rows that are memberships (`in_section` not false)."""
        return None if self.teams is None else tuple(t for t in self.teams if t.is_member)


class AgentRecord(NamedTuple):
    """An agent as a sync keeps it: the columns of `halo.agents`, its `role_list`, and its
    memberships. A tuple, not a model: a 100,000-agent sync holds every one at once."""

    id: int
    name: str
    firstname: str | None
    surname: str | None
    email: str | None
    isdisabled: bool
    isapiagent: bool
    is_admin: bool | None
    team: str | None
    department: str | None
    role_list: str | None
    roles: tuple[str, ...] | None
    """Role GUIDs; None when the row did not carry roles."""
    teams: tuple[tuple[Any, ...], ...] | None
    """(team_id, *MEMBERSHIP_FLAGS) of each membership; None when the row carried no teams."""

    @classmethod
    def of(cls, agent: Agent) -> AgentRecord:
        teams = agent.memberships
        return cls(
            agent.id, agent.name, agent.firstname, agent.surname, agent.email,
            agent.isdisabled, agent.isapiagent, agent.is_admin, agent.team, agent.department,
            agent.role_list,
            None if agent.roles is None else tuple(role.id for role in agent.roles),
            None if teams is None else tuple((t.team_id, *t.flags().values()) for t in teams),
        )  # fmt: skip


class Role(HaloModel):
    """`GET /api/roles`. `id` is a GUID; `id_int` is what the agent list's `role` filter takes."""

    id: str
    id_int: HaloId
    name: str
    notes: str | None = None
    is_integration: bool = False


class Team(HaloModel):
    """`GET /api/team` (with `includedisabled=true` so inactive teams come too)."""

    id: HaloId
    name: str
    department_id: HaloId | None = None
    department_name: str | None = None
    inactive: bool = False


class TicketType(HaloModel):
    """`GET /api/tickettype` (Halo's `RequestType_List`): the "ticket schemas". The list
    carries no initial status; `hasmandatorytechfields` says whether a create must name
    fields that only the tenant knows (HALO_TICKET_FIELDS)."""

    id: HaloId
    name: str
    use: int | str | None = None
    hasmandatorytechfields: bool | None = None
    fieldidlist: list[Any] | None = None


class Status(HaloModel):
    """`GET /api/status?type=ticket`. Ids differ per tenant, so they are looked up by name."""

    id: HaloId
    name: str


class CustomField(HaloModel):
    """One of a ticket's `customfields`: `name` is the field's internal name, `value` its raw
    value (a select's option id, a date), `display` the text a person sees."""

    id: HaloId | None = None
    name: str
    label: str | None = None
    type: int | None = None
    value: Any = None
    display: Any = None


class Ticket(HaloModel):
    """`GET/POST /api/tickets` (Halo's `Faults`; a 201 answer carries about 240 keys, these are
    what the pipeline reads)."""

    id: HaloId
    summary: str = ""
    details: str | None = None
    status_id: HaloId | None = None
    tickettype_id: HaloId | None = None
    agent_id: HaloId | None = None
    datecreated: str | None = None
    last_update: str | None = None
    user_id: HaloId | None = None
    user_email: str | None = None
    reportedby: str | None = None
    customfields: tuple[CustomField, ...] | None = None
    """Absent from list rows: Halo sends them in a ticket's detail."""


class User(HaloModel):
    """`GET /api/users/{id}`: an end user, and the agent the record belongs to, when one does."""

    id: HaloId
    name: str | None = None
    emailaddress: str | None = None
    linked_agent_id: HaloId | None = None


class TicketApproval(HaloModel):
    """`GET /api/TicketApproval?ticket_id=N` (Halo's `FaultApproval`): one approver's row.
    What `result`'s values mean is not documented (HALO_APPROVAL_RESULTS says)."""

    ticket_id: HaloId
    seq: int | None = None
    agent_id: HaloId | None = None
    agent_name: str | None = None
    emailaddress: str | None = None
    result: int | None = None
    approver_note: str | None = None
    dateapproved: str | None = None
    step_id: int | None = None
    admin_overridden: bool | None = None
    delegated_by_uid: HaloId | None = None


class TokenResponse(HaloModel):
    access_token: str = Field(repr=False)
    token_type: str = "Bearer"
    expires_in: int = 3600
