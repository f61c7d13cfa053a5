"""A deterministic, seeded HaloITSM directory: agents, roles, teams, ticket types and statuses.

Records are frozen so a Dataset can seed any number of simulators without them sharing state.
"""

import random
import uuid
from dataclasses import dataclass
from typing import NamedTuple

UNASSIGNED_AGENT_ID = 1

ROLE_NAMES = (
    "Administrator", "Agent", "Change Manager", "Read Only", "Integration", "Problem Manager",
    "Knowledge Editor", "Team Lead",
)  # fmt: skip
ROLE_NOTES = (
    "Full access to configuration and every ticket.",
    "Works tickets for their teams.",
    "Approves and schedules changes.",
    "Can view tickets but not edit them.",
    "For API applications and integrations.",
    "Owns problem records and their root causes.",
    "Writes and publishes knowledge base articles.",
    "Assigns and reviews their team's tickets.",
)
TEAM_NAMES = (
    "1st Line Support",
    "2nd Line Support",
    "Service Desk – Café",
    'Security "Red" Team',
    "Legacy Apps (retired)",
    "Закупки",
)
# Teams after the first six draw their department; these are their names, then "Team <id>".
MORE_TEAM_NAMES = (
    "Network Operations",
    "Field Engineering",
    "Identity & Access",
    "Old Intranet (retired)",  # team 10: every fifth team is inactive
    "HR Service Desk",
    "Change Advisory Board",
)
DEPARTMENTS = ((1, "IT Operations"), (2, "Security"), (3, "Procurement"), (4, "Facilities"))
# The first six teams' departments, by index into DEPARTMENTS; later teams draw one.
TEAM_DEPARTMENTS = (0, 0, 0, 1, 0, 2)
FIRST_NAMES = (
    "Zoë", "José", "Łukasz", "Søren", "Aoife", "Priya", "Chen", "Fatima", "Olga", "Liam",
    "Amélie", "Björn", "Kwame", "Sakura", "Δημήτρης", "محمد", "Noah", "Ingrid", "Mateo", "Siobhán",
)  # fmt: skip
SURNAMES = (
    "Müller", "Ñúñez", "O'Brien", "D'Angelo", "Smith", "Nguyen", "Kowalski", "Иванов", "山田",
    "García", "Jensen", "Okafor", "Patel", "Lefèvre", "Brown", "Haddad", "Novák", "Kim",
)  # fmt: skip
# How many ordinary roles (not Administrator or Integration) and teams an agent gets: means 3, 2.
ROLE_COUNTS = (0, 1, 2, 3, 3, 4, 4, 5, 5)
TEAM_COUNTS = (0, 1, 1, 2, 2, 2, 3, 3, 4)
ADMIN_SHARE = 0.03
# Team managers come with the access a manager needs: other agents' and unassigned tickets.
MANAGER_SHARE = 0.15
DISABLED_SHARE = 0.06
API_AGENT_SHARE = 0.03


@dataclass(frozen=True)
class Role:
    id: str
    id_int: int
    name: str
    notes: str
    is_integration: bool = False


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    department_id: int
    department_name: str
    inactive: bool = False


@dataclass(frozen=True)
class Membership:
    """One row of an agent's `teams` (Halo's UnameSection). The defaults are those Halo gives a
    new membership, so a row written back with only its team_id loses its flags."""

    team_id: int
    in_section: bool = True  # False: the row exists but the agent is not in the team
    is_manager: bool = False
    fortickets: bool = True
    foropps: bool = False
    forprojects: bool = False
    unassigned_access: bool = False
    otheragent_access: bool = False
    no_config_access: bool = False
    role_id: int | None = None
    role_name: str | None = None


@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    firstname: str
    surname: str
    email: str
    isdisabled: bool = False
    isapiagent: bool = False
    team: str | None = None
    department: str | None = None
    role_ids: tuple[str, ...] = ()
    teams: tuple[Membership, ...] = ()

    @property
    def team_ids(self) -> tuple[int, ...]:
        """The teams the agent is in: rows with in_section False are not memberships."""
        return tuple(row.team_id for row in self.teams if row.in_section)


@dataclass(frozen=True)
class TicketType:
    id: int
    name: str
    use: str
    initial_status: int | None
    allowed_status: tuple[int, ...]
    fields: tuple[str, ...]
    group_id: int = 1
    # (field name, label): a create without the field is refused with "<label> is required".
    mandatory: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Status:
    id: int
    name: str
    is_closed: bool = False
    type: str = "ticket"  # Halo's statuses also serve opportunities and projects


@dataclass(frozen=True)
class Dataset:
    agents: tuple[Agent, ...]
    roles: tuple[Role, ...]
    teams: tuple[Team, ...]
    ticket_types: tuple[TicketType, ...]
    statuses: tuple[Status, ...]
    login_agent_id: int  # the API-only agent behind GET /api/agent/me


STATUSES = (
    Status(1, "New"),
    Status(2, "In Progress"),
    Status(3, "Waiting on User"),
    Status(8, "Completed", is_closed=True),
    Status(9, "Closed", is_closed=True),
    Status(10, "Cancelled", is_closed=True),
    # Names repeat across types, so a client that looks a ticket status up by name must ask for
    # type=ticket.
    Status(20, "New", type="opportunity"),
    Status(21, "Closed", is_closed=True, type="project"),
)
# Halo numbers every field of a ticket form; these ids are made up but stable.
FIELD_IDS = {
    "summary": 3,
    "details": 4,
    "impact": 12,
    "category_1": 15,
    "CFAccessAction": 202,
    "CFAccessAgent": 203,
    "CFAccessRole": 204,
    "CFAccessTeam": 205,
    "CFAccessUntil": 206,
    "CFAccessFor": 207,
}
# The access request form's custom fields: (name, label, Halo's field type). Type 2 is a
# select (its `display` the option's text), 4 a date, 0 text.
ACCESS_FIELDS = (
    ("CFAccessAgent", "Who needs access", 0),
    ("CFAccessRole", "Role", 2),
    ("CFAccessTeam", "Team", 2),
    ("CFAccessAction", "Grant or revoke", 2),
    ("CFAccessUntil", "Until", 4),
    ("CFAccessFor", "For how long", 0),
)
TICKET_TYPES = (
    TicketType(1, "Incident", "incident", 1, (1, 2, 3, 8, 9), ("summary", "details", "impact")),
    TicketType(
        3, "Service Request", "request", 1, (1, 2, 3, 8, 9, 10), ("summary", "details"), group_id=2
    ),
    TicketType(
        25,
        "Access Request",
        "request",
        2,
        (2, 3, 8, 9, 10),
        ("summary", "details", "category_1", *(name for name, _, _ in ACCESS_FIELDS)),
        group_id=2,
        mandatory=(("category_1", "Category"),),
    ),
)


class Showcase(NamedTuple):
    firstname: str
    surname: str
    roles: tuple[int, ...]  # indexes into ROLE_NAMES
    teams: tuple[int, ...]  # team ids
    isdisabled: bool = False
    isapiagent: bool = False
    manages: tuple[int, ...] = ()  # team ids among `teams` the agent manages
    outside: tuple[int, ...] = ()  # team ids of extra rows with in_section False


# Agents fixed so that every dataset shows the awkward cases tests and demos need, whatever the
# seed. Roles and teams a small dataset lacks are dropped.
SHOWCASE = {
    # accents; administrator; 3 roles, 2 teams; manager of team 1
    2: Showcase("Zoë", "Müller", (0, 1, 2), (1, 3), manages=(1,)),
    3: Showcase("Seán", "O'Brien", (1,), (5,)),  # apostrophe; only in an inactive team
    # double quotes; a row for team 1 that is not a membership
    4: Showcase('Robert "Bobby"', "Tables", (1, 3), (2,), outside=(1,)),
    5: Showcase("Дмитрий", "Иванов", (1,), (6, 2)),  # non-Latin script
    6: Showcase("José", "Ñúñez", (1, 2), (1,), isdisabled=True),  # disabled, still holds roles
    7: Showcase("Aoife", "D'Angelo", (), (), isdisabled=True),  # disabled, no role, no team
    8: Showcase("API", "Integration 8", (4,), (), isapiagent=True),  # API-only: the app's login
    9: Showcase("Priya", "Patel", (), (3,)),  # no role
    10: Showcase("Liam", "Smith", (1, 3), ()),  # no team
}


def generate_dataset(seed: int = 7, agents: int = 40, teams: int = 6, roles: int = 5) -> Dataset:
    """Build a directory of `agents` real agents (plus the Unassigned placeholder, id 1)."""
    rng = random.Random(seed)
    # Manager flags came later: drawing them from rng would change every agent generated after
    # the first membership, so they have their own sequence.
    managers = random.Random(f"{seed}:managers")
    role_records = tuple(_role(rng, index) for index in range(roles))
    team_records = tuple(_team(rng, team_id) for team_id in range(1, teams + 1))
    unassigned = Agent(UNASSIGNED_AGENT_ID, "Unassigned", "Unassigned", "", "")
    agent_records = (unassigned,) + tuple(
        _agent(rng, managers, agent_id, role_records, team_records)
        for agent_id in range(2, agents + 2)
    )
    api_agents = [agent.id for agent in agent_records if agent.isapiagent]
    return Dataset(
        agents=agent_records,
        roles=role_records,
        teams=team_records,
        ticket_types=TICKET_TYPES,
        statuses=STATUSES,
        login_agent_id=api_agents[0] if api_agents else UNASSIGNED_AGENT_ID,
    )


def _role(rng: random.Random, index: int) -> Role:
    guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if index < len(ROLE_NAMES):
        name, notes = ROLE_NAMES[index], ROLE_NOTES[index]
    else:
        name, notes = f"Role {index + 1}", f"Generated role {index + 1}."
    return Role(guid, index + 1, name, notes, is_integration=name == "Integration")


def _team(rng: random.Random, team_id: int) -> Team:
    if team_id <= len(TEAM_NAMES):
        name, department = TEAM_NAMES[team_id - 1], DEPARTMENTS[TEAM_DEPARTMENTS[team_id - 1]]
    else:
        more = team_id - len(TEAM_NAMES) - 1
        name = MORE_TEAM_NAMES[more] if more < len(MORE_TEAM_NAMES) else f"Team {team_id}"
        department = rng.choice(DEPARTMENTS)
    return Team(team_id, name, department[0], department[1], inactive=team_id % 5 == 0)


def _agent(
    rng: random.Random,
    managers: random.Random,
    agent_id: int,
    roles: tuple[Role, ...],
    teams: tuple[Team, ...],
) -> Agent:
    # Every draw happens for every agent, so showcase overrides do not shift later agents.
    firstname, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    isapiagent = rng.random() < API_AGENT_SHARE
    isdisabled = rng.random() < DISABLED_SHARE
    ordinary_roles = [role for role in roles if role.name not in ("Administrator", "Integration")]
    role_list = rng.sample(ordinary_roles, min(rng.choice(ROLE_COUNTS), len(ordinary_roles)))
    if roles and rng.random() < ADMIN_SHARE:
        role_list.insert(0, roles[0])
    team_list = rng.sample(teams, min(rng.choice(TEAM_COUNTS), len(teams)))

    showcase = SHOWCASE.get(agent_id)
    if showcase:
        firstname, surname = showcase.firstname, showcase.surname
        isapiagent, isdisabled = showcase.isapiagent, showcase.isdisabled
        role_list = [roles[index] for index in showcase.roles if index < len(roles)]
        team_list = [teams[team_id - 1] for team_id in showcase.teams if team_id <= len(teams)]
        memberships = _showcase_memberships(showcase, len(teams))
    elif isapiagent:
        firstname, surname = "API", f"Integration {agent_id}"
        role_list = [role for role in roles if role.is_integration]
        team_list = []
        memberships = ()
    else:
        memberships = tuple(_drawn_membership(managers, team.id) for team in team_list)

    default_team = team_list[0] if team_list else None
    return Agent(
        id=agent_id,
        name=f"{firstname} {surname}",
        firstname=firstname,
        surname=surname,
        email=f"agent{agent_id}@example.com",
        isdisabled=isdisabled,
        isapiagent=isapiagent,
        team=default_team.name if default_team else None,
        department=default_team.department_name if default_team else None,
        role_ids=tuple(role.id for role in role_list),
        teams=memberships,
    )


def _drawn_membership(managers: random.Random, team_id: int) -> Membership:
    if managers.random() < MANAGER_SHARE:
        return Membership(team_id, is_manager=True, unassigned_access=True, otheragent_access=True)
    return Membership(team_id)


def _showcase_memberships(showcase: Showcase, team_count: int) -> tuple[Membership, ...]:
    # Fixed whatever the seed, so tests can name a manager and a row that is not a membership.
    rows = [
        Membership(
            team_id,
            is_manager=True,
            foropps=True,
            unassigned_access=True,
            otheragent_access=True,
        )
        if team_id in showcase.manages
        else Membership(team_id)
        for team_id in showcase.teams
    ]
    rows += [Membership(team_id, in_section=False) for team_id in showcase.outside]
    return tuple(row for row in rows if row.team_id <= team_count)
