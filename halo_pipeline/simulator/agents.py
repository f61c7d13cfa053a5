"""The agent endpoints: list with filters and paging variants, detail, writes and deletes."""

import dataclasses
import json
import math
from collections.abc import Callable

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import abort
from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.dataset import UNASSIGNED_AGENT_ID, Agent, Membership
from halo_pipeline.simulator.params import (
    flag,
    integer,
    json_array,
    json_id,
    optional_id,
    page,
    path_id,
)
from halo_pipeline.simulator.responses import (
    FLOAT_ID_KEYS,
    JSON,
    exception_error,
    json_response,
    with_float_ids,
)
from halo_pipeline.simulator.shapes import agent_detail, agent_row
from halo_pipeline.simulator.state import State

WRITABLE_FIELDS = ("name", "firstname", "surname", "email", "isdisabled", "department")
# Parameters that page a list without changing which agents are in it.
PAGING = frozenset({"pageinate", "page_no", "page_size", "includeroles", "include_membership_info"})
# The yes/no fields of a membership row, which a write may set.
MEMBERSHIP_FLAGS = tuple(f.name for f in dataclasses.fields(Membership) if f.type is bool)


def list_agents(state: State, config: SimulatorConfig, request: Request) -> Response:
    args = request.args
    filters = tuple(sorted((k, v) for k, v in args.items(multi=True) if k not in PAGING))
    wanted, role_ids, team_ids = _listing_filter(args, state, config)
    agents = state.listing(
        (filters, config.ignore_role_filter, config.ignore_team_filter),
        config.clock(),
        wanted,
        among=None if role_ids is team_ids is None else lambda: state.holders(role_ids, team_ids),
    )
    detailed = config.agent_rows == "detailed"
    # Only detailed rows carry roles, so includeroles changes nothing else: one rendering.
    options = (
        detailed,
        detailed and flag(args, "includeroles"),
        not config.omit_memberships,
        not config.omit_teams,
        config.float_ids,
        config.empty_row_roles,
        config.role_list,
    )

    def render(selected: list[Agent]) -> str:
        return "[" + ",".join(_row_json(agent, state, options) for agent in selected) + "]"

    if not flag(args, "pageinate") or config.agent_paging == "legacy":
        return _json_text(render(agents))
    page_no, page_size = page(args, config.max_page_size)
    served_page = min(page_no, config.stuck_after_page or page_no)
    if config.past_last_page == "last":
        served_page = min(served_page, max(1, math.ceil(len(agents) / page_size)))
    start = (served_page - 1) * page_size
    results = render(agents[start : start + page_size])
    if config.agent_paging == "bare":
        return _json_text(results)
    envelope: dict = {"page_no": page_no, "page_size": page_size, "record_count": len(agents)}
    if not config.include_record_count:
        del envelope["record_count"]
    # The mode names the key.
    return _json_text(json.dumps(envelope)[:-1] + f', "{config.agent_paging}": {results}}}')


def _row_json(agent: Agent, state: State, options: tuple) -> str:
    """A list row as JSON, kept until the directory changes: a page of a large directory then
    costs joining strings, so the simulator serves pages as fast as a client reads them."""
    detailed, roles, memberships, teams, float_ids, empty_roles, role_list = options

    def render() -> str:
        row = agent_row(
            agent, state, detailed=detailed, roles=roles, memberships=memberships, teams=teams
        )
        if empty_roles:
            row["roles"] = []
        if role_list == "first" and "role_list" in row:
            row["role_list"] = state.roles[agent.role_ids[0]].name if agent.role_ids else ""
        return json.dumps(with_float_ids(row, FLOAT_ID_KEYS[float_ids]), ensure_ascii=False)

    return state.rendered((agent.id, options), render)


def _json_text(text: str) -> Response:
    return Response(text, 200, content_type=JSON)


def get_agent(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    agent_id = path_id(id)
    agent = state.visible_agent(agent_id, config.clock())
    if agent is None:
        abort(exception_error(404, f"Agent {agent_id} not found."))
    if flag(request.args, "includedetails"):
        return json_response(agent_detail(agent, state))
    return json_response(agent_row(agent, state, detailed=config.agent_rows == "detailed"))


def get_me(state: State, config: SimulatorConfig, request: Request) -> Response:
    return get_agent(state, config, request, str(state.login_agent_id))


def post_agents(state: State, config: SimulatorConfig, request: Request) -> Response:
    # Every element is checked before any is saved, so a 400 leaves nothing half-written.
    saved = [_saved_version(element, state, config) for element in json_array(request)]
    state.save_agents(saved, config.clock(), config.write_lag_s)
    rendered = [agent_detail(agent, state) for agent in saved]
    return json_response(rendered[0] if len(rendered) == 1 else rendered, 201)


def delete_agent(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    agent_id = path_id(id)
    if agent_id not in state.agents:
        abort(exception_error(404, f"Agent {agent_id} not found."))
    state.delete_agent(agent_id)
    return Response(status=200)


def _listing_filter(
    args: MultiDict[str, str], state: State, config: SimulatorConfig
) -> tuple[Callable[[Agent], bool], set[str] | None, set[int] | None]:
    """Whether the list's filters keep an agent, and the roles and teams they narrow it to."""
    include_enabled = flag(args, "includeenabled", default=True)
    include_disabled = flag(args, "includedisabled")
    include_api_agents = flag(args, "includeapiagents")
    # `send_unassigned`: a server that lists its Unassigned pseudo-agent whatever is asked.
    include_unassigned = config.send_unassigned or flag(args, "includeunassigned")
    search = args.get("search", "").casefold()
    team_ids: set[int] | None = None
    if "team" in args:
        team_ids = {team.id for team in state.teams.values() if team.name == args["team"]}
    if "team_id" in args and not config.ignore_team_filter:
        by_id = {integer(args, "team_id", 0)}
        team_ids = by_id if team_ids is None else team_ids & by_id
    role_ids: set[str] | None = None
    if "role" in args and not config.ignore_role_filter:
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

    return wanted, role_ids, team_ids


def _saved_version(element: dict, state: State, config: SimulatorConfig) -> Agent:
    if "id" in element:
        agent_id = json_id(element["id"], "id")
        current = state.agents.get(agent_id)
        if current is None:
            abort(exception_error(400, f"Agent {agent_id} does not exist."))
    else:
        name = element.get("name")
        if not isinstance(name, str) or not name.strip():
            abort(exception_error(400, "Please enter a name for the agent."))
        firstname, _, surname = name.partition(" ")
        current = Agent(state.new_agent_id(), name, firstname, surname, email="")

    changes = {field: element[field] for field in WRITABLE_FIELDS if field in element}
    role_ids = current.role_ids
    if "roles" in element:
        posted = _role_ids(element["roles"], state)
        role_ids = role_ids + posted if config.array_writes == "merge" else posted
    if "add_roles" in element:  # adds whatever the mode, after `roles`
        role_ids = role_ids + _role_ids(element["add_roles"], state)
    teams = current.teams
    if "teams" in element:
        teams = _written_teams(teams, _posted_memberships(element["teams"], state), config)
    if element.get("team") is not None:
        team = next((t for t in state.teams.values() if t.name == element["team"]), None)
        if team is None:
            abort(exception_error(400, f"Team '{element['team']}' does not exist."))
        changes["team"] = team.name
        teams = _joined(teams, team.id)
        changes.setdefault("department", team.department_name)
    return dataclasses.replace(
        current, **changes, role_ids=tuple(dict.fromkeys(role_ids)), teams=teams
    )


def _objects(entries: object, kind: str) -> list[dict]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        abort(exception_error(400, f"{kind} must be a list of objects."))
    return entries


def _role_ids(entries: object, state: State) -> tuple[str, ...]:
    ids = tuple(entry.get("id") for entry in _objects(entries, "Roles"))
    unknown = [value for value in ids if value not in state.roles]
    if unknown:
        abort(exception_error(400, f"Role {unknown[0]} does not exist."))
    return ids  # type: ignore[return-value]  # every one is a known role id, so a string


def _posted_memberships(entries: object, state: State) -> list[Membership]:
    rows = []
    for entry in _objects(entries, "Teams"):
        team_id = json_id(entry.get("team_id"), "team_id")
        if team_id not in state.teams:
            abort(exception_error(400, f"Team {team_id} does not exist."))
        rows.append(_posted_membership(entry, team_id))
    return rows


def _posted_membership(entry: dict, team_id: int) -> Membership:
    # Fields left out take a new membership's defaults, not the current row's: that is how a
    # client writing back bare team ids resets managers and permissions.
    flags = {name: entry[name] for name in MEMBERSHIP_FLAGS if name in entry}
    for name, value in flags.items():
        if not isinstance(value, bool):
            abort(exception_error(400, f"The value {json.dumps(value)} is not valid for {name}."))
    role_name = entry.get("role_name")
    if role_name is not None and not isinstance(role_name, str):
        abort(
            exception_error(400, f"The value {json.dumps(role_name)} is not valid for role_name.")
        )
    return Membership(team_id, **flags, role_id=optional_id(entry, "role_id"), role_name=role_name)


def _written_teams(
    current: tuple[Membership, ...], posted: list[Membership], config: SimulatorConfig
) -> tuple[Membership, ...]:
    by_team = {row.team_id: row for row in posted}  # a team posted twice: its last row wins
    if config.array_writes == "replace":
        return tuple(by_team.values())
    # "merge" plays a Halo that only ever adds: rows not posted are kept, posted ones replace
    # the row of their team in place.
    kept = [by_team.pop(row.team_id, row) for row in current]
    return (*kept, *by_team.values())


def _joined(teams: tuple[Membership, ...], team_id: int) -> tuple[Membership, ...]:
    """The rows once the agent is in `team_id` (its default team): a new row, or in_section."""
    if not any(row.team_id == team_id for row in teams):
        return (*teams, Membership(team_id))
    return tuple(
        dataclasses.replace(row, in_section=True) if row.team_id == team_id else row
        for row in teams
    )
