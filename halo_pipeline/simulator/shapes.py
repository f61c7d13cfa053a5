"""Records rendered in the JSON shapes HaloITSM answers with, field names spelled as Halo does."""

from halo_pipeline.simulator.dataset import (
    FIELD_IDS,
    Agent,
    Membership,
    Role,
    Status,
    Team,
    TicketType,
)
from halo_pipeline.simulator.state import State


def agent_row(
    agent: Agent,
    state: State,
    *,
    detailed: bool = False,
    roles: bool = False,
    memberships: bool = True,
    teams: bool = True,
) -> dict:
    """A row of `GET /api/agent`: Halo's Uname_List, which names roles only in `role_list`.

    `detailed` adds what older clients assumed rows carry (is_admin, department, and roles when
    `roles`); without `memberships` the row has neither roles nor teams nor role_list.
    """
    body = {
        "id": agent.id,
        "name": agent.name,
        "firstname": agent.firstname,
        "surname": agent.surname,
        "email": agent.email,
        "isdisabled": agent.isdisabled,
        "isapiagent": agent.isapiagent,
        "is_agent": True,
        "team": agent.team,
    }
    if memberships:
        body["role_list"] = ", ".join(state.roles[role_id].name for role_id in agent.role_ids)
    if memberships and teams:
        body["teams"] = teams_json(agent, state)
    if detailed:
        if memberships and roles:
            body["roles"] = roles_json(agent, state)
        body["is_admin"] = is_admin(agent, state)
        body["department"] = agent.department
    return body


def agent_detail(agent: Agent, state: State) -> dict:
    """Halo's Uname (`GET /api/agent/{id}?includedetails=true`, and what a write answers)."""
    return agent_row(agent, state) | {
        "roles": roles_json(agent, state),
        "is_admin": is_admin(agent, state),
        "department": agent.department,
        "_is_a_teammanager": any(row.is_manager for row in agent.teams if row.in_section),
    }


def is_admin(agent: Agent, state: State) -> bool:
    return any(state.roles[role_id].name == "Administrator" for role_id in agent.role_ids)


def roles_json(agent: Agent, state: State) -> list[dict]:
    return [{"id": role_id, "name": state.roles[role_id].name} for role_id in agent.role_ids]


def teams_json(agent: Agent, state: State) -> list[dict]:
    # Every row, in_section False ones too, as Halo lists them; a write-lagged version may still
    # name a team deleted since.
    return [
        membership_json(row, state.teams[row.team_id])
        for row in agent.teams
        if row.team_id in state.teams
    ]


def membership_json(row: Membership, team: Team) -> dict:
    """Halo's UnameSection."""
    return {
        "team_id": team.id,
        "team_name": team.name,
        "department_id": team.department_id,
        "in_section": row.in_section,
        "is_manager": row.is_manager,
        "fortickets": row.fortickets,
        "foropps": row.foropps,
        "forprojects": row.forprojects,
        "unassigned_access": row.unassigned_access,
        "otheragent_access": row.otheragent_access,
        "no_config_access": row.no_config_access,
        "role_id": row.role_id,
        "role_name": row.role_name,
    }


def team_json(team: Team) -> dict:
    return {
        "id": team.id,
        "name": team.name,
        "department_id": team.department_id,
        "department_name": team.department_name,
        "inactive": team.inactive,
    }


def role_json(role: Role) -> dict:
    return {
        "id": role.id,
        "id_int": role.id_int,
        "name": role.name,
        "notes": role.notes,
        "is_integration": role.is_integration,
    }


def ticket_type_json(ticket_type: TicketType) -> dict:
    """Halo's RequestType_List: no initial_status, and fields only as ids."""
    return {
        "id": ticket_type.id,
        "name": ticket_type.name,
        "use": ticket_type.use,
        "group_id": ticket_type.group_id,
        "fieldidlist": [FIELD_IDS[name] for name in ticket_type.fields],
        "hasmandatorytechfields": bool(ticket_type.mandatory),
        "hasmandatoryuserfields": False,
        "cancreate": True,
    }


def status_json(status: Status) -> dict:
    return {"id": status.id, "name": status.name}
