"""The agent endpoints: list with filters and paging variants, detail, writes and deletes."""

import dataclasses
from collections.abc import Callable

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import abort
from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.dataset import UNASSIGNED_AGENT_ID, Agent
from halo_pipeline.simulator.params import flag, integer, json_array, page, path_id
from halo_pipeline.simulator.responses import exception_error, json_response
from halo_pipeline.simulator.shapes import agent_json
from halo_pipeline.simulator.state import State

WRITABLE_FIELDS = ("name", "firstname", "surname", "email", "isdisabled", "department")


def list_agents(state: State, config: SimulatorConfig, request: Request) -> Response:
    args = request.args
    wanted = _listing_filter(args, state)
    agents = [agent for agent in state.visible_agents(config.clock()) if wanted(agent)]
    with_teams = not (config.omit_memberships or config.omit_teams)
    with_roles = not config.omit_memberships and flag(args, "includeroles")

    def render(selected: list[Agent]) -> list[dict]:
        return [agent_json(a, state, roles=with_roles, teams=with_teams) for a in selected]

    if not flag(args, "pageinate") or config.agent_paging == "legacy":
        return json_response(render(agents))
    page_no, page_size = page(args, config.max_page_size)
    served_page = min(page_no, config.stuck_after_page or page_no)
    start = (served_page - 1) * page_size
    results = render(agents[start : start + page_size])
    if config.agent_paging == "bare":
        return json_response(results)
    envelope: dict = {"page_no": page_no, "page_size": page_size, "record_count": len(agents)}
    if not config.include_record_count:
        del envelope["record_count"]
    return json_response(envelope | {"results": results})


def get_agent(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    agent_id = path_id(id)
    agent = state.visible_agent(agent_id, config.clock())
    if agent is None:
        abort(exception_error(404, f"Agent {agent_id} not found."))
    return json_response(agent_json(agent, state))


def get_me(state: State, config: SimulatorConfig, request: Request) -> Response:
    return get_agent(state, config, request, str(state.login_agent_id))


def post_agents(state: State, config: SimulatorConfig, request: Request) -> Response:
    # Every element is checked before any is saved, so a 400 leaves nothing half-written.
    saved = [_saved_version(element, state, config) for element in json_array(request)]
    state.save_agents(saved, config.clock(), config.write_lag_s)
    rendered = [agent_json(agent, state) for agent in saved]
    return json_response(rendered[0] if len(rendered) == 1 else rendered, 201)


def delete_agent(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    agent_id = path_id(id)
    if agent_id not in state.agents:
        abort(exception_error(404, f"Agent {agent_id} not found."))
    state.delete_agent(agent_id)
    return Response(status=200)


def _listing_filter(args: MultiDict[str, str], state: State) -> Callable[[Agent], bool]:
    include_enabled = flag(args, "includeenabled", default=True)
    include_disabled = flag(args, "includedisabled")
    include_api_agents = flag(args, "includeapiagents")
    include_unassigned = flag(args, "includeunassigned")
    search = args.get("search", "").casefold()
    team_ids: set[int] | None = None
    if "team" in args:
        team_ids = {team.id for team in state.teams.values() if team.name == args["team"]}
    if "team_id" in args:
        by_id = {integer(args, "team_id", 0)}
        team_ids = by_id if team_ids is None else team_ids & by_id
    role_ids: set[str] | None = None
    if "role" in args:
        role_ids = {role.id for role in state.roles.values() if str(role.id_int) == args["role"]}

    def wanted(agent: Agent) -> bool:
        if agent.id == UNASSIGNED_AGENT_ID:
            return include_unassigned
        return (
            (include_disabled if agent.isdisabled else include_enabled)
            and (include_api_agents or not agent.isapiagent)
            and (not search or search in agent.name.casefold() or search in agent.email.casefold())
            and (team_ids is None or not team_ids.isdisjoint(agent.team_ids))
            and (role_ids is None or not role_ids.isdisjoint(agent.role_ids))
        )

    return wanted


def _saved_version(element: dict, state: State, config: SimulatorConfig) -> Agent:
    if "id" in element:
        current = state.agents.get(element["id"])
        if current is None:
            abort(exception_error(400, f"Agent {element['id']} does not exist."))
    else:
        name = element.get("name")
        if not isinstance(name, str) or not name.strip():
            abort(exception_error(400, "Please enter a name for the agent."))
        firstname, _, surname = name.partition(" ")
        current = Agent(state.new_agent_id(), name, firstname, surname, email="")

    changes = {field: element[field] for field in WRITABLE_FIELDS if field in element}
    if "roles" in element:
        posted_roles = tuple(_known(element["roles"], "id", state.roles, "Role"))
        changes["role_ids"] = _combine(current.role_ids, posted_roles, config)
    if "teams" in element:
        posted_teams = tuple(_known(element["teams"], "team_id", state.teams, "Team"))
        changes["team_ids"] = _combine(current.team_ids, posted_teams, config)
    if element.get("team") is not None:
        team = next((t for t in state.teams.values() if t.name == element["team"]), None)
        if team is None:
            abort(exception_error(400, f"Team '{element['team']}' does not exist."))
        team_ids = changes.get("team_ids", current.team_ids)
        changes["team"] = team.name
        changes["team_ids"] = team_ids if team.id in team_ids else (*team_ids, team.id)
        changes.setdefault("department", team.department_name)
    return dataclasses.replace(current, **changes)


def _known(entries: object, key: str, known: dict, kind: str) -> list:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        abort(exception_error(400, f"{kind}s must be a list of objects."))
    ids = [entry.get(key) for entry in entries]
    unknown = [value for value in ids if value not in known]
    if unknown:
        abort(exception_error(400, f"{kind} {unknown[0]} does not exist."))
    return ids


def _combine(current: tuple, posted: tuple, config: SimulatorConfig) -> tuple:
    # "merge" plays a Halo that only ever adds: posting a shorter list revokes nothing.
    combined = current + posted if config.array_writes == "merge" else posted
    return tuple(dict.fromkeys(combined))
