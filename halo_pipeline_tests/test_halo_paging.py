"""The agent list in every paging dialect of halo_api.md, in-process and over loopback."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

import pytest

from halo_pipeline.halo import HaloMalformedResponseError, fetch_snapshot
from halo_pipeline.halo.models import MEMBERSHIP_FLAGS
from halo_pipeline.simulator import Fault, Simulator, generate_dataset
from halo_pipeline.sync import sync_halo
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import expected_memberships, halo_client, query

ROLE = {role.name: role.id for role in generate_dataset().roles}

# The default simulator dataset: 40 real agents, ids 2..41 (id 1 is the Unassigned placeholder).
ALL_AGENT_IDS = list(range(2, 42))
AGENT_LIST = ("GET", "/api/agent")


def agent_pages_requested(sim: Simulator) -> list[int]:
    return [int(r.query["page_no"]) for r in sim.request_log if r.path == "/api/agent"]


@pytest.mark.parametrize(
    ("switches", "page_size", "pages_requested"),
    [
        # {"results": [...], "record_count": 40}: the total is known, pages 2-4 come concurrently.
        ({}, 10, [1, 2, 3, 4]),
        ({"agent_paging": "agents"}, 10, [1, 2, 3, 4]),
        # No record_count: read until a page comes back empty; that page is read again, and
        # the end believed when both reads agree and the next page has nothing new.
        ({"include_record_count": False}, 10, [1, 2, 3, 4, 5, 5, 6]),
        # Paging honoured but each page a bare array.
        ({"agent_paging": "bare"}, 10, [1, 2, 3, 4, 5, 5, 6]),
        # The server caps pages at 7 rows though 10 were asked for.
        ({"max_page_size": 7}, 10, [1, 2, 3, 4, 5, 6]),
        ({"max_page_size": 7, "include_record_count": False}, 10, [1, 2, 3, 4, 5, 6, 6, 7]),
        ({"max_page_size": 7, "agent_paging": "bare"}, 10, [1, 2, 3, 4, 5, 6, 6, 7]),
        # Older versions ignore paging and send everything as a bare array.
        ({"agent_paging": "legacy"}, 10, [1]),
        # ... which, when it is exactly one page long, only page 2 resending it tells apart
        # (read twice, as any answer that ends a list).
        ({"agent_paging": "legacy"}, 40, [1, 2, 2]),
        # Everything fits on the first page.
        ({}, 100, [1]),
    ],
)
def test_every_paging_variant_yields_every_agent_once(
    sim, make_client, switches, page_size, pages_requested
):
    for name, value in switches.items():
        setattr(sim.config, name, value)
    with make_client(page_size=page_size) as client:
        agents = client.list_agents()

    assert [agent.id for agent in agents] == ALL_AGENT_IDS
    assert sorted(agent_pages_requested(sim)) == pages_requested
    assert sim.request_counts[("POST", "/auth/token")] == 1


def test_agent_list_asks_for_every_kind_of_agent_with_roles(sim, make_client):
    with make_client(page_size=10) as client:
        client.list_agents()

    first = next(r for r in sim.request_log if r.path == "/api/agent")
    assert first.query == {
        "includeenabled": "true",
        "includedisabled": "true",
        "includeapiagents": "true",
        "includeunassigned": "false",  # Halo's Unassigned pseudo-agent (1) is no account
        "includeroles": "true",
        "include_membership_info": "true",
        "pageinate": "true",
        "page_size": "10",
        "page_no": "1",
    }


def test_the_unassigned_pseudo_agent_is_never_an_account_even_when_a_server_sends_it(
    sim, make_client, tmp_path
):
    sim.config.send_unassigned = True  # whatever includeunassigned says
    sim.set_agent_roles(1, [sim.role_ids()["Agent"]])  # and a role on it besides

    with make_client(page_size=10) as client:
        agents = client.list_agents()
        result = sync_halo(client, lambda: connect(tmp_path / "warehouse.duckdb"))

    assert 1 not in {agent.id for agent in agents} and len(agents) == 40
    assert result.counts["agents"] == 40
    assert query(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM halo.agents WHERE "
                 "agent_id = 1 UNION ALL SELECT count(*) FROM halo.agent_roles "
                 "WHERE agent_id = 1") == [(0,), (0,)]  # fmt: skip


def test_a_server_repeating_a_page_before_the_total_stops_with_an_error(sim, make_client):
    # record_count known: pages 1-4 concurrently, 3 and 4 repeat page 2, page 5 again. Without
    # record_count, a page repeating the one before it ends the list (test_paging_end.py).
    sim.config.stuck_after_page = 2

    with make_client(page_size=10) as client, pytest.raises(HaloMalformedResponseError) as error:
        client.list_agents()

    assert str(error.value) == (
        "GET /api/agent: page 5 repeats rows already received (the server keeps answering the "
        "same page); stopped after 20 rows rather than keep a partial list."
    )
    assert sorted(agent_pages_requested(sim)) == [1, 2, 3, 4, 5]


def test_default_rows_carry_teams_and_roles_are_read_per_role_once_the_filter_is_proved(
    sim, make_client
):
    with make_client(page_size=10) as client:
        snapshot = fetch_snapshot(client)

    assert (snapshot.agent_roles, snapshot.agent_teams) == expected_memberships(sim)
    assert snapshot.memberships_from == "roles per role, teams agent rows"
    assert snapshot.memberships_why == "the list rows carry no roles"
    # The first role query asks for an id no role has (6): it must come back empty.
    role_queries = [r.query["role"] for r in sim.request_log if "role" in r.query]
    assert role_queries[0] == "6" and sorted(role_queries[1:]) == ["1", "2", "3", "4", "5"]
    # Showcase agents (see simulator/dataset.py): Zoë Müller manages team 1 and holds 3 roles;
    # Robert Tables' row for team 1 has in_section false; Aoife D'Angelo holds nothing.
    assert [row for row in snapshot.agent_teams if row[0] == 2] == [
        (2, 1, True, True, True, False, True, True, False),
        (2, 3, False, True, False, False, False, False, False),
    ]
    assert [row[1] for row in snapshot.agent_teams if row[0] == 4] == [2]
    assert [r for a, r in snapshot.agent_roles if a == 7] == []
    assert len([r for a, r in snapshot.agent_roles if a == 2]) == 3
    # 1 token + 4 agent pages + roles + teams + ticket types + the proof + 5 roles, and the
    # details of the sample that proves them.
    assert sum(sim.request_counts.values()) == 1 + 4 + 3 + 1 + 5 + 20
    assert sim.request_counts[("GET", "/api/agent/<id>")] == snapshot.detail_reads == 20


def test_rows_with_roles_give_every_membership_without_further_requests(sim, make_client):
    sim.config.agent_rows = "detailed"
    with make_client(page_size=10) as client:
        snapshot = fetch_snapshot(client)

    assert (snapshot.agent_roles, snapshot.agent_teams) == expected_memberships(sim)
    assert snapshot.memberships_from == "agent rows"
    assert sum(sim.request_counts.values()) == 1 + 4 + 3 + 20  # the minimum and the proof
    assert {a.id: a.is_admin for a in snapshot.agents}[2] is True


def test_rows_without_memberships_fetch_them_per_role_and_per_team(sim, make_client):
    roles, teams = expected_memberships(sim)
    sim.config.omit_memberships = True

    with make_client(page_size=10) as client:
        per_item = fetch_snapshot(client)

    assert per_item.agent_roles == roles
    # Read per team, memberships come without their flags: unknown, not false.
    assert per_item.agent_teams == [(a, t, *(None,) * len(MEMBERSHIP_FLAGS)) for a, t, *_ in teams]
    assert per_item.memberships_from == "roles per role, teams per team"
    team_queries = [int(r.query["team_id"]) for r in sim.request_log if "team_id" in r.query]
    assert team_queries[0] == 7 and sorted(team_queries[1:]) == [1, 2, 3, 4, 5, 6]
    # The minimum (8), a request per role (6) and per team (7), each with its proof first,
    # and the details of the sample that proves them.
    assert sum(sim.request_counts.values()) == 8 + 6 + 7 + 20
    assert sim.request_counts[("GET", "/api/agent/<id>")] == 20


def test_rows_with_roles_but_without_teams_fetch_only_the_teams(sim, make_client):
    roles, teams = expected_memberships(sim)
    sim.config.agent_rows, sim.config.omit_teams = "detailed", True

    with make_client(page_size=10) as client:
        mixed = fetch_snapshot(client)

    assert mixed.agent_roles == roles
    assert [row[:2] for row in mixed.agent_teams] == [row[:2] for row in teams]
    assert mixed.memberships_from == "roles agent rows, teams per team"
    assert [r for r in sim.request_log if "role" in r.query] == []
    # The minimum, the team filter's proof and a request per team, the sample's details.
    assert sum(sim.request_counts.values()) == 8 + 7 + 20


def test_a_server_that_ignores_the_role_filter_gives_roles_from_an_exact_role_list(
    sim, make_client
):
    sim.config.ignore_role_filter = True

    with make_client(page_size=10) as client:
        snapshot = fetch_snapshot(client)

    assert (snapshot.agent_roles, snapshot.agent_teams) == expected_memberships(sim)
    assert snapshot.memberships_from == "roles role_list, teams agent rows"
    assert snapshot.memberships_why == (
        "the list rows carry no roles; the role filter is ignored (role=6, a role id no role "
        "has, answered agents)"
    )
    # Nothing was read per role after the proof failed; the sample proved role_list.
    assert [r.query["role"] for r in sim.request_log if "role" in r.query] == ["6"]
    assert snapshot.detail_reads == 20 and snapshot.read is None


def test_a_role_list_that_disagrees_with_the_details_is_refused_for_the_details(sim, make_client):
    sim.config.ignore_role_filter, sim.config.role_list = True, "first"

    with make_client(page_size=10) as client:
        snapshot = fetch_snapshot(client)

    assert (snapshot.agent_roles, snapshot.agent_teams) == expected_memberships(sim)
    assert snapshot.memberships_from == "agent details (40 of 40 agents read this sync)"
    assert snapshot.memberships_why.endswith(
        "role_list disagrees with the details of 12 of 20 agents read (agent 2: "
        "[Administrator] against its detail's [Administrator, Agent, Change Manager])"
    )
    # Within the default allowance (378), every agent's detail, each once.
    assert sim.request_counts[("GET", "/api/agent/<id>")] == snapshot.detail_reads == 40
    assert snapshot.read == frozenset(range(2, 42))


class ExtraMember:
    """A WSGI wrapper that adds agent `extra` to the answer for `role=<role>`: a server whose
    filter and role_list disagree."""

    def __init__(self, sim: Simulator, role: str, extra: int) -> None:
        self.sim, self.role, self.extra = sim, role, extra

    def __call__(self, environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if environ["PATH_INFO"] != "/api/agent" or query.get("role") != [self.role]:
            return self.sim.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)

        rows = json.loads(b"".join(self.sim.app(environ, capture)))
        rows.append({**rows[0], "id": self.extra, "role_list": ""} if rows else {})
        body = json.dumps(rows).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]


def test_members_per_role_that_their_role_list_does_not_name_are_settled_by_details(sim):
    # Liam Smith (10) holds Agent and Read Only; the server also lists him under Change Manager.
    # His role_list says otherwise, so his detail is read: the role filter is wrong.
    with halo_client(sim, ExtraMember(sim, "3", 10)) as client:
        snapshot = fetch_snapshot(client)

    assert (snapshot.agent_roles, snapshot.agent_teams) == expected_memberships(sim)
    assert snapshot.memberships_from == "roles role_list, teams agent rows"
    assert snapshot.memberships_why == (
        "the list rows carry no roles; the role filter disagrees with the details of 1 of 21 "
        "agents read (agent 10: [Agent, Change Manager, Read Only] against its detail's "
        "[Agent, Read Only])"
    )
    assert snapshot.detail_reads == 21


def test_role_list_is_not_read_when_a_role_name_holds_a_comma(sim):
    night = sim.add_role("Night, Weekend")
    sim.set_agent_roles(9, [night])
    sim.config.ignore_role_filter = True

    with halo_client(sim) as client:
        snapshot = fetch_snapshot(client)

    # Without a role_list that can be split for sure, only the details are left.
    assert (snapshot.agent_roles, snapshot.agent_teams) == expected_memberships(sim)
    assert [r for a, r in snapshot.agent_roles if a == 9] == [night]
    assert snapshot.memberships_from == "agent details (40 of 40 agents read this sync)"
    assert snapshot.memberships_why.endswith(
        "role_list cannot be split for sure (role name 'Night, Weekend')"
    )
    assert snapshot.read == frozenset(agent.id for agent in snapshot.agents)


class DetailsWithoutRoles:
    """A WSGI wrapper whose agent details leave out `roles` and `teams`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def __call__(self, environ, start_response):
        if not re.fullmatch(r"/api/agent/\d+", environ["PATH_INFO"]):
            return self.sim.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)

        detail = json.loads(b"".join(self.sim.app(environ, capture)))
        body = json.dumps({k: v for k, v in detail.items() if k not in ("roles", "teams")})
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body.encode()]


def test_details_without_memberships_prove_nothing_and_are_never_read_for_them(sim):
    with halo_client(sim, DetailsWithoutRoles(sim)) as client:
        snapshot = fetch_snapshot(client)

    # The role filter cannot be disproved: it is taken, as before there were proofs.
    assert (snapshot.agent_roles, snapshot.agent_teams) == expected_memberships(sim)
    assert snapshot.memberships_from == "roles per role, teams agent rows"

    sim.config.ignore_role_filter, sim.config.omit_memberships = True, True
    with (
        halo_client(sim, DetailsWithoutRoles(sim)) as client,
        pytest.raises(HaloMalformedResponseError) as error,
    ):
        fetch_snapshot(client)

    assert str(error.value).startswith(
        "GET /api/agent/3: the agent's detail carries no roles or teams, and no cheaper source "
        "could be trusted (the list rows carry no roles; the role filter is ignored"
    )


@pytest.mark.parametrize("paging", ["results", "agents", "bare", "legacy"])
@pytest.mark.parametrize("float_ids", ["none", "some", "all"])
def test_every_envelope_and_id_rendering_gives_the_same_snapshot(
    sim, make_client, paging, float_ids
):
    with make_client(page_size=10) as client:
        reference = fetch_snapshot(client)
    sim.config.agent_paging, sim.config.float_ids = paging, float_ids

    with make_client(page_size=10) as client:
        snapshot = fetch_snapshot(client)

    assert snapshot == reference


def test_a_list_under_an_unknown_key_is_read_when_it_is_the_only_list(sim, make_client):
    rows = [sim.get_agent(2)]
    sim.inject(Fault(path="/api/agent", status=200, content_type="application/json",
                     body=json.dumps({"page_no": 1, "data": rows, "note": "x"})))  # fmt: skip
    with make_client() as client:
        assert [agent.id for agent in client.list_agents()] == [2]


def test_an_envelope_without_one_list_names_the_keys_it_has(sim, make_client):
    sim.inject(Fault(path="/api/agent", status=200, content_type="application/json",
                     body=json.dumps({"page_no": 1, "rows": [], "links": []})))  # fmt: skip
    with make_client() as client, pytest.raises(HaloMalformedResponseError) as error:
        client.list_agents()

    assert str(error.value) == (
        "GET /api/agent: expected the list under 'results' or 'agents' (or the only "
        "list-valued key), got keys ['links', 'page_no', 'rows']"
    )


@pytest.mark.parametrize(
    ("value", "problem"), [(18.5, "a fraction"), ("18", "str"), (True, "bool"), (None, "NoneType")]
)
def test_an_id_that_is_not_an_integer_is_named(sim, make_client, value, problem):
    row = {**sim.get_agent(2), "teams": [{"team_id": value}]}
    sim.inject(Fault(path="/api/agent", status=200, content_type="application/json",
                     body=json.dumps({"record_count": 1, "results": [row]})))  # fmt: skip
    with make_client() as client, pytest.raises(HaloMalformedResponseError) as error:
        client.list_agents()

    assert str(error.value).startswith(
        "GET /api/agent page 1: row 0 (id 2) field 'teams.0.team_id': Value error, expected an integer "
        f"id, got {problem}"
    )
