"""The agent list in every paging dialect of halo_api.md, in-process and over loopback."""

from __future__ import annotations

import pytest

from halo_pipeline.halo import HaloMalformedResponseError, fetch_snapshot
from halo_pipeline.simulator import Simulator

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
        # No record_count: read until a page comes back empty.
        ({"include_record_count": False}, 10, [1, 2, 3, 4, 5]),
        # Paging honoured but each page a bare array.
        ({"agent_paging": "bare"}, 10, [1, 2, 3, 4, 5]),
        # The server caps pages at 7 rows though 10 were asked for.
        ({"max_page_size": 7}, 10, [1, 2, 3, 4, 5, 6]),
        ({"max_page_size": 7, "include_record_count": False}, 10, [1, 2, 3, 4, 5, 6]),
        ({"max_page_size": 7, "agent_paging": "bare"}, 10, [1, 2, 3, 4, 5, 6]),
        # Older versions ignore paging and send everything as a bare array.
        ({"agent_paging": "legacy"}, 10, [1]),
        # ... which, when it is exactly one page long, only page 2 repeating tells apart.
        ({"agent_paging": "legacy"}, 40, [1, 2]),
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
        "includeroles": "true",
        "include_membership_info": "true",
        "pageinate": "true",
        "page_size": "10",
        "page_no": "1",
    }


@pytest.mark.parametrize(
    ("switches", "pages_requested"),
    [
        # record_count known: pages 1-4 concurrently, 3 and 4 repeat page 2, page 5 again.
        ({}, [1, 2, 3, 4, 5]),
        ({"include_record_count": False}, [1, 2, 3]),
        ({"agent_paging": "bare"}, [1, 2, 3]),
    ],
)
def test_a_server_repeating_a_page_stops_with_an_error(sim, make_client, switches, pages_requested):
    sim.config.stuck_after_page = 2
    for name, value in switches.items():
        setattr(sim.config, name, value)

    with make_client(page_size=10) as client, pytest.raises(HaloMalformedResponseError) as error:
        client.list_agents()

    assert f"page {pages_requested[-1]} repeats rows already received" in str(error.value)
    assert "stopped after 20 rows" in str(error.value)
    assert sorted(agent_pages_requested(sim)) == pages_requested


def test_memberships_come_from_the_agent_rows(sim, make_client):
    with make_client(page_size=10) as client:
        snapshot = fetch_snapshot(client)

    expected_roles = sorted(
        (agent_id, role["id"])
        for agent_id in ALL_AGENT_IDS
        for role in sim.get_agent(agent_id)["roles"]
    )
    expected_teams = sorted(
        (agent_id, team["team_id"])
        for agent_id in ALL_AGENT_IDS
        for team in sim.get_agent(agent_id)["teams"]
    )
    assert snapshot.agent_roles == expected_roles
    assert snapshot.agent_teams == expected_teams
    assert snapshot.memberships_from == "agent rows"
    # Showcase agents (see simulator/dataset.py): Zoë Müller holds 3 roles and 2 teams,
    # Seán O'Brien is only in the inactive team 5, Aoife D'Angelo holds nothing.
    assert [t for a, t in snapshot.agent_teams if a == 2] == [1, 3]
    assert [t for a, t in snapshot.agent_teams if a == 3] == [5]
    assert [r for a, r in snapshot.agent_roles if a == 7] == []
    assert len([r for a, r in snapshot.agent_roles if a == 2]) == 3
    # 1 token + 4 agent pages + roles + teams + ticket types: the minimum.
    assert sum(sim.request_counts.values()) == 1 + 4 + 3


def test_rows_without_memberships_fetch_them_per_role_and_per_team(sim, make_client):
    with make_client(page_size=10) as client:
        from_rows = fetch_snapshot(client)
    sim.config.omit_memberships = True
    sim.reset_counts()

    with make_client(page_size=10) as client:
        per_item = fetch_snapshot(client)

    assert per_item.agent_roles == from_rows.agent_roles
    assert per_item.agent_teams == from_rows.agent_teams
    assert per_item.memberships_from == "per roles and per teams"
    role_queries = sorted(r.query["role"] for r in sim.request_log if "role" in r.query)
    team_queries = sorted(int(r.query["team_id"]) for r in sim.request_log if "team_id" in r.query)
    assert role_queries == ["1", "2", "3", "4", "5"]
    assert team_queries == [1, 2, 3, 4, 5, 6]
    # The minimum (8) plus one request per role (5) and per team (6), never one per agent.
    assert sum(sim.request_counts.values()) == 8 + 5 + 6
    assert sim.request_counts[("GET", "/api/agent/<id>")] == 0


def test_rows_with_roles_but_without_teams_fetch_only_the_teams(sim, make_client):
    with make_client(page_size=10) as client:
        from_rows = fetch_snapshot(client)
    sim.config.omit_teams = True
    sim.reset_counts()

    with make_client(page_size=10) as client:
        mixed = fetch_snapshot(client)

    assert (mixed.agent_roles, mixed.agent_teams) == (from_rows.agent_roles, from_rows.agent_teams)
    assert mixed.memberships_from == "per teams"
    assert [r for r in sim.request_log if "role" in r.query] == []
    assert sum(sim.request_counts.values()) == 8 + 6  # the minimum and one request per team
