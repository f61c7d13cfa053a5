"""The HaloITSM simulator, spoken to with plain httpx both in-process and over loopback HTTP."""

import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime

import httpx
import pytest

from halo_pipeline.simulator import Dataset, Fault, Simulator, SimulatorConfig, generate_dataset
from halo_pipeline.simulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from halo_pipeline.simulator.dataset import Membership
from halo_pipeline.simulator.tickets import FAULT_RECORD

DATASET = generate_dataset()
ROLE = {role.name: role for role in DATASET.roles}
TEAM = {team.id: team for team in DATASET.teams}
UNSET_DATE = "1900-01-01T00:00:00"
# Halo's Uname_List, as the OpenAPI file describes agent list rows.
LIST_ROW_KEYS = [
    "id",
    "name",
    "firstname",
    "surname",
    "email",
    "isdisabled",
    "isapiagent",
    "is_agent",
    "team",
    "role_list",
    "teams",
]
# Halo's Uname: GET /api/agent/{id}?includedetails=true.
DETAIL_KEYS = [*LIST_ROW_KEYS, "roles", "is_admin", "department", "_is_a_teammanager"]
MANAGER = {"is_manager": True, "unassigned_access": True, "otheragent_access": True}
ZOE_TEAM_1 = MANAGER | {"foropps": True}  # the showcase manager's row
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": DEMO_CLIENT_ID,
    "client_secret": DEMO_CLIENT_SECRET,
    "scope": "all",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Connect = Callable[[Simulator], httpx.Client]


@pytest.fixture(params=["in-process", "loopback"])
def connect(request: pytest.FixtureRequest) -> Iterator[Connect]:
    """Opens an unauthenticated client to a simulator, through the transport under test."""
    with ExitStack() as stack:

        def open_client(sim: Simulator) -> httpx.Client:
            if request.param == "in-process":
                client = httpx.Client(transport=sim.transport(), base_url="http://halo.test")
            else:
                client = httpx.Client(
                    base_url=stack.enter_context(sim.serve(access_log=True)), trust_env=False
                )
            return stack.enter_context(client)

        yield open_client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(DATASET, SimulatorConfig(clock=clock))


@pytest.fixture
def anonymous(sim: Simulator, connect: Connect) -> httpx.Client:
    return connect(sim)


@pytest.fixture
def api(anonymous: httpx.Client) -> httpx.Client:
    """A client holding a valid bearer token."""
    anonymous.headers["Authorization"] = f"Bearer {fetch_token(anonymous)}"
    return anonymous


def fetch_token(client: httpx.Client) -> str:
    response = client.post("/auth/token", data=TOKEN_FORM)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def ids(rows: list[dict]) -> list[int]:
    return [row["id"] for row in rows]


def membership(team_id: int, **changes: object) -> dict:
    """A team membership (UnameSection) as served: a new membership's flags, less `changes`."""
    return {
        "team_id": team_id,
        "team_name": TEAM[team_id].name,
        "department_id": TEAM[team_id].department_id,
        "in_section": True,
        "is_manager": False,
        "fortickets": True,
        "foropps": False,
        "forprojects": False,
        "unassigned_access": False,
        "otheragent_access": False,
        "no_config_access": False,
        "role_id": None,
        "role_name": None,
    } | changes


def role_names(sim: Simulator, agent_id: int) -> list[str]:
    return [role["name"] for role in sim.get_agent(agent_id)["roles"]]


def expected_ids(keep: Callable = lambda agent: True) -> list[int]:
    """Agent ids the default listing shows (enabled, not API-only, not Unassigned), narrowed."""
    return [
        agent.id
        for agent in DATASET.agents
        if agent.id != 1 and not agent.isdisabled and not agent.isapiagent and keep(agent)
    ]


# --- authentication ---------------------------------------------------------------------------


def test_token_is_issued_for_the_demo_application(anonymous: httpx.Client) -> None:
    response = anonymous.post("/auth/token", data=TOKEN_FORM)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "all")
    assert DEMO_CLIENT_SECRET not in response.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"scope": "read:agents"}, "invalid_scope"),
    ],
)
def test_token_errors_are_oauth_bodies(anonymous: httpx.Client, change: dict, error: str) -> None:
    response = anonymous.post("/auth/token", data=TOKEN_FORM | change)

    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_known_scopes_other_than_all_are_granted(anonymous: httpx.Client) -> None:
    response = anonymous.post(
        "/auth/token", data=TOKEN_FORM | {"scope": "read:tickets edit:tickets"}
    )

    assert response.json()["scope"] == "read:tickets edit:tickets"


def test_tenant_must_be_named_in_the_query_or_the_form(
    sim: Simulator, anonymous: httpx.Client
) -> None:
    sim.config.tenant = "acme"

    missing = anonymous.post("/auth/token", data=TOKEN_FORM)
    wrong = anonymous.post("/auth/token", params={"tenant": "other"}, data=TOKEN_FORM)
    in_query = anonymous.post("/auth/token", params={"tenant": "acme"}, data=TOKEN_FORM)
    in_form = anonymous.post("/auth/token", data=TOKEN_FORM | {"tenant": "acme"})

    assert (missing.status_code, wrong.status_code) == (500, 500)
    assert missing.headers["content-type"].startswith("text/html")
    assert missing.text.startswith("<html>")
    assert (in_query.status_code, in_form.status_code) == (200, 200)


def test_wrong_tenant_status_is_configurable(sim: Simulator, anonymous: httpx.Client) -> None:
    sim.config.tenant, sim.config.wrong_tenant_status = "acme", 404

    assert anonymous.post("/auth/token", data=TOKEN_FORM).status_code == 404


def test_authinfo_needs_no_token(sim: Simulator, anonymous: httpx.Client) -> None:
    sim.config.tenant = "acme"

    response = anonymous.get("/api/authinfo")

    assert response.json() == {
        "auth_url": str(anonymous.base_url.join("/auth")),
        "tenant_id": "acme",
    }


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz"])
def test_api_refuses_requests_without_a_valid_token(
    anonymous: httpx.Client, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = anonymous.get("/api/agent", headers=headers)

    assert (response.status_code, response.content) == (401, b"")


def test_token_expires_after_its_lifetime(
    sim: Simulator, api: httpx.Client, clock: FakeClock
) -> None:
    clock.now += 3599
    assert api.get("/api/roles").status_code == 200
    clock.now += 1
    assert api.get("/api/roles").status_code == 401


def test_expire_tokens_invalidates_every_issued_token(sim: Simulator, api: httpx.Client) -> None:
    sim.expire_tokens()

    assert api.get("/api/roles").status_code == 401
    api.headers["Authorization"] = f"Bearer {fetch_token(api)}"
    assert api.get("/api/roles").status_code == 200


# --- agents: listing ----------------------------------------------------------------------------


def test_agent_list_hides_disabled_api_and_unassigned_agents_by_default(api: httpx.Client) -> None:
    rows = api.get("/api/agent").json()

    assert ids(rows) == expected_ids()
    assert {1, 6, 7, 8}.isdisjoint(ids(rows))
    assert all("roles" not in row for row in rows)


@pytest.mark.parametrize(
    ("params", "added"),
    [
        ({"includedisabled": "true"}, {6, 7, 29, 40}),
        ({"includeapiagents": "true"}, {8, 12, 24, 25}),
        ({"includeunassigned": "true"}, {1}),
        ({"includeinactive": "true"}, set()),  # not a Halo parameter: ignored
    ],
)
def test_agent_list_includes_each_category_when_asked(
    api: httpx.Client, params: dict, added: set[int]
) -> None:
    rows = api.get("/api/agent", params=params).json()

    assert ids(rows) == sorted(set(expected_ids()) | added)


def test_agent_list_can_exclude_enabled_agents(api: httpx.Client) -> None:
    params = {"includeenabled": "false", "includedisabled": "true"}

    assert ids(api.get("/api/agent", params=params).json()) == [6, 7, 29, 40]


def test_agent_rows_are_halos_uname_list(api: httpx.Client) -> None:
    rows = api.get("/api/agent", params={"includeroles": "true"}).json()

    zoe, bobby = rows[0], rows[2]
    assert [list(row) for row in rows] == [LIST_ROW_KEYS] * len(rows)
    assert zoe == {
        "id": 2,
        "name": "Zoë Müller",
        "firstname": "Zoë",
        "surname": "Müller",
        "email": "agent2@example.com",
        "isdisabled": False,
        "isapiagent": False,
        "is_agent": True,
        "team": "1st Line Support",
        "role_list": "Administrator, Agent, Change Manager",
        "teams": [membership(1, **ZOE_TEAM_1), membership(3)],
    }
    assert list(zoe["teams"][0]) == list(membership(1))
    assert zoe["teams"][1] == {
        "team_id": 3,
        "team_name": "Service Desk – Café",
        "department_id": 1,
        "in_section": True,
        "is_manager": False,
        "fortickets": True,
        "foropps": False,
        "forprojects": False,
        "unassigned_access": False,
        "otheragent_access": False,
        "no_config_access": False,
        "role_id": None,
        "role_name": None,
    }
    # A row that is not a membership is listed all the same.
    assert bobby["teams"] == [membership(2), membership(1, in_section=False)]
    # In the agent's own role order, not the roles' order.
    assert [(row["id"], row["role_list"]) for row in rows[4:7]] == [
        (9, ""),
        (10, "Agent, Read Only"),
        (11, "Change Manager, Read Only, Agent"),
    ]


def test_detailed_agent_rows_add_is_admin_department_and_roles_when_asked(
    sim: Simulator, api: httpx.Client
) -> None:
    sim.config.agent_rows = "detailed"

    plain = api.get("/api/agent").json()[0]
    with_roles = api.get("/api/agent", params={"includeroles": "true"}).json()[0]

    assert list(plain) == [*LIST_ROW_KEYS, "is_admin", "department"]
    assert list(with_roles) == [*LIST_ROW_KEYS, "roles", "is_admin", "department"]
    assert with_roles == plain | {
        "roles": [
            {"id": ROLE[name].id, "name": name}
            for name in ("Administrator", "Agent", "Change Manager")
        ]
    }
    assert (plain["is_admin"], plain["department"]) == (True, "IT Operations")


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"search": "BOBBY"}, lambda agent: agent.id == 4),
        ({"search": "o'brien"}, lambda agent: "O'Brien" in agent.name),
        ({"search": "AGENT1"}, lambda agent: agent.email.startswith("agent1")),
        ({"team": "Service Desk – Café"}, lambda agent: 3 in agent.team_ids),
        ({"team_id": "3"}, lambda agent: 3 in agent.team_ids),
        ({"team_id": "1", "team": "1st Line Support"}, lambda agent: 1 in agent.team_ids),
        ({"team": "No Such Team"}, lambda agent: False),
        ({"role": "1"}, lambda agent: ROLE["Administrator"].id in agent.role_ids),
        (
            {"role": "4", "team_id": "2"},
            lambda a: ROLE["Read Only"].id in a.role_ids and 2 in a.team_ids,
        ),
    ],
)
def test_agent_list_filters(api: httpx.Client, params: dict, keep: Callable) -> None:
    expected = expected_ids(keep)
    assert expected or params == {"team": "No Such Team"}  # the filter is tested on real rows

    assert ids(api.get("/api/agent", params=params).json()) == expected


def test_team_filters_skip_rows_that_are_not_memberships(api: httpx.Client) -> None:
    by_id = api.get("/api/agent", params={"team_id": "1"}).json()
    by_name = api.get("/api/agent", params={"team": "1st Line Support"}).json()

    # Agent 4 has a row for team 1 with in_section false; 6 and 40 are disabled.
    assert ids(by_id) == ids(by_name) == [2, 17, 18, 34, 38]


def test_role_filter_matches_the_roles_id_int(api: httpx.Client) -> None:
    administrators = api.get("/api/agent", params={"role": "1"}).json()
    read_only = api.get("/api/agent", params={"role": "4", "includedisabled": "true"}).json()

    assert ids(administrators) == [2]
    assert ids(read_only) == [
        *(4, 10, 11, 15, 16, 17, 18, 20, 21, 22, 23),
        *(26, 27, 28, 30, 31, 32, 33, 37, 38, 39, 41),
    ]
    assert all("Read Only" in row["role_list"].split(", ") for row in read_only)


def test_ignored_role_filter_answers_every_agent(sim: Simulator, api: httpx.Client) -> None:
    sim.config.ignore_role_filter = True

    assert ids(api.get("/api/agent", params={"role": "1"}).json()) == expected_ids()
    assert ids(api.get("/api/agent", params={"role": "1", "team_id": "1"}).json()) == [
        2,
        17,
        18,
        34,
        38,
    ]


PAGE_2 = {"pageinate": "true", "page_no": "2", "page_size": "10"}


@pytest.mark.parametrize("key", ["results", "agents"])
def test_envelope_paging(sim: Simulator, api: httpx.Client, key: str) -> None:
    sim.config.agent_paging = key  # type: ignore[assignment]

    body = api.get("/api/agent", params=PAGE_2).json()

    assert list(body) == ["page_no", "page_size", "record_count", key]
    assert (body["page_no"], body["page_size"], body["record_count"]) == (2, 10, 32)
    assert ids(body[key]) == expected_ids()[10:20]


def test_paged_rows_are_under_results_by_default() -> None:
    assert SimulatorConfig().agent_paging == "results"


@pytest.mark.parametrize("key", ["results", "agents"])
def test_envelope_paging_without_record_count(sim: Simulator, api: httpx.Client, key: str) -> None:
    sim.config.agent_paging, sim.config.include_record_count = key, False  # type: ignore[assignment]

    body = api.get("/api/agent", params=PAGE_2).json()

    assert list(body) == ["page_no", "page_size", key]
    assert ids(body[key]) == expected_ids()[10:20]


def test_bare_paging_answers_the_page_as_an_array(sim: Simulator, api: httpx.Client) -> None:
    sim.config.agent_paging = "bare"

    assert ids(api.get("/api/agent", params=PAGE_2).json()) == expected_ids()[10:20]


def test_legacy_paging_ignores_paging_parameters(sim: Simulator, api: httpx.Client) -> None:
    sim.config.agent_paging = "legacy"

    assert ids(api.get("/api/agent", params=PAGE_2).json()) == expected_ids()


def test_unpaged_request_gets_a_bare_array_of_everything(api: httpx.Client) -> None:
    assert ids(api.get("/api/agent").json()) == expected_ids()


def test_last_and_past_last_pages(api: httpx.Client) -> None:
    last = api.get("/api/agent", params=PAGE_2 | {"page_no": "4"}).json()
    past = api.get("/api/agent", params=PAGE_2 | {"page_no": "5"}).json()

    assert ids(last["results"]) == expected_ids()[30:]
    assert (past["page_no"], past["record_count"], past["results"]) == (5, 32, [])


def test_page_size_is_silently_capped(sim: Simulator, api: httpx.Client) -> None:
    sim.config.max_page_size = 4

    body = api.get("/api/agent", params=PAGE_2 | {"page_size": "100"}).json()

    assert (body["page_no"], body["page_size"], body["record_count"]) == (2, 4, 32)
    assert ids(body["results"]) == expected_ids()[4:8]


def test_stuck_server_repeats_a_page(sim: Simulator, api: httpx.Client) -> None:
    sim.config.stuck_after_page = 2

    page_3 = api.get("/api/agent", params=PAGE_2 | {"page_no": "3"}).json()

    assert page_3["page_no"] == 3
    assert ids(page_3["results"]) == expected_ids()[10:20]


def test_non_numeric_paging_parameter_is_a_400(api: httpx.Client) -> None:
    response = api.get("/api/agent", params=PAGE_2 | {"page_no": "two"})

    assert response.status_code == 400
    assert set(response.json()) == {"ClassName", "Message"}


@pytest.mark.parametrize("rows", ["openapi", "detailed"])
def test_omitted_memberships_leave_list_rows_without_roles_teams_or_role_list(
    sim: Simulator, api: httpx.Client, rows: str
) -> None:
    sim.config.omit_memberships, sim.config.agent_rows = True, rows  # type: ignore[assignment]

    row = api.get("/api/agent", params={"includeroles": "true"}).json()[0]
    detail = api.get("/api/agent/2", params={"includedetails": "true"}).json()

    assert list(row) == LIST_ROW_KEYS[:-2] + (
        ["is_admin", "department"] if rows == "detailed" else []
    )
    assert (len(detail["roles"]), len(detail["teams"]), detail["role_list"]) == (
        3,
        2,
        "Administrator, Agent, Change Manager",
    )


def test_omitted_teams_leave_rows_with_role_list(sim: Simulator, api: httpx.Client) -> None:
    sim.config.omit_teams = True

    row = api.get("/api/agent").json()[0]

    assert list(row) == LIST_ROW_KEYS[:-1]
    assert row["role_list"] == "Administrator, Agent, Change Manager"


# --- agents: detail, writes, deletes --------------------------------------------------------------


def test_agent_detail_is_halos_uname(sim: Simulator, api: httpx.Client) -> None:
    response = api.get("/api/agent/4", params={"includedetails": "true"})

    detail = response.json()
    assert detail == sim.get_agent(4)
    assert list(detail) == DETAIL_KEYS
    assert detail["name"] == 'Robert "Bobby" Tables'
    assert detail["roles"] == [
        {"id": ROLE[name].id, "name": name} for name in ("Agent", "Read Only")
    ]
    assert (detail["role_list"], detail["is_admin"], detail["department"]) == (
        "Agent, Read Only",
        False,
        "IT Operations",
    )
    assert detail["teams"] == [membership(2), membership(1, in_section=False)]
    assert (detail["_is_a_teammanager"], sim.get_agent(2)["_is_a_teammanager"]) == (False, True)


def test_team_manager_means_manager_of_a_membership(sim: Simulator) -> None:
    sim.set_membership(4, 1, is_manager=True)  # the row with in_section false

    assert sim.get_agent(4)["_is_a_teammanager"] is False
    sim.set_membership(4, 2, is_manager=True)
    assert sim.get_agent(4)["_is_a_teammanager"] is True


@pytest.mark.parametrize(
    ("rows", "extra"), [("openapi", []), ("detailed", ["is_admin", "department"])]
)
def test_agent_detail_without_includedetails_is_a_list_row(
    sim: Simulator, api: httpx.Client, rows: str, extra: list[str]
) -> None:
    sim.config.agent_rows = rows  # type: ignore[assignment]

    plain = api.get("/api/agent/2").json()
    me = api.get("/api/agent/me").json()

    assert list(plain) == [*LIST_ROW_KEYS, *extra]
    assert plain == {key: sim.get_agent(2)[key] for key in plain}
    assert list(me) == [*LIST_ROW_KEYS, *extra]
    assert list(api.get("/api/agent/me", params={"includedetails": "true"}).json()) == DETAIL_KEYS


def test_unknown_agent_is_a_404_with_a_halo_error_body(api: httpx.Client) -> None:
    response = api.get("/api/agent/9999")

    assert response.status_code == 404
    assert response.json() == {"ClassName": "System.Exception", "Message": "Agent 9999 not found."}


def test_me_is_the_api_agent_the_application_logs_in_as(api: httpx.Client) -> None:
    me = api.get("/api/agent/me").json()

    assert (me["id"], me["name"], me["isapiagent"]) == (8, "API Integration 8", True)


def test_creating_one_agent_answers_201_with_the_object(sim: Simulator, api: httpx.Client) -> None:
    response = api.post(
        "/api/agent",
        json=[{"name": "Nadia Haddad", "email": "nadia@example.com", "team": "Закупки"}],
    )

    assert response.status_code == 201
    created = response.json()
    assert list(created) == DETAIL_KEYS
    assert (created["id"], created["firstname"], created["surname"]) == (42, "Nadia", "Haddad")
    assert (created["team"], created["department"]) == ("Закупки", "Procurement")
    assert (created["teams"], created["roles"], created["role_list"]) == ([membership(6)], [], "")
    detail = api.get("/api/agent/42", params={"includedetails": "true"}).json()
    assert detail == created == sim.get_agent(42)


def test_creating_several_agents_answers_an_array(api: httpx.Client) -> None:
    response = api.post("/api/agent", json=[{"name": "One Person"}, {"name": "Two People"}])

    assert response.status_code == 201
    assert [(a["id"], a["name"]) for a in response.json()] == [
        (42, "One Person"),
        (43, "Two People"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        [{"email": "nameless@example.com"}],
        [{"name": "Fine Person"}, {"name": ""}],
        [{"id": 9999, "isdisabled": True}],
        [{"id": 2.5, "isdisabled": True}],
        [{"id": "2", "isdisabled": True}],
        [{"id": 2, "roles": [{"id": "00000000-0000-0000-0000-000000000000"}]}],
        [{"id": 2, "add_roles": [{"id": "00000000-0000-0000-0000-000000000000"}]}],
        [{"id": 2, "add_roles": {"id": ROLE["Read Only"].id}}],
        [{"id": 2, "teams": [{"team_id": 999}]}],
        [{"id": 2, "teams": [{"team_id": 4, "is_manager": "yes"}]}],
        [{"id": 2, "teams": [{"is_manager": True}]}],
        [{"id": 2, "team": "No Such Team"}],
        # Checked before anything is saved: the valid first element is not written either.
        [{"id": 2, "roles": [], "teams": []}, {"id": 3, "teams": [{"team_id": 2.5}]}],
        {"name": "Not In An Array"},
    ],
)
def test_invalid_agent_writes_are_400_and_change_nothing(
    sim: Simulator, api: httpx.Client, body: object
) -> None:
    before = sim.get_agent(2)

    response = api.post("/api/agent", json=body)

    assert response.status_code == 400
    assert set(response.json()) == {"ClassName", "Message"}
    assert sim.get_agent(2) == before
    assert len(api.get("/api/agent").json()) == 32


@pytest.mark.parametrize(
    ("value", "shown"), [(18.5, "18.5"), (True, "true"), ("3", '"3"'), (None, "null")]
)
def test_an_id_that_is_not_an_integer_is_refused_naming_the_value(
    api: httpx.Client, value: object, shown: str
) -> None:
    response = api.post("/api/agent", json=[{"id": 2, "teams": [{"team_id": value}]}])

    assert response.status_code == 400
    assert response.json() == {
        "ClassName": "System.Exception",
        "Message": f"The value {shown} is not valid for team_id.",
    }


def test_integral_float_ids_are_accepted_in_agent_writes(sim: Simulator, api: httpx.Client) -> None:
    response = api.post(
        "/api/agent", json=[{"id": 2.0, "teams": [{"team_id": 4.0, "role_id": 7.0}]}]
    )

    assert response.status_code == 201
    assert response.json()["id"] == 2
    assert sim.get_agent(2)["teams"] == [membership(4, role_id=7)]
    assert type(sim.get_agent(2)["teams"][0]["role_id"]) is int


def test_replace_writes_make_the_posted_list_the_set(sim: Simulator, api: httpx.Client) -> None:
    response = api.post("/api/agent", json=[{"id": 2, "roles": [{"id": ROLE["Read Only"].id}]}])

    assert [role["name"] for role in response.json()["roles"]] == ["Read Only"]
    assert role_names(sim, 2) == ["Read Only"]
    assert (sim.get_agent(2)["is_admin"], sim.get_agent(2)["role_list"]) == (False, "Read Only")


def test_replace_writes_give_rows_posted_with_only_a_team_id_new_flags(
    sim: Simulator, api: httpx.Client
) -> None:
    response = api.post("/api/agent", json=[{"id": 2, "teams": [{"team_id": 1}, {"team_id": 3}]}])

    assert response.json()["teams"] == [membership(1), membership(3)]
    assert sim.get_agent(2)["teams"] == [membership(1), membership(3)]
    assert sim.get_agent(2)["_is_a_teammanager"] is False


def test_writing_rows_back_as_read_keeps_their_flags(sim: Simulator, api: httpx.Client) -> None:
    read = api.get("/api/agent/2", params={"includedetails": "true"}).json()["teams"]

    api.post(
        "/api/agent",
        json=[
            {"id": 2, "teams": [*read, {"team_id": 4, "forprojects": True, "role_name": "Lead"}]}
        ],
    )

    assert sim.get_agent(2)["teams"] == [
        membership(1, **ZOE_TEAM_1),
        membership(3),
        membership(4, forprojects=True, role_name="Lead"),
    ]
    assert sim.get_agent(2)["_is_a_teammanager"] is True


def test_merge_writes_add_but_never_remove(sim: Simulator, api: httpx.Client) -> None:
    sim.config.array_writes = "merge"

    api.post("/api/agent", json=[{"id": 2, "roles": [{"id": ROLE["Read Only"].id}]}])
    api.post(
        "/api/agent",
        json=[{"id": 2, "teams": [{"team_id": 4, "is_manager": True}, {"team_id": 1}]}],
    )

    agent = sim.get_agent(2)
    assert role_names(sim, 2) == ["Administrator", "Agent", "Change Manager", "Read Only"]
    # Team 1 was posted with only its id: its row is replaced in place, flags reset.
    assert agent["teams"] == [membership(1), membership(3), membership(4, is_manager=True)]


@pytest.mark.parametrize(
    ("mode", "after_both"),
    [
        ("replace", ["Change Manager", "Agent"]),
        ("merge", ["Agent", "Read Only", "Administrator", "Change Manager"]),
    ],
)
def test_add_roles_adds_in_either_mode_after_roles(
    sim: Simulator, api: httpx.Client, mode: str, after_both: list[str]
) -> None:
    sim.config.array_writes = mode  # type: ignore[assignment]

    added = api.post(
        "/api/agent", json=[{"id": 4, "add_roles": [{"id": ROLE["Administrator"].id}]}]
    )
    assert role_names(sim, 4) == ["Agent", "Read Only", "Administrator"]
    api.post(
        "/api/agent",
        json=[
            {
                "id": 4,
                "roles": [{"id": ROLE["Change Manager"].id}],
                "add_roles": [{"id": ROLE["Agent"].id}],
            }
        ],
    )

    assert added.json()["is_admin"] is True
    assert role_names(sim, 4) == after_both
    assert sim.get_agent(4)["role_list"] == ", ".join(after_both)


def test_team_writes_replace_memberships(sim: Simulator, api: httpx.Client) -> None:
    api.post("/api/agent", json=[{"id": 2, "teams": [{"team_id": 4}, {"team_id": 6}]}])

    assert [team["team_id"] for team in sim.get_agent(2)["teams"]] == [4, 6]


def test_setting_the_default_team_makes_a_row_a_membership(
    sim: Simulator, api: httpx.Client
) -> None:
    api.post("/api/agent", json=[{"id": 4, "team": "1st Line Support"}])

    agent = sim.get_agent(4)
    assert (agent["team"], agent["teams"]) == ("1st Line Support", [membership(2), membership(1)])


def test_write_lag_shows_the_previous_version_for_a_while(
    sim: Simulator, api: httpx.Client, clock: FakeClock
) -> None:
    sim.config.write_lag_s = 5

    saved = api.post("/api/agent", json=[{"id": 2, "isdisabled": True}]).json()
    created = api.post("/api/agent", json=[{"name": "New Starter"}]).json()

    assert (saved["isdisabled"], sim.get_agent(2)["isdisabled"]) == (True, True)
    assert api.get("/api/agent/2").json()["isdisabled"] is False
    assert ids(api.get("/api/agent").json()) == expected_ids()
    assert api.get(f"/api/agent/{created['id']}").status_code == 404
    clock.now += 5
    assert api.get("/api/agent/2").json()["isdisabled"] is True
    assert ids(api.get("/api/agent").json()) == [*expected_ids()[1:], created["id"]]


def test_read_only_application_cannot_write(sim: Simulator, api: httpx.Client) -> None:
    sim.config.can_write = False

    post = api.post("/api/agent", json=[{"id": 2, "isdisabled": True}])
    delete = api.delete("/api/agent/3")

    assert (post.status_code, delete.status_code) == (403, 403)
    assert list(post.json()) == ["Message"]
    assert "permission" in post.json()["Message"]
    assert sim.get_agent(2)["isdisabled"] is False


def test_forbidden_paths_answer_403(sim: Simulator, api: httpx.Client) -> None:
    sim.config.forbidden_paths = ("/api/roles",)

    response = api.get("/api/roles")

    assert response.status_code == 403
    assert response.json() == {"Message": "You do not have permission to access this resource."}
    assert api.get("/api/team").status_code == 200


def test_deleting_an_agent(api: httpx.Client) -> None:
    assert api.delete("/api/agent/3").status_code == 200
    assert api.get("/api/agent/3").status_code == 404
    assert api.delete("/api/agent/3").status_code == 404


def test_deleting_a_team_removes_its_memberships(sim: Simulator, api: httpx.Client) -> None:
    assert api.delete("/api/team/1").status_code == 200

    agent = sim.get_agent(2)
    assert ([team["team_id"] for team in agent["teams"]], agent["team"]) == ([3], None)
    assert sim.get_agent(4)["teams"] == [membership(2)]  # its in_section false row goes too
    assert api.get("/api/team/1").status_code == 404


# --- roles, teams, ticket types, statuses -------------------------------------------------------


def test_roles_are_a_bare_array(api: httpx.Client) -> None:
    roles = api.get("/api/roles").json()

    assert [(r["id_int"], r["name"], r["is_integration"]) for r in roles] == [
        (1, "Administrator", False),
        (2, "Agent", False),
        (3, "Change Manager", False),
        (4, "Read Only", False),
        (5, "Integration", True),
    ]
    assert all(
        re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", role["id"]
        )
        for role in roles
    )
    assert set(roles[0]) == {"id", "id_int", "name", "notes", "is_integration"}


def test_roles_in_an_envelope(sim: Simulator, api: httpx.Client) -> None:
    sim.config.roles_shape = "envelope"

    body = api.get("/api/roles").json()

    assert list(body) == ["roles"]
    assert len(body["roles"]) == 5


def test_teams_hide_inactive_ones_unless_asked(api: httpx.Client) -> None:
    active = api.get("/api/team").json()
    every = api.get("/api/team", params={"includedisabled": "true"}).json()

    assert ids(active) == [1, 2, 3, 4, 6]
    assert ids(every) == [1, 2, 3, 4, 5, 6]
    assert every[4] == {
        "id": 5,
        "name": "Legacy Apps (retired)",
        "department_id": 1,
        "department_name": "IT Operations",
        "inactive": True,
    }
    assert [team["name"] for team in every][2:4] == ["Service Desk – Café", 'Security "Red" Team']


def test_team_detail_lists_its_agents_when_asked(api: httpx.Client) -> None:
    plain = api.get("/api/team/3").json()
    with_agents = api.get("/api/team/3", params={"includeagents": "true"}).json()
    team_1 = api.get("/api/team/1", params={"includeagents": "true"}).json()

    assert "agents" not in plain
    members = [agent.id for agent in DATASET.agents if 3 in agent.team_ids]
    assert [entry["agent_id"] for entry in with_agents["agents"]] == members
    assert with_agents["agents"][0] == {
        "team_id": 3,
        "team_name": "Service Desk – Café",
        "department_id": 1,
        "in_section": True,
        "is_manager": False,
        "fortickets": True,
        "foropps": False,
        "forprojects": False,
        "unassigned_access": False,
        "otheragent_access": False,
        "no_config_access": False,
        "role_id": None,
        "role_name": None,
        "agent_id": 2,
        "agent_name": "Zoë Müller",
    }
    # Each agent's own row; agent 4's row for team 1 is not a membership.
    assert [entry["agent_id"] for entry in team_1["agents"]] == [2, 6, 17, 18, 34, 38, 40]
    assert team_1["agents"][0] == membership(1, **ZOE_TEAM_1) | {
        "agent_id": 2,
        "agent_name": "Zoë Müller",
    }
    assert api.get("/api/team/99").status_code == 404


def test_ticket_types_are_halos_request_type_list(sim: Simulator, api: httpx.Client) -> None:
    types = api.get("/api/tickettype").json()
    sim.config.tickettypes_shape = "envelope"
    enveloped = api.get("/api/tickettype").json()

    assert types == [
        {
            "id": 1,
            "name": "Incident",
            "use": "incident",
            "group_id": 1,
            "fieldidlist": [3, 4, 12],
            "hasmandatorytechfields": False,
            "hasmandatoryuserfields": False,
            "cancreate": True,
        },
        {
            "id": 3,
            "name": "Service Request",
            "use": "request",
            "group_id": 2,
            "fieldidlist": [3, 4],
            "hasmandatorytechfields": False,
            "hasmandatoryuserfields": False,
            "cancreate": True,
        },
        {
            "id": 25,
            "name": "Access Request",
            "use": "request",
            "group_id": 2,
            "fieldidlist": [3, 4, 15, 203, 204, 205, 202, 206, 207],
            "hasmandatorytechfields": True,
            "hasmandatoryuserfields": False,
            "cancreate": True,
        },
    ]
    assert list(types[0]) == list(types[2])
    assert enveloped == {"tickettypes": types}


def test_statuses_of_every_type_unless_one_is_asked_for(api: httpx.Client) -> None:
    ticket = [
        {"id": 1, "name": "New"},
        {"id": 2, "name": "In Progress"},
        {"id": 3, "name": "Waiting on User"},
        {"id": 8, "name": "Completed"},
        {"id": 9, "name": "Closed"},
        {"id": 10, "name": "Cancelled"},
    ]

    assert api.get("/api/status", params={"type": "ticket"}).json() == ticket
    assert api.get("/api/status").json() == [
        *ticket,
        {"id": 20, "name": "New"},
        {"id": 21, "name": "Closed"},
    ]
    assert api.get("/api/status", params={"type": "project"}).json() == [
        {"id": 21, "name": "Closed"}
    ]


# --- tickets and actions ----------------------------------------------------------------------


def open_ticket(api: httpx.Client, summary: str, tickettype_id: float = 25, **fields) -> dict:
    if tickettype_id == 25:  # access requests must name a category
        fields = {"category_1": "Access"} | fields
    response = api.post(
        "/api/tickets", json=[{"summary": summary, "tickettype_id": tickettype_id, **fields}]
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_creating_a_ticket(sim: Simulator, api: httpx.Client) -> None:
    ticket = open_ticket(api, "Grant Administrator to agent 3", details="why", team_id=4)

    # Halo's whole record: what was posted and made, and the rest of its fields.
    assert set(ticket) == {
        "id", "summary", "details", "status_id", "tickettype_id", "agent_id", "team",
        "datecreated", "last_update", "dateclosed", "customfields", "category_1", "team_id",
    } | set(FAULT_RECORD)  # fmt: skip
    assert ticket["priority"]["priorityid"] == 4 and ticket["fixbydate"] == UNSET_DATE
    assert (ticket["id"], ticket["status_id"], ticket["team"]) == (1001, 2, 'Security "Red" Team')
    assert ticket["dateclosed"] == UNSET_DATE
    assert datetime.fromisoformat(ticket["datecreated"]).year >= 2025
    assert open_ticket(api, "Printer jam", tickettype_id=3)["status_id"] == 1
    assert open_ticket(api, "Printer on fire", tickettype_id=1, status_id=3)["status_id"] == 3
    assert api.get("/api/tickets/1001").json() == ticket == sim.tickets[0]


def test_a_created_ticket_keeps_every_posted_field(sim: Simulator, api: httpx.Client) -> None:
    ticket = open_ticket(
        api,
        "Grant Agent to agent 9",
        category_1="Access>Grant",
        client_id=12,
        user_id=34,
        tags=[{"text": "access"}],
        customfields=[{"name": "CFAccessAction", "value": "grant"}],
    )

    assert {
        name: ticket[name]
        for name in ("category_1", "client_id", "user_id", "tags", "customfields")
    } == {
        "category_1": "Access>Grant",
        "client_id": 12,
        "user_id": 34,
        "tags": [{"text": "access"}],
        "customfields": [{"name": "CFAccessAction", "value": "grant"}],
    }
    assert (ticket["id"], ticket["details"], ticket["agent_id"]) == (1001, "", None)
    assert api.get("/api/tickets/1001").json() == ticket == sim.tickets[0]


@pytest.mark.parametrize(
    "body",
    [
        [{"summary": "Grant Agent", "tickettype_id": 25}],
        [{"summary": "Grant Agent", "tickettype_id": 25, "category_1": None}],
        [{"summary": "Grant Agent", "tickettype_id": 25, "category_1": ""}],
        [
            {"summary": "Printer jam", "tickettype_id": 3},
            {"summary": "Grant Agent", "tickettype_id": 25, "details": "please"},
        ],
    ],
)
def test_a_missing_mandatory_field_is_a_400_naming_it_and_stores_nothing(
    sim: Simulator, api: httpx.Client, body: list[dict]
) -> None:
    response = api.post("/api/tickets", json=body)

    assert (response.status_code, response.json()) == (400, {"Message": "Category is required"})
    assert sim.tickets == []
    assert api.get("/api/tickets").json() == {"record_count": 0, "tickets": []}


@pytest.mark.parametrize(
    "element",
    [
        {"tickettype_id": 25},
        {"summary": "x", "tickettype_id": 2},
        {"summary": "x"},
        {"id": 5},
        {"summary": "x", "tickettype_id": 3.5},
        {"summary": "x", "tickettype_id": 3, "status_id": 99},
    ],
)
def test_invalid_ticket_writes_are_400(api: httpx.Client, element: dict) -> None:
    response = api.post("/api/tickets", json=[element])

    assert response.status_code == 400
    assert set(response.json()) == {"ClassName", "Message"}


def test_integral_float_ids_are_accepted_in_ticket_writes(
    sim: Simulator, api: httpx.Client
) -> None:
    ticket = open_ticket(api, "Grant Agent", tickettype_id=25.0, status_id=3.0, team_id=4.0)
    updated = api.post("/api/tickets", json=[{"id": 1001.0, "status_id": 9.0}])
    action = api.post("/api/actions", json=[{"ticket_id": 1001.0, "new_status": 2.0}])

    assert (ticket["tickettype_id"], ticket["team"]) == (25, 'Security "Red" Team')
    assert (updated.status_code, action.status_code) == (201, 201)
    stored, stored_action = sim.tickets[0], sim.actions[0]
    assert [type(stored[name]) for name in ("id", "tickettype_id", "status_id", "team_id")] == [
        int
    ] * 4
    assert (stored["status_id"], stored_action["ticket_id"], stored_action["new_status"]) == (
        2,
        1001,
        2,
    )
    assert (type(stored_action["ticket_id"]), type(stored_action["new_status"])) == (int, int)
    refused = api.post("/api/actions", json=[{"ticket_id": 1001.5, "note": "x"}])
    assert refused.json() == {
        "ClassName": "System.Exception",
        "Message": "The value 1001.5 is not valid for ticket_id.",
    }


def test_updating_a_ticket_to_a_closed_status_sets_dateclosed(api: httpx.Client) -> None:
    ticket = open_ticket(api, "Revoke Read Only")

    response = api.post(
        "/api/tickets", json=[{"id": ticket["id"], "status_id": 9, "details": "done"}]
    )

    updated = response.json()
    assert (response.status_code, updated["status_id"], updated["details"]) == (201, 9, "done")
    assert updated["dateclosed"] != UNSET_DATE
    assert updated["datecreated"] == ticket["datecreated"]
    assert api.get(f"/api/tickets/{ticket['id']}").json() == updated
    assert api.get("/api/tickets/4242").status_code == 404


def test_ticket_search_answers_the_tickets_envelope(api: httpx.Client) -> None:
    for summary in ("Access: grant Agent", "Printer jam", "ACCESS: revoke Agent"):
        open_ticket(api, summary)

    body = api.get(
        "/api/tickets",
        params={"pageinate": "true", "page_no": "1", "page_size": "50", "search": "access"},
    ).json()

    assert list(body) == ["page_no", "page_size", "record_count", "tickets"]
    assert (body["page_no"], body["page_size"], body["record_count"]) == (1, 50, 2)
    assert [t["summary"] for t in body["tickets"]] == [
        "Access: grant Agent",
        "ACCESS: revoke Agent",
    ]


def test_actions_are_notes_on_tickets(sim: Simulator, api: httpx.Client) -> None:
    ticket = open_ticket(api, "Grant Agent")
    other = open_ticket(api, "Grant Read Only")

    response = api.post(
        "/api/actions", json=[{"ticket_id": ticket["id"], "note": "Applied", "outcome": "note"}]
    )
    api.post(
        "/api/actions", json=[{"ticket_id": other["id"], "note": "Elsewhere", "outcome": "note"}]
    )

    assert response.status_code == 201
    action = response.json()
    assert (action["id"], action["ticket_id"], action["note"]) == (1, ticket["id"], "Applied")
    listed = api.get("/api/actions", params={"ticket_id": ticket["id"]}).json()
    assert listed == {"record_count": 1, "actions": [action]}
    assert [a["note"] for a in sim.actions] == ["Applied", "Elsewhere"]
    # A note changes nothing but the time of the last update.
    noted = api.get(f"/api/tickets/{ticket['id']}").json()
    assert noted == ticket | {"last_update": action["datetime"]}
    no_status = api.post("/api/actions", json=[{"ticket_id": ticket["id"], "new_status": None}])
    assert (no_status.status_code, sim.tickets[0]) == (
        201, ticket | {"last_update": no_status.json()["datetime"]},
    )  # fmt: skip
    assert api.post("/api/actions", json=[{"ticket_id": 4242, "note": "x"}]).status_code == 400


def test_an_action_with_new_status_changes_the_status_and_nothing_else(
    sim: Simulator, api: httpx.Client
) -> None:
    ticket = open_ticket(api, "Grant Agent to agent 9", details="Agent 9 needs Agent.")

    response = api.post(
        "/api/actions",
        json=[
            {
                "ticket_id": ticket["id"],
                "outcome": "Resolved",
                "note": "Granted Agent.",
                "hiddenfromuser": False,
                "new_status": 9,
            }
        ],
    )

    action = response.json()
    assert (response.status_code, list(action)) == (
        201,
        ["ticket_id", "outcome", "note", "hiddenfromuser", "new_status", "id", "datetime"],
    )
    closed = api.get(f"/api/tickets/{ticket['id']}").json()
    assert closed == ticket | {
        "status_id": 9, "dateclosed": closed["dateclosed"], "last_update": action["datetime"]
    }  # fmt: skip
    assert closed["details"] == "Agent 9 needs Agent."
    assert closed["dateclosed"] != UNSET_DATE
    reopened = api.post("/api/actions", json=[{"ticket_id": ticket["id"], "new_status": 2}])
    assert (reopened.status_code, sim.tickets[0]["status_id"]) == (201, 2)
    assert sim.tickets[0]["dateclosed"] == closed["dateclosed"]


def test_an_action_with_an_unknown_status_is_a_400_and_changes_nothing(
    sim: Simulator, api: httpx.Client
) -> None:
    ticket = open_ticket(api, "Grant Agent")

    response = api.post(
        "/api/actions",
        json=[
            {"ticket_id": ticket["id"], "note": "first", "new_status": 9},
            {"ticket_id": ticket["id"], "note": "second", "new_status": 99},
        ],
    )

    assert (response.status_code, response.json()) == (
        400,
        {"ClassName": "System.Exception", "Message": "Status 99 does not exist."},
    )
    assert (sim.actions, sim.tickets) == ([], [ticket])


# --- rate limit, server errors, latency -----------------------------------------------------------


@pytest.mark.parametrize("retry_after", [None, True, False])
def test_rate_limit_answers_plain_text_429(
    sim: Simulator, api: httpx.Client, clock: FakeClock, retry_after: bool | None
) -> None:
    sim.config.rate_limit_per_5_min = 3
    if retry_after is not None:  # None: as configured by default, which is without Retry-After
        sim.config.send_retry_after = retry_after

    statuses = []
    for _ in range(3):
        statuses.append(api.get("/api/roles").status_code)
        clock.now += 10
    refused = api.get("/api/roles")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/plain")
    assert refused.text == "Rate Limit Reached - 3 Requests per rolling 5 minute window"
    # The first request, at the start, leaves the window 300 s after it: 270 s and a hair from now.
    assert refused.headers.get("Retry-After") == ("271" if retry_after else None)
    clock.now += 271
    assert api.get("/api/roles").status_code == 200


def test_rate_limit_window_frees_requests_one_by_one_as_they_age(
    sim: Simulator, api: httpx.Client, clock: FakeClock
) -> None:
    sim.config.rate_limit_per_5_min, sim.config.rate_window_s = 2, 60
    sim.config.send_retry_after = True

    def status_at(offset_s: float) -> int:
        clock.now = 1000 + offset_s
        return api.get("/api/roles").status_code

    assert [status_at(0), status_at(10)] == [200, 200]
    refused = api.get("/api/roles")
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "51")
    assert refused.text == "Rate Limit Reached - 2 Requests per rolling 5 minute window"
    # The request at 0 has left the window, the one at 10 has not: one slot, not a reset.
    assert [status_at(60.5), status_at(61)] == [200, 429]
    assert [status_at(70.5), status_at(71)] == [200, 429]
    assert status_at(121) == 200


def test_changing_the_limit_or_the_window_starts_a_fresh_window(
    sim: Simulator, api: httpx.Client
) -> None:
    sim.config.rate_limit_per_5_min = 1

    first = [api.get("/api/roles").status_code for _ in range(2)]
    sim.config.rate_window_s = 30
    second = [api.get("/api/roles").status_code for _ in range(2)]
    sim.config.rate_limit_per_5_min = 2
    third = [api.get("/api/roles").status_code for _ in range(3)]

    assert (first, second, third) == ([200, 429], [200, 429], [200, 200, 429])


def test_halo_defaults_five_minutes_and_no_retry_after() -> None:
    config = SimulatorConfig()

    assert (config.rate_window_s, config.send_retry_after) == (300.0, False)


# --- ids rendered as floats -------------------------------------------------------------------


def test_some_ids_are_floats_by_default(api: httpx.Client) -> None:
    roles = api.get("/api/roles")
    team = api.get("/api/team").json()[0]
    row = api.get("/api/agent").json()[0]

    assert [type(role["id_int"]) for role in roles.json()] == [float] * 5
    assert '"id_int": 1.0,' in roles.text
    assert (type(team["id"]), type(team["department_id"])) == (int, float)
    assert [type(row["teams"][0][key]) for key in ("team_id", "department_id", "in_section")] == [
        int,
        float,
        bool,
    ]
    assert type(row["id"]) is int


def test_all_ids_are_floats_when_switched_on(sim: Simulator, api: httpx.Client) -> None:
    sim.config.float_ids = "all"

    ticket = open_ticket(api, "Grant Agent", team_id=4, agent_id=2, client_id=12)
    action = api.post("/api/actions", json=[{"ticket_id": 1001, "note": "x"}]).json()
    row = api.get("/api/agent", params={"team_id": "1"}).json()[0]
    roles = api.get("/api/roles").json()
    team = api.get("/api/team/1", params={"includeagents": "true"}).json()

    floats = {"id", "status_id", "tickettype_id", "team_id", "agent_id"}
    halos_own = {"site_id", "timetaken"}  # floats in every answer, as Halo sends them
    assert {name for name, value in ticket.items() if type(value) is float} == floats | halos_own
    assert (ticket["id"], ticket["client_id"]) == (1001.0, 12)  # client_id is not an id key
    assert (type(action["id"]), type(action["ticket_id"])) == (float, float)
    assert (type(row["id"]), type(row["isdisabled"])) == (float, bool)
    assert [type(row["teams"][0][key]) for key in ("team_id", "department_id")] == [float] * 2
    assert [(type(role["id"]), type(role["id_int"])) for role in roles] == [(str, float)] * 5
    assert [type(team[key]) for key in ("id", "department_id")] == [float] * 2
    assert [type(team["agents"][0][key]) for key in ("team_id", "agent_id")] == [float] * 2
    assert type(sim.tickets[0]["id"]) is int  # only answers are rendered so


def test_no_ids_are_floats_when_switched_off(sim: Simulator, api: httpx.Client) -> None:
    sim.config.float_ids = "none"

    roles = api.get("/api/roles").json()
    row = api.get("/api/agent").json()[0]

    assert [type(role["id_int"]) for role in roles] == [int] * 5
    assert type(row["teams"][0]["department_id"]) is int


def test_float_ids_keep_pages_fast() -> None:
    sim = Simulator(generate_dataset(agents=2_000, teams=50, roles=20))
    params = {"pageinate": "true", "page_size": "100", "includeroles": "true"}

    def seconds_per_page(mode: str) -> float:
        # The best of a few rounds, so a busy machine does not decide the comparison.
        sim.config.float_ids = mode  # type: ignore[assignment]
        rounds = []
        for _ in range(3):
            started = time.perf_counter()
            for page_no in range(1, 11):
                client.get("/api/agent", params=params | {"page_no": str(page_no)})
            rounds.append((time.perf_counter() - started) / 10)
        return min(rounds)

    with httpx.Client(transport=sim.transport(), base_url="http://halo.test") as client:
        client.headers["Authorization"] = f"Bearer {fetch_token(client)}"
        plain, every = seconds_per_page("none"), seconds_per_page("all")

    assert every < max(2 * plain, plain + 0.005)


def test_server_errors_mix_json_500s_and_html_503s(sim: Simulator, api: httpx.Client) -> None:
    sim.config.error_rate = 1.0

    responses = [api.get("/api/roles") for _ in range(12)]

    by_status = {r.status_code: r for r in responses}
    assert set(by_status) == {500, 503}
    assert by_status[500].json() == {
        "ClassName": "System.Exception",
        "Message": "An error has occurred.",
    }
    assert by_status[503].text.startswith("<html>")
    assert api.post("/auth/token", data=TOKEN_FORM).status_code == 200  # only /api is affected


def test_server_errors_follow_the_seed(connect: Connect) -> None:
    def statuses(seed: int) -> list[int]:
        sim = Simulator(DATASET, SimulatorConfig(error_rate=0.5, error_seed=seed))
        client = connect(sim)
        client.headers["Authorization"] = f"Bearer {fetch_token(client)}"
        return [client.get("/api/roles").status_code for _ in range(20)]

    first = statuses(1)

    assert first == statuses(1) != statuses(2)
    assert 3 <= first.count(200) <= 17


def test_latency_does_not_serialise_concurrent_requests(sim: Simulator, api: httpx.Client) -> None:
    sim.config.latency_s = 0.3

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: api.get("/api/roles").status_code, range(4)))
    elapsed = time.perf_counter() - started

    assert statuses == [200] * 4
    assert 0.3 <= elapsed < 0.9


# --- faults -----------------------------------------------------------------------------------


def test_fault_lets_some_through_then_answers_a_number_of_times(
    sim: Simulator, api: httpx.Client
) -> None:
    sim.inject(
        Fault(
            "/api/agent",
            status=503,
            body="<html>down</html>",
            content_type="text/html",
            times=2,
            after=1,
        )
    )

    responses = [api.get("/api/agent") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 503, 503, 200]
    assert responses[1].text == "<html>down</html>"
    assert responses[1].headers["content-type"] == "text/html"


def test_fault_answers_before_authentication(sim: Simulator, anonymous: httpx.Client) -> None:
    sim.inject(Fault("/api/", status=429, body="slow down", headers={"Retry-After": "7"}))

    response = anonymous.get("/api/agent")

    assert (response.status_code, response.text, response.headers["Retry-After"]) == (
        429,
        "slow down",
        "7",
    )


def test_fault_can_serve_malformed_json(sim: Simulator, api: httpx.Client) -> None:
    sim.inject(
        Fault("/api/agent", status=200, body='{"results": [', content_type="application/json")
    )

    response = api.get("/api/agent", params=PAGE_2)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_fault_matches_method_and_path_prefix(sim: Simulator, api: httpx.Client) -> None:
    sim.inject(Fault("/api/agent", method="POST", status=500))

    assert api.get("/api/agent").status_code == 200
    assert api.get("/api/roles").status_code == 200
    assert api.post("/api/agent", json=[{"name": "A Person"}]).status_code == 500
    assert api.post("/api/agent", json=[{"name": "A Person"}]).status_code == 201


def test_faults_are_consumed_in_order(sim: Simulator, api: httpx.Client) -> None:
    sim.inject(Fault("/api/roles", status=502))
    sim.inject(Fault("/api/roles", status=504))

    assert [api.get("/api/roles").status_code for _ in range(3)] == [502, 504, 200]


def test_expire_tokens_fault_makes_the_request_a_401(sim: Simulator, api: httpx.Client) -> None:
    sim.inject(Fault("/api/agent", expire_tokens=True, after=1))

    statuses = [api.get("/api/agent").status_code for _ in range(3)]

    assert statuses == [200, 401, 401]
    api.headers["Authorization"] = f"Bearer {fetch_token(api)}"
    assert api.get("/api/agent").status_code == 200


# --- request accounting -------------------------------------------------------------------------


def test_request_counts_and_log_cover_every_request(
    sim: Simulator, anonymous: httpx.Client
) -> None:
    token = fetch_token(anonymous)
    anonymous.get("/api/agent", params={"includeroles": "true"})
    anonymous.headers["Authorization"] = f"Bearer {token}"
    anonymous.get("/api/agent", params={"includeroles": "true"})
    anonymous.get("/api/agent/2")
    anonymous.get("/api/agent/me")
    anonymous.get("/api/nowhere")

    assert sim.request_counts == Counter(
        {
            ("POST", "/auth/token"): 1,
            ("GET", "/api/agent"): 2,
            ("GET", "/api/agent/<id>"): 1,
            ("GET", "/api/agent/me"): 1,
            ("GET", "/api/nowhere"): 1,
        }
    )
    assert [(r.method, r.path, r.query, r.status) for r in sim.request_log] == [
        ("POST", "/auth/token", {}, 200),
        ("GET", "/api/agent", {"includeroles": "true"}, 401),
        ("GET", "/api/agent", {"includeroles": "true"}, 200),
        ("GET", "/api/agent/2", {}, 200),
        ("GET", "/api/agent/me", {}, 200),
        ("GET", "/api/nowhere", {}, 404),
    ]
    sim.reset_counts()
    assert (sim.request_counts, sim.request_log) == (Counter(), [])


def test_secret_is_never_logged(
    sim: Simulator, anonymous: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO"):
        anonymous.post(
            "/auth/token", params={"client_secret": DEMO_CLIENT_SECRET, "x": "1"}, data=TOKEN_FORM
        )

    assert sim.request_log[0].query == {"client_secret": "(redacted)", "x": "1"}
    # httpx logs the URL it was given; the server side (werkzeug's access log) must not.
    server_log = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert DEMO_CLIENT_SECRET not in repr(sim.request_log) + repr(sim.config) + repr(server_log)


# --- the Python API -----------------------------------------------------------------------------


def test_state_helpers_take_effect_at_once(sim: Simulator) -> None:
    sim.config.write_lag_s = 60
    role_id = sim.add_role("Auditor")
    agent_id = sim.add_agent("Ada Lovelace", "ada@example.com", team_ids=(2,))
    sim.set_agent_roles(agent_id, [role_id])
    sim.set_agent_teams(3, [1, 2])
    sim.disable_agent(4)

    assert (agent_id, sim.get_agent(agent_id)["roles"]) == (
        42,
        [{"id": role_id, "name": "Auditor"}],
    )
    assert sim.get_agent(agent_id)["team"] == "2nd Line Support"
    assert sim.get_agent(agent_id)["teams"] == [membership(2)]
    assert [team["team_id"] for team in sim.get_agent(3)["teams"]] == [1, 2]
    assert sim.get_agent(4)["isdisabled"] is True
    with pytest.raises(KeyError):
        sim.set_agent_roles(3, ["no-such-role"])
    sim.delete_agent(agent_id)
    with pytest.raises(KeyError):
        sim.get_agent(agent_id)


def test_set_agent_teams_keeps_the_flags_of_teams_it_keeps(sim: Simulator) -> None:
    sim.set_agent_teams(2, [3, 4, 1])
    sim.set_agent_teams(4, [1])  # its in_section false row becomes a membership

    assert sim.get_agent(2)["teams"] == [membership(3), membership(4), membership(1, **ZOE_TEAM_1)]
    assert sim.get_agent(4)["teams"] == [membership(1)]
    with pytest.raises(KeyError):
        sim.set_agent_teams(2, [99])


def test_set_membership_adds_or_changes_one_row(sim: Simulator) -> None:
    sim.set_membership(9, 3, is_manager=True, role_id=7, role_name="Lead")
    sim.set_membership(9, 2, in_section=False)
    sim.set_membership(2, 1, is_manager=False)

    assert sim.get_agent(9)["teams"] == [
        membership(3, is_manager=True, role_id=7, role_name="Lead"),
        membership(2, in_section=False),
    ]
    assert sim.get_agent(2)["teams"][0] == membership(1, **ZOE_TEAM_1 | {"is_manager": False})
    assert (sim.get_agent(9)["_is_a_teammanager"], sim.get_agent(2)["_is_a_teammanager"]) == (
        True,
        False,
    )
    with pytest.raises(KeyError):
        sim.set_membership(9, 99, is_manager=True)


def test_added_role_is_served(sim: Simulator, api: httpx.Client) -> None:
    role_id = sim.add_role("Auditor")

    assert api.get("/api/roles").json()[-1] == {
        "id": role_id,
        "id_int": 6,
        "name": "Auditor",
        "notes": "",
        "is_integration": False,
    }


def test_simulators_from_one_dataset_do_not_share_state() -> None:
    first, second = Simulator(DATASET), Simulator(DATASET)

    first.disable_agent(2)
    first.delete_team(3)

    assert second.get_agent(2)["isdisabled"] is False
    assert [team["team_id"] for team in second.get_agent(2)["teams"]] == [1, 3]
    assert second.get_agent(4)["teams"] == [membership(2), membership(1, in_section=False)]


def test_serve_gives_a_loopback_url_and_stops_on_exit() -> None:
    sim = Simulator(DATASET)

    with sim.serve() as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert httpx.get(f"{url}/api/authinfo", trust_env=False).status_code == 200

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/authinfo", trust_env=False)


# --- the dataset --------------------------------------------------------------------------------


def test_default_dataset_holds_the_awkward_cases() -> None:
    agents = {agent.id: agent for agent in DATASET.agents}
    inactive = {team.id for team in DATASET.teams if team.inactive}

    assert (len(DATASET.agents), len(DATASET.teams), len(DATASET.roles)) == (41, 6, 5)
    assert (agents[1].name, DATASET.login_agent_id) == ("Unassigned", 8)
    assert {6, 7} <= {a.id for a in DATASET.agents if a.isdisabled}
    assert agents[8].isapiagent and agents[8].name == "API Integration 8"
    assert (agents[7].role_ids, agents[9].role_ids) == ((), ())
    assert (agents[7].team_ids, agents[10].team_ids) == ((), ())
    assert len(agents[2].team_ids) >= 2 and len(agents[2].role_ids) >= 2
    assert set(agents[3].team_ids) <= inactive and 5 in inactive
    assert agents[6].isdisabled and len(agents[6].role_ids) == 2
    assert "'" in agents[3].name and '"' in agents[4].name
    assert (agents[2].name, agents[5].name) == ("Zoë Müller", "Дмитрий Иванов")
    assert agents[2].teams == (
        Membership(
            1, is_manager=True, foropps=True, unassigned_access=True, otheragent_access=True
        ),
        Membership(3),
    )
    assert (agents[4].teams, agents[4].team_ids) == (
        (Membership(2), Membership(1, in_section=False)),
        (2,),
    )
    assert all(agent.email.isascii() for agent in DATASET.agents)
    assert [team.name for team in DATASET.teams][:6] == [
        "1st Line Support",
        "2nd Line Support",
        "Service Desk – Café",
        'Security "Red" Team',
        "Legacy Apps (retired)",
        "Закупки",
    ]


def test_a_new_membership_has_halos_defaults() -> None:
    assert Membership(5) == Membership(
        team_id=5,
        in_section=True,
        is_manager=False,
        fortickets=True,
        foropps=False,
        forprojects=False,
        unassigned_access=False,
        otheragent_access=False,
        no_config_access=False,
        role_id=None,
        role_name=None,
    )


def test_default_agents_team_and_department_follow_their_first_team() -> None:
    teams = {team.id: team for team in DATASET.teams}

    for agent in DATASET.agents:
        first = teams[agent.team_ids[0]] if agent.team_ids else None
        assert agent.team == (first.name if first else None)
        assert agent.department == (first.department_name if first else None)


def test_dataset_is_deterministic_per_seed() -> None:
    assert generate_dataset(seed=7) == DATASET
    assert generate_dataset(seed=8) != DATASET
    assert [role.id for role in generate_dataset(seed=8).roles] != [
        role.id for role in DATASET.roles
    ]


@pytest.mark.parametrize(
    ("size", "digest"),
    [
        ({}, "2c22fe1d01ccdefa"),
        # Names of teams 7-12 and roles 6-8 since they were given real ones; no draw moved.
        ({"seed": 3, "agents": 2000, "teams": 40, "roles": 12}, "7c400ec2721699b2"),
    ],
)
def test_manager_flags_leave_every_other_generated_value_as_it_was(size: dict, digest: str) -> None:
    # Digests of what the generator made before memberships carried flags.
    dataset = generate_dataset(**size)
    agents = [
        (
            agent.id,
            agent.name,
            agent.email,
            agent.isdisabled,
            agent.isapiagent,
            agent.team,
            agent.department,
            agent.role_ids,
            agent.team_ids,
        )
        for agent in dataset.agents
    ]
    text = repr([*agents, dataset.roles, dataset.teams])

    assert hashlib.sha256(text.encode()).hexdigest()[:16] == digest


def test_large_dataset_builds_quickly_with_realistic_memberships() -> None:
    started = time.perf_counter()
    dataset: Dataset = generate_dataset(agents=10_000, teams=200, roles=40)
    elapsed = time.perf_counter() - started

    real = dataset.agents[1:]
    assert elapsed < 2
    assert ([a.id for a in real][:2], real[-1].id, len(dataset.roles), len(dataset.teams)) == (
        [2, 3],
        10_001,
        40,
        200,
    )
    assert 2.7 <= sum(len(a.role_ids) for a in real) / len(real) <= 3.3
    assert 1.8 <= sum(len(a.team_ids) for a in real) / len(real) <= 2.2
    admin = dataset.roles[0].id
    assert 0.01 <= sum(admin in a.role_ids for a in real) / len(real) <= 0.05
    assert 0.04 <= sum(a.isdisabled for a in real) / len(real) <= 0.08
    rows = [row for agent in real for row in agent.teams]
    managers = [row for row in rows if row.is_manager]
    assert 0.13 <= len(managers) / len(rows) <= 0.17
    assert {(row.otheragent_access, row.unassigned_access, row.in_section) for row in managers} == {
        (True, True, True)
    }
    assert 0.02 <= sum(a.isapiagent for a in real) / len(real) <= 0.04
    assert [team.name for team in dataset.teams if team.inactive][:3] == [
        "Legacy Apps (retired)",
        "Old Intranet (retired)",
        "Team 15",
    ]


def test_large_simulator_pages_through_every_agent() -> None:
    sim = Simulator(generate_dataset(agents=10_000, teams=200, roles=40))
    with httpx.Client(transport=sim.transport(), base_url="http://halo.test") as client:
        client.headers["Authorization"] = f"Bearer {fetch_token(client)}"
        params = {
            "pageinate": "true",
            "page_size": "100",
            "includeroles": "true",
            "includedisabled": "true",
            "includeapiagents": "true",
        }
        first = client.get("/api/agent", params=params | {"page_no": "1"}).json()
        last = client.get("/api/agent", params=params | {"page_no": "100"}).json()

    assert (first["record_count"], len(first["results"]), len(last["results"])) == (
        10_000,
        100,
        100,
    )
    assert (first["results"][0]["id"], last["results"][-1]["id"]) == (2, 10_001)


# --- the command line ---------------------------------------------------------------------------


def run_cli(*args: str, probe: Callable[[str], None] | None = None) -> tuple[list[str], int]:
    """Start the simulator command, call it once it is up (and `probe` its base URL), stop it
    with Ctrl-C."""
    command = [
        sys.executable,
        "-c",
        "from halo_pipeline.simulator.cli import simulator_command;simulator_command()",
        "--port",
        "0",
        *args,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    timer = threading.Timer(20, process.kill)  # never hang the suite on a stuck server
    timer.start()
    try:
        while not lines or lines[-1] != "Press Ctrl-C to stop.":
            line = process.stdout.readline()
            assert line, f"simulator exited early: {lines}"
            lines.append(line.rstrip("\n"))
        base_url = lines[2].split("=", 1)[1]
        assert httpx.get(f"{base_url}/api/authinfo", trust_env=False).status_code == 200
        if probe is not None:
            probe(base_url)
        process.send_signal(signal.SIGINT)
        lines += process.stdout.read().splitlines()
        return lines, process.wait()
    finally:
        timer.cancel()
        process.kill()


def test_cli_prints_how_to_connect_with_the_demo_secret() -> None:
    lines, exit_code = run_cli("--agents", "12", "--tenant", "acme")

    assert exit_code == 0
    assert re.fullmatch(
        r"HaloITSM simulator: 12 agents, 5 roles, 6 teams at http://127\.0\.0\.1:\d+", lines[0]
    )
    assert lines[3:6] == [
        f"  HALO_CLIENT_ID={DEMO_CLIENT_ID}",
        f"  HALO_CLIENT_SECRET={DEMO_CLIENT_SECRET}",
        "  HALO_TENANT=acme",
    ]
    assert lines[-1] == "Stopped."


def test_cli_does_not_print_a_secret_it_was_given() -> None:
    lines, exit_code = run_cli("--client-id", "mine", "--client-secret", "s3cr3t-value")

    assert exit_code == 0
    assert lines[3:5] == ["  HALO_CLIENT_ID=mine", "  HALO_CLIENT_SECRET=(as given)"]
    assert not any("s3cr3t-value" in line for line in lines)


def test_cli_switches_reach_the_simulator() -> None:
    def probe(base_url: str) -> None:
        with httpx.Client(base_url=base_url, trust_env=False) as client:
            client.headers["Authorization"] = f"Bearer {fetch_token(client)}"
            params = {"pageinate": "true", "page_size": "5", "role": "1", "includeroles": "true"}
            body = client.get("/api/agent", params=params).json()
            refused = client.get("/api/agent")

        assert (list(body)[-1], len(body["agents"])) == ("agents", 5)  # role filter ignored
        assert list(body["agents"][0])[-3:] == ["roles", "is_admin", "department"]
        assert type(body["agents"][0]["id"]) is float
        # authinfo, the token and the page used the 3 requests a 60 s window allows.
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60

    lines, exit_code = run_cli(
        "--agent-paging",
        "agents",
        "--agent-rows",
        "detailed",
        "--ignore-role-filter",
        "--float-ids",
        "all",
        "--rate-limit",
        "3",
        "--rate-window-s",
        "60",
        "--retry-after",
        probe=probe,
    )

    assert (exit_code, lines[-1]) == (0, "Stopped.")


def test_a_request_ticket_has_its_custom_fields_in_the_detail_only(sim, api, tmp_path):
    user = sim.add_user("Pat Doe", "pat@example.com", linked_agent_id=9)
    ticket_id = sim.open_request_ticket(
        user, "Admin for the release", "release night",
        fields={"CFAccessAgent": "agent9@example.com", "CFAccessRole": "Administrator",
                "CFAccessUntil": None, "CFAccessFor": "8h"},
        logged_by=13,
    )  # fmt: skip
    sim.open_request_ticket(user, "Closed one", fields={"CFAccessRole": "Agent"})
    api.post("/api/actions", json=[{"ticket_id": 1002, "new_status": 9}])

    listed = api.get("/api/tickets", params={"tickettype_id": 25, "open_only": "true"}).json()
    detail = api.get(f"/api/tickets/{ticket_id}").json()

    assert [t["id"] for t in listed["tickets"]] == [ticket_id]
    assert "customfields" not in listed["tickets"][0]
    assert api.get("/api/tickets", params={"tickettype_id": 3}).json()["tickets"] == []
    assert (detail["user_email"], detail["reportedby"], detail["agent_id"]) == (
        "pat@example.com", "agent13@example.com", 1,
    )  # fmt: skip
    fields = {f["name"]: f for f in detail["customfields"]}
    assert fields["CFAccessUntil"] | {} == {"id": 206, "name": "CFAccessUntil", "label": "Until",
                                            "type": 4, "value": UNSET_DATE, "display": ""}  # fmt: skip
    assert (fields["CFAccessRole"]["display"], type(fields["CFAccessRole"]["value"])) == (
        "Administrator", int,
    )  # fmt: skip
    assert api.get(f"/api/users/{user}").json() == {
        "id": user, "name": "Pat Doe", "emailaddress": "pat@example.com", "linked_agent_id": 9,
    }  # fmt: skip
    assert api.get("/api/users/99").status_code == 404
    sim.config.customfields_in_lists = True
    assert "customfields" in api.get("/api/tickets").json()["tickets"][0]

    sim.edit_request_ticket(ticket_id, {"CFAccessRole": "Agent"})
    edited = {f["name"]: f["display"] for f in api.get(f"/api/tickets/{ticket_id}").json()[
        "customfields"]}  # fmt: skip
    assert edited == {"CFAccessAgent": "agent9@example.com", "CFAccessRole": "Agent",
                      "CFAccessUntil": "", "CFAccessFor": "8h"}  # fmt: skip


def test_ticket_approvals_are_each_approvers_answer(sim, api, tmp_path):
    user = sim.add_user("Pat Doe", "pat@example.com")
    ticket_id = sim.open_request_ticket(user, "Admin", fields={"CFAccessRole": "Administrator"})
    sim.answer_approval(ticket_id, 13, 0)
    sim.answer_approval(ticket_id, 15, 2, "not on the rota", step_id=2)
    sim.answer_approval(ticket_id, 13, 1, "fine")  # the same row, answered

    rows = api.get("/api/TicketApproval", params={"ticket_id": ticket_id}).json()

    assert [(r["seq"], r["agent_id"], r["result"], r["approver_note"], r["step_id"]) for r in rows] == [
        (1, 13, 1, "fine", 1), (2, 15, 2, "not on the rota", 2),
    ]  # fmt: skip
    assert all(r["dateapproved"] != UNSET_DATE for r in rows)
    assert api.get("/api/TicketApproval", params={"ticket_id": 4242}).json() == []
    # Kept in the state file, as tickets are.
    saved = Simulator(state_file=tmp_path / "state.json")
    saved.add_user("Pat Doe", "pat@example.com")
    saved.answer_approval(saved.open_request_ticket(1, "x", fields={}), 13, 0)
    again = Simulator(state_file=tmp_path / "state.json")
    assert again.approvals == saved.approvals and len(again.approvals) == 1
    assert again.add_user("Another", "a@example.com") == 2


def test_attachments_are_kept_whole_and_refused_whole(sim: Simulator, api: httpx.Client) -> None:
    ticket = open_ticket(api, "Review for Mia")
    sim.config.max_attachment_bytes = 10
    ok = api.post("/api/Attachment", json=[{"ticket_id": ticket["id"], "filename": "a.csv",
                                             "data_base64": "aWQsbmFtZQo="}])  # fmt: skip
    too_big = api.post("/api/Attachment", json=[
        {"ticket_id": ticket["id"], "filename": "b.csv", "data_base64": "aWQsbmFtZQo="},
        {"ticket_id": ticket["id"], "filename": "c.csv", "data_base64": "MDEyMzQ1Njc4OTAx"},
    ])  # fmt: skip
    no_ticket = api.post("/api/Attachment", json=[{"ticket_id": 5, "filename": "d.csv",
                                                    "data_base64": ""}])  # fmt: skip

    assert (ok.status_code, ok.json()["filesize"], "data_base64" in ok.json()) == (201, 8, False)
    assert (too_big.status_code, too_big.json()["Message"]) == (
        400, "The file c.csv is larger than the maximum allowed size (10 bytes)."
    )  # fmt: skip
    assert (no_ticket.status_code, no_ticket.json()["Message"]) == (400, "Ticket 5 does not exist.")
    assert [(a["filename"], a["content"]) for a in sim.attachments] == [("a.csv", b"id,name\n")]


def test_the_state_file_gives_back_every_agent_membership_and_flag(tmp_path) -> None:
    saved = Simulator(state_file=tmp_path / "state.json")
    saved.set_agent_roles(9, [saved.role_ids()["Administrator"]])
    saved.set_membership(13, 2, is_manager=True, fortickets=False, role_id=4, role_name="Lead")
    saved.disable_agent(14)

    again = Simulator(state_file=tmp_path / "state.json")

    assert [again.get_agent(n) for n in (9, 13, 14)] == [saved.get_agent(n) for n in (9, 13, 14)]
    assert again.get_agent(13)["teams"] == saved.get_agent(13)["teams"]
    assert again._state.dataset() == saved._state.dataset()
