"""The end of the agent list is proven before it is believed, through the real client against the
simulator, in-process and over loopback. Without record_count, a page that would end the list
(empty, short, or the last page resent past the end) is read again and believed when two reads
agree; one flaky answer must not become agents missing from a sync, and so false removals."""

from __future__ import annotations

import json

import httpx
import pytest

from halo_pipeline.halo import HaloMalformedResponseError
from halo_pipeline.simulator import Fault, Simulator
from halo_pipeline.sync import sync_halo
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import build_access, query

# The default simulator dataset: 40 real agents, ids 2..41 (id 1 is the Unassigned placeholder).
ALL_AGENT_IDS = list(range(2, 42))


@pytest.fixture(autouse=True)
def _no_record_count(sim: Simulator) -> None:
    sim.config.include_record_count = False


def agent_pages_requested(sim: Simulator) -> list[int]:
    """The page numbers of the agent list asked for, in the order asked (pages are read one
    after another without a total)."""
    return [
        int(r.query["page_no"])
        for r in sim.request_log
        if r.path == "/api/agent" and "page_no" in r.query and "role" not in r.query
    ]


def cut_once(page_no: int, rows: int) -> Fault:
    """Page `page_no` of the agent list answered with only its first `rows` rows, once."""
    return Fault(path="/api/agent", method="GET", params={"page_no": str(page_no)}, rows=rows)


@pytest.mark.parametrize(
    ("page_size", "cut", "pages"),
    [
        # 4 full pages of 10. The last answers empty once: read again it is full, so the list
        # goes on; the empty page 5 is read twice alike, and page 6 has nothing new.
        (10, cut_once(4, 0), [1, 2, 3, 4, 4, 5, 5, 6]),
        # ... or answers 3 of its 10 rows once.
        (10, cut_once(4, 3), [1, 2, 3, 4, 4, 5, 5, 6]),
        # 5 full pages of 7 and a last of 5, answered empty (or with 2 rows) once: the second
        # read has its 5 rows, still short, so a third must agree before the list ends.
        (7, cut_once(6, 0), [1, 2, 3, 4, 5, 6, 6, 6, 7]),
        (7, cut_once(6, 2), [1, 2, 3, 4, 5, 6, 6, 6, 7]),
    ],
    ids=["empty-full-last-page", "short-full-last-page", "empty-short-last-page", "shorter"],
)
def test_a_last_page_answered_empty_or_short_once_is_read_again(
    sim, make_client, page_size, cut, pages
):
    sim.inject(cut)

    with make_client(page_size=page_size) as client:
        agents = client.list_agents()

    assert [agent.id for agent in agents] == ALL_AGENT_IDS
    assert agent_pages_requested(sim) == pages


@pytest.mark.parametrize(
    ("page_size", "pages"),
    [
        # Page 5 is page 4 again (same ids, same order), on both reads: the list ends there.
        (10, [1, 2, 3, 4, 5, 5]),
        # A short last page ends the list as always; the page after it (the same rows again)
        # has nothing new.
        (7, [1, 2, 3, 4, 5, 6, 6, 7]),
    ],
)
def test_pages_past_the_end_that_resend_the_last_page_end_the_list(
    sim, make_client, page_size, pages
):
    sim.config.past_last_page = "last"

    with make_client(page_size=page_size) as client:
        agents = client.list_agents()

    assert [agent.id for agent in agents] == ALL_AGENT_IDS
    assert agent_pages_requested(sim) == pages


def test_the_last_page_resent_and_then_answered_empty_once_still_ends_in_every_agent(
    sim, make_client
):
    sim.config.past_last_page = "last"
    sim.inject(cut_once(4, 0))

    with make_client(page_size=10) as client:
        agents = client.list_agents()

    assert [agent.id for agent in agents] == ALL_AGENT_IDS
    assert agent_pages_requested(sim) == [1, 2, 3, 4, 4, 5, 5]


@pytest.mark.parametrize("paging", ["results", "bare"])
def test_a_page_repeating_an_earlier_page_than_the_one_before_is_an_error(sim, make_client, paging):
    sim.config.agent_paging = paging
    page_2 = [sim.get_agent(agent_id) for agent_id in range(12, 22)]
    body = page_2 if paging == "bare" else {"page_no": 4, "page_size": 10, "results": page_2}
    sim.inject(
        Fault(path="/api/agent", method="GET", status=200, body=json.dumps(body), times=10,
              content_type="application/json", params={"page_no": "4"})
    )  # fmt: skip

    with make_client(page_size=10) as client, pytest.raises(HaloMalformedResponseError) as error:
        client.list_agents()

    assert str(error.value) == (
        "GET /api/agent: page 4 repeats rows already received (the server keeps answering the "
        "same page); stopped after 30 rows rather than keep a partial list."
    )
    assert agent_pages_requested(sim) == [1, 2, 3, 4]


def test_a_sync_with_a_flaky_empty_last_page_records_no_removal(sim, make_client, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with make_client(page_size=10) as client:
        sync_halo(client, lambda: connect(path))
    build_access(path)
    sim.reset_counts()
    sim.inject(cut_once(4, 0))

    with make_client(page_size=10) as client:
        result = sync_halo(client, lambda: connect(path))
    build_access(path)

    assert result.counts["agents"] == 40
    assert agent_pages_requested(sim) == [1, 2, 3, 4, 4, 5, 5, 6]
    assert query(path, "SELECT agent_id FROM halo.agents ORDER BY 1") == [
        (agent_id,) for agent_id in ALL_AGENT_IDS
    ]
    assert query(path, "SELECT * FROM access.grant_changes WHERE change = 'removed'") == []
    assert query(path, "SELECT sync_id, status FROM halo.sync_runs ORDER BY 1") == [
        (1, "succeeded"), (2, "succeeded"),
    ]  # fmt: skip


# The simulator's own answers for the switch and the fault, over HTTP.


@pytest.fixture
def api(sim: Simulator) -> httpx.Client:
    client = httpx.Client(transport=sim.transport(), base_url="http://halo.test")
    token = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": sim.config.client_id,
              "client_secret": sim.config.client_secret, "scope": "all"},
    ).json()["access_token"]  # fmt: skip
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def page(api: httpx.Client, page_no: int) -> dict:
    params = {"pageinate": "true", "page_size": "10", "page_no": str(page_no)}
    return api.get("/api/agent", params=params).json()


def ids(rows: list[dict]) -> list[int]:
    return [row["id"] for row in rows]


def test_the_simulator_answers_past_the_end_empty_by_default_or_with_the_last_page(sim, api):
    listed = ids(api.get("/api/agent").json())  # unpaged: the whole default listing
    last = listed[(len(listed) - 1) // 10 * 10 :]
    last_page_no = (len(listed) - 1) // 10 + 1
    assert sim.config.past_last_page == "empty"
    assert ids(page(api, last_page_no)["results"]) == last
    assert ids(page(api, last_page_no + 1)["results"]) == []

    sim.config.past_last_page = "last"

    past = page(api, last_page_no + 5)
    assert (past["page_no"], ids(past["results"])) == (last_page_no + 5, last)
    assert ids(page(api, last_page_no)["results"]) == last


def test_a_fault_can_cut_the_list_of_a_real_answer_once(sim, api):
    whole = page(api, 2)
    sim.inject(cut_once(2, 3))

    cut = page(api, 2)

    assert cut == {**whole, "results": whole["results"][:3]}
    assert page(api, 2) == whole
