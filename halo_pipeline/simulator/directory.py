"""The lookup endpoints: roles, teams, ticket types and statuses. None of them pages."""

from werkzeug.exceptions import abort
from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.params import flag, path_id
from halo_pipeline.simulator.responses import exception_error, json_response
from halo_pipeline.simulator.shapes import (
    membership_json,
    role_json,
    status_json,
    team_json,
    ticket_type_json,
)
from halo_pipeline.simulator.state import State


def list_roles(state: State, config: SimulatorConfig, request: Request) -> Response:
    roles = [role_json(role) for role in state.roles.values()]
    return json_response({"roles": roles} if config.roles_shape == "envelope" else roles)


def list_teams(state: State, config: SimulatorConfig, request: Request) -> Response:
    include_inactive = flag(request.args, "includedisabled")
    return json_response(
        [team_json(team) for team in state.teams.values() if include_inactive or not team.inactive]
    )


def get_team(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    team = state.teams.get(path_id(id))
    if team is None:
        abort(exception_error(404, f"Team {id} not found."))
    body = team_json(team)
    if flag(request.args, "includeagents"):
        body["agents"] = [
            membership_json(row, team) | {"agent_id": agent.id, "agent_name": agent.name}
            for agent in state.visible_agents(config.clock())
            for row in agent.teams
            if row.team_id == team.id and row.in_section
        ]
    return json_response(body)


def delete_team(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    team_id = path_id(id)
    if team_id not in state.teams:
        abort(exception_error(404, f"Team {team_id} not found."))
    state.delete_team(team_id)
    return Response(status=200)


def list_ticket_types(state: State, config: SimulatorConfig, request: Request) -> Response:
    types = [ticket_type_json(ticket_type) for ticket_type in state.ticket_types.values()]
    return json_response(
        {"tickettypes": types} if config.tickettypes_shape == "envelope" else types
    )


def list_statuses(state: State, config: SimulatorConfig, request: Request) -> Response:
    # Without `type` every status comes back, opportunities' and projects' too.
    wanted = request.args.get("type")
    return json_response(
        [
            status_json(status)
            for status in state.statuses.values()
            if wanted is None or status.type == wanted
        ]
    )
