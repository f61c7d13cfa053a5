"""Records rendered in the JSON shapes HaloITSM answers with, field names spelled as Halo does."""

from halo_pipeline.simulator.dataset import Agent, Role, Status, Team, TicketType
from halo_pipeline.simulator.state import State


def agent_json(agent: Agent, state: State, *, roles: bool = True, teams: bool = True) -> dict:
    body = {
        "id": agent.id,
        "name": agent.name,
        "firstname": agent.firstname,
        "surname": agent.surname,
        "email": agent.email,
        "isdisabled": agent.isdisabled,
        "isapiagent": agent.isapiagent,
        "is_agent": True,
        "is_admin": any(state.roles[role_id].name == "Administrator" for role_id in agent.role_ids),
        "team": agent.team,
        "department": agent.department,
    }
    if teams:
        # A write-lagged version may still name a team deleted since.
        body["teams"] = [
            membership_json(state.teams[team_id])
            for team_id in agent.team_ids
            if team_id in state.teams
        ]
    if roles:
        body["roles"] = [
            {"id": role_id, "name": state.roles[role_id].name} for role_id in agent.role_ids
        ]
    return body


def membership_json(team: Team) -> dict:
    return {
        "team_id": team.id,
        "team_name": team.name,
        "department_id": team.department_id,
        "is_manager": False,
        "in_section": True,
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
    return {
        "id": ticket_type.id,
        "name": ticket_type.name,
        "use": ticket_type.use,
        "initial_status": ticket_type.initial_status,
        "allowed_status": list(ticket_type.allowed_status),
        "fields": [{"name": name} for name in ticket_type.fields],
    }


def status_json(status: Status) -> dict:
    return {"id": status.id, "name": status.name}
