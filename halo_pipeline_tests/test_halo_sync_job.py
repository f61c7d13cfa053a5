"""halo_sync_job end to end: simulator over loopback, a real DuckDB file, Dagster's executor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from halo_pipeline.simulator import Fault, Simulator, SimulatorConfig, generate_dataset
from halo_pipeline.sync import SyncFailedError, SyncResult, sync_halo
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import (
    PROJECT,
    build_access,
    expected_memberships,
    md_rows,
    query,
    sync,
)

HALO_ASSETS = [
    "agents", "roles", "teams", "agent_roles", "agent_teams", "ticket_types",
    "agent_role_history", "agent_team_history", "sync_runs",
]  # fmt: skip


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def everything_logged(instance: dg.DagsterInstance, run_id: str) -> str:
    """The run's whole event log and stored config, serialised."""
    run = instance.get_run_by_id(run_id)
    return dg.serialize_value(instance.all_logs(run_id)) + dg.serialize_value(run)


def test_sync_writes_exact_tables(warehouse_path, sim):
    sync(sim, warehouse_path)

    assert query(
        warehouse_path,
        "SELECT agent_id, name, email, is_disabled, is_api_agent, default_team "
        "FROM halo.agents WHERE agent_id <= 10 ORDER BY agent_id",
    ) == [
        (2, "Zoë Müller", "agent2@example.com", False, False, "1st Line Support"),
        (3, "Seán O'Brien", "agent3@example.com", False, False, "Legacy Apps (retired)"),
        (4, 'Robert "Bobby" Tables', "agent4@example.com", False, False, "2nd Line Support"),
        (5, "Дмитрий Иванов", "agent5@example.com", False, False, "Закупки"),
        (6, "José Ñúñez", "agent6@example.com", True, False, "1st Line Support"),
        (7, "Aoife D'Angelo", "agent7@example.com", True, False, None),
        (8, "API Integration 8", "agent8@example.com", False, True, None),
        (9, "Priya Patel", "agent9@example.com", False, False, "Service Desk – Café"),
        (10, "Liam Smith", "agent10@example.com", False, False, None),
    ]  # fmt: skip
    # Halo's list rows carry neither: unknown, so NULL, never a made-up false.
    assert query(
        warehouse_path, "SELECT count(*), count(is_admin), count(department) FROM halo.agents"
    ) == [(40, 0, 0)]
    assert query(
        warehouse_path, "SELECT count(*), min(agent_id), max(agent_id) FROM halo.agents"
    ) == [(40, 2, 41)]
    assert query(
        warehouse_path, "SELECT * EXCLUDE (sync_id, synced_at) FROM halo.teams ORDER BY 1"
    ) == [
        (1, "1st Line Support", 1, "IT Operations", False),
        (2, "2nd Line Support", 1, "IT Operations", False),
        (3, "Service Desk – Café", 1, "IT Operations", False),
        (4, 'Security "Red" Team', 2, "Security", False),
        (5, "Legacy Apps (retired)", 1, "IT Operations", True),
        (6, "Закупки", 3, "Procurement", False),
    ]
    assert query(
        warehouse_path, "SELECT role_int_id, name, is_integration FROM halo.roles ORDER BY 1"
    ) == [
        (1, "Administrator", False),
        (2, "Agent", False),
        (3, "Change Manager", False),
        (4, "Read Only", False),
        (5, "Integration", True),
    ]
    assert query(warehouse_path, "SELECT role_id FROM halo.roles ORDER BY role_int_id") == [
        (role.id,) for role in generate_dataset().roles
    ]
    memberships = (
        "SELECT a.agent_id, list(r.name ORDER BY r.role_int_id) FROM halo.agent_roles a "
        "JOIN halo.roles r USING (role_id) WHERE a.agent_id <= 10 GROUP BY 1 ORDER BY 1"
    )
    assert query(warehouse_path, memberships) == [
        (2, ["Administrator", "Agent", "Change Manager"]),
        (3, ["Agent"]),
        (4, ["Agent", "Read Only"]),
        (5, ["Agent"]),
        (6, ["Agent", "Change Manager"]),  # disabled, still holding roles
        (8, ["Integration"]),
        (10, ["Agent", "Read Only"]),
    ]
    # Agent 4's row for team 1 has in_section false: not a membership.
    assert query(
        warehouse_path,
        "SELECT agent_id, list(team_id ORDER BY team_id) FROM halo.agent_teams "
        "WHERE agent_id <= 10 GROUP BY 1 ORDER BY 1",
    ) == [(2, [1, 3]), (3, [5]), (4, [2]), (5, [2, 6]), (6, [1]), (9, [3])]
    # Each membership keeps its flags: Zoë Müller manages team 1.
    assert query(
        warehouse_path,
        "SELECT * EXCLUDE (sync_id, synced_at) FROM halo.agent_teams WHERE agent_id = 2 ORDER BY team_id",
    ) == [
        (2, 1, True, True, True, False, True, True, False),
        (2, 3, False, True, False, False, False, False, False),
    ]
    assert query(
        warehouse_path,
        "SELECT ticket_type_id, name, has_mandatory_fields FROM halo.ticket_types ORDER BY 1",
    ) == [
        (1, "Incident", False),
        (3, "Service Request", False),
        (25, "Access Request", True),
    ]
    # 1 token + 1 agent page + roles, teams, ticket types + the role filter's proof + 5 roles
    # + the details of the 20 agents that proved them.
    assert query(
        warehouse_path,
        "SELECT sync_id, status, error, api_requests, memberships_from, memberships_why, "
        "detail_reads, agents FROM halo.sync_runs",
    ) == [(1, "loaded", None, 31, "roles per role, teams agent rows",
           "the list rows carry no roles", 20, 40)]  # fmt: skip
    build_access(warehouse_path)
    assert query(warehouse_path, "SELECT status FROM halo.sync_runs") == [("succeeded",)]
    assert query(
        warehouse_path,
        "SELECT DISTINCT sync_id FROM halo.agent_roles UNION SELECT DISTINCT "
        "sync_id FROM halo.teams",
    ) == [(1,)]


def test_sync_metadata_and_checks(halo_env, run_job, warehouse_path):
    result = run_job("halo_sync_job")

    metadata = materializations(result)
    assert sorted(key for key in metadata if key.startswith("halo/")) == sorted(
        f"halo/{table}" for table in HALO_ASSETS
    )
    counts = dict(query(warehouse_path, "SELECT 'agent_roles', count(*) FROM halo.agent_roles"))
    assert metadata["halo/agents"]["dagster/row_count"].value == 40
    assert metadata["halo/teams"]["dagster/row_count"].value == 6
    assert metadata["halo/agent_roles"]["dagster/row_count"].value == counts["agent_roles"]
    assert metadata["halo/sync_runs"]["dagster/row_count"].value == 1
    assert metadata["halo/agents"]["api_requests"].value == 31
    assert metadata["halo/agents"]["source_url"].value == halo_env["HALO_BASE_URL"]
    preview = metadata["halo/agents"]["preview"].value.splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in preview]
    assert cells[0][:3] == ["agent_id", "name", "firstname"]
    assert [row[:2] for row in cells[2:5]] == [
        ["2", "Zoë Müller"],
        ["3", "Seán O'Brien"],
        ["4", 'Robert "Bobby" Tables'],
    ]
    assert len(cells) == 2 + 10
    checks = {c.asset_key.to_user_string(): c for c in result.get_asset_check_evaluations()}
    # A check per table or model with schema.yml tests, each test in its metadata.
    assert sorted(checks) == [
        "access/entitlements", "access/grant_changes", "access/grant_expiries",
        "access/grant_history", "access/grants", "access/policy_violations", "access/resources",
        "halo/agent_role_history", "halo/agent_roles", "halo/agent_team_history",
        "halo/agent_teams", "halo/agents", "halo/roles", "halo/teams", "halo/ticket_types",
        "policy/rules",
    ]  # fmt: skip
    assert [key for key, check in checks.items() if not check.passed] == []
    assert md_rows(checks["halo/agent_teams"].metadata["tests"].value) == [
        ["unique_combination_of_columns_agent_id_team_id", "0", "error"],
        ["relationships_agent_id__agents", "0", "error"],
        ["relationships_team_id__teams", "0", "error"],
    ]


def test_roles_read_longer_ago_than_the_max_age_make_the_agents_check_warn(
    halo_env, run_job, warehouse_path, sim, monkeypatch
):
    sync(sim, warehouse_path)  # every agent's roles read now
    with connect(warehouse_path) as con:
        con.execute("UPDATE halo.agents SET roles_read_at = roles_read_at - INTERVAL 8 DAY "
                    "WHERE agent_id = 2")  # fmt: skip
    targeted = {"ops": {"halo_tables": {"config": {"agent_ids": [9]}}}}  # agent 2 is not read

    def roles_fresh(max_age: str) -> tuple:
        monkeypatch.setenv("HALO_ROLES_MAX_AGE", max_age)
        result = run_job("halo_sync_job", targeted)
        assert result.success  # a warning fails nothing
        [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "roles_fresh"]
        said = {k: v.value for k, v in check.metadata.items() if k != "oldest_roles_read_at"}
        return check.passed, check.severity, said

    assert roles_fresh("7d") == (False, dg.AssetCheckSeverity.WARN, {
        "agents": 40, "roles_never_read": 0, "roles_older_than_max_age": 1,
        "max_age": "7 days, 0:00:00",
    })  # fmt: skip
    assert roles_fresh("9d")[0] is True
    monkeypatch.setenv("HALO_ROLES_MAX_AGE", "a week")
    refused = run_job("halo_sync_job", targeted)
    [failure] = refused.get_step_failure_events()
    assert failure.step_failure_data.error.message == (
        "dagster._core.definitions.events.Failure: HALO_ROLES_MAX_AGE must be valid, got "
        "'a week': 'a week' is not a duration: write a whole number and s, m, h or d, e.g. 8h\n"
    )
    assert query(warehouse_path, "SELECT count(*) FROM halo.sync_runs") == [(3,)]  # none began


def test_rows_that_all_carry_an_empty_role_list_count_as_carrying_none(tmp_path):
    """A tenant can send `roles: []` in every row and name roles only in each agent's detail:
    taken at its word, nobody would hold a role."""
    plain, blank = tmp_path / "plain.duckdb", tmp_path / "blank.duckdb"
    sync(Simulator(), plain)
    result = sync(Simulator(config=SimulatorConfig(empty_row_roles=True)), blank)

    rows = "SELECT agent_id, role_id FROM halo.agent_roles ORDER BY ALL"
    assert query(blank, rows) == query(plain, rows)
    assert len(query(blank, rows)) > 40  # the roles of 40 agents
    assert result.memberships_from == "roles per role, teams agent rows"


def test_failed_sync_keeps_the_last_good_tables(halo_env, run_job, warehouse_path, sim):
    sync(sim, warehouse_path)
    sim.add_agent("New Person", "new@example.com")
    sim.inject(
        Fault(path="/api/team", status=200, body='{"count": 1}', content_type="application/json")
    )

    result = run_job("halo_sync_job")

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert (
        "sync 2 failed: GET /api/team: expected the list under 'teams' (or the only list-valued "
        "key), got keys ['count']" in failure.message
    )
    assert query(warehouse_path, "SELECT count(*), max(sync_id) FROM halo.agents") == [(40, 1)]
    runs = query(warehouse_path, "SELECT sync_id, status, error FROM halo.sync_runs ORDER BY 1")
    assert [(r[0], r[1]) for r in runs] == [(1, "loaded"), (2, "failed")]
    assert runs[1][2] == (
        "GET /api/team: expected the list under 'teams' (or the only list-valued key), got keys "
        "['count']"
    )


def test_html_error_page_fails_the_sync_and_keeps_tables(warehouse_path, sim):
    sync(sim, warehouse_path)
    # A proxy's sign-in page where the API should be (5xx pages are retried first: see
    # test_halo_client_errors.py).
    sim.inject(
        Fault(path="/api/agent", status=200, content_type="text/html",
              body="<html><head><title>Sign in to continue</title></head></html>")
    )  # fmt: skip

    with pytest.raises(SyncFailedError):
        sync(sim, warehouse_path)
    error = query(warehouse_path, "SELECT error FROM halo.sync_runs WHERE sync_id = 2")[0][0]
    assert error.startswith(
        "GET /api/agent answered HTTP 200 with an HTML page titled 'Sign in to continue' instead "
        "of JSON. Check HALO_BASE_URL"
    )
    assert query(warehouse_path, "SELECT count(*), max(sync_id) FROM halo.agents") == [(40, 1)]


def test_wrong_credentials_fail_clearly_and_the_secret_stays_out(
    halo_env, run_job, instance, warehouse_path, monkeypatch, capfd
):
    good = run_job("halo_sync_job")
    secret = "not-the-right-secret-8c1e"
    monkeypatch.setenv("HALO_CLIENT_SECRET", secret)

    bad = run_job("halo_sync_job")

    assert not bad.success
    message = bad.get_step_failure_events()[0].step_failure_data.error.message
    assert "HaloITSM rejected the client credentials (invalid_client)" in message
    assert secret not in everything_logged(instance, bad.run_id)
    assert halo_env["HALO_CLIENT_SECRET"] not in everything_logged(instance, good.run_id)
    warehouse_text = str(query(warehouse_path, "SELECT * FROM halo.sync_runs"))
    assert secret not in warehouse_text and halo_env["HALO_CLIENT_SECRET"] not in warehouse_text
    printed = capfd.readouterr()
    assert "invalid_client" in printed.err  # the runs' console log was captured here
    assert secret not in printed.out + printed.err
    assert halo_env["HALO_CLIENT_SECRET"] not in printed.out + printed.err


def test_large_drop_is_refused_unless_the_run_config_allows_it(
    halo_env, run_job, warehouse_path, sim
):
    sync(sim, warehouse_path)
    for agent_id in range(2, 23):  # 21 of 40 agents gone: 19 left, fewer than half
        sim.delete_agent(agent_id)

    with pytest.raises(SyncFailedError) as refused:
        sync(sim, warehouse_path)

    assert (
        "This sync read 19 agents from HaloITSM, fewer than half of the 40 in the last good "
        in str(refused.value)
    )
    assert "ops: {halo_tables: {config: {allow_large_drop: true}}}" in str(refused.value)
    assert query(warehouse_path, "SELECT count(*) FROM halo.agents") == [(40,)]

    allowed = run_job(
        "halo_sync_job", run_config={"ops": {"halo_tables": {"config": {"allow_large_drop": True}}}}
    )

    assert allowed.success
    assert query(warehouse_path, "SELECT count(*), min(agent_id) FROM halo.agents") == [(19, 23)]
    assert query(warehouse_path, "SELECT sync_id, status FROM halo.sync_runs ORDER BY 1") == [
        (1, "succeeded"),  # loaded by sync(); the job's model rebuild covers it too
        (2, "failed"),
        (3, "succeeded"),
    ]


def test_settings_are_read_when_the_run_starts_and_a_missing_one_is_named(
    halo_env, run_job, monkeypatch, warehouse_path
):
    from halo_pipeline.definitions import build_definitions

    defs = build_definitions()  # built once, as a code location is, with every variable set
    monkeypatch.delenv("HALO_CLIENT_ID")

    result = defs.resolve_job_def("halo_sync_job").execute_in_process(raise_on_error=False)

    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "halo_tables"
    assert failure.step_failure_data.error.message == (
        "dagster._core.definitions.events.Failure: HALO_CLIENT_ID not set: put the HaloITSM "
        "instance and its API application's credentials in the environment or in .env (see "
        ".env.example).\n"
    )
    monkeypatch.setenv("HALO_CLIENT_ID", halo_env["HALO_CLIENT_ID"])
    assert defs.resolve_job_def("halo_sync_job").execute_in_process().success
    assert query(warehouse_path, "SELECT count(*) FROM halo.agents") == [(40,)]


def test_dagster_cli_runs_the_sync(halo_env, warehouse_path, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())

    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "halo_pipeline.definitions",
         "-j", "halo_sync_job"],
        env={**os.environ, **halo_env, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stderr
    assert halo_env["HALO_CLIENT_SECRET"] not in completed.stdout + completed.stderr
    assert query(warehouse_path, "SELECT count(*) FROM halo.agents") == [(40,)]
    assert query(warehouse_path, "SELECT status, api_requests FROM halo.sync_runs") == [
        ("succeeded", 31)
    ]


def test_a_failure_inside_the_write_leaves_tables_and_history_as_they_were(
    sim, warehouse_path, monkeypatch
):
    from halo_pipeline.warehouse import halo_tables

    sync(sim, warehouse_path)
    before = {
        table: query(warehouse_path, f"SELECT * FROM halo.{table} ORDER BY ALL")
        for table in (
            "agents",
            "agent_roles",
            "agent_teams",
            "agent_role_history",
            "agent_team_history",
        )
    }
    sim.set_agent_teams(5, [2])

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(halo_tables, "_finish", fail)  # after every table was replaced
    with pytest.raises(Exception, match="sync 2 failed: RuntimeError: disk full"):
        sync(sim, warehouse_path)

    for table, rows in before.items():
        assert query(warehouse_path, f"SELECT * FROM halo.{table} ORDER BY ALL") == rows
    assert query(warehouse_path, "SELECT sync_id, status, error FROM halo.sync_runs ORDER BY 1") == [
        (1, "loaded", None), (2, "failed", "RuntimeError: disk full"),
    ]  # fmt: skip


def test_a_sync_keeping_exactly_half_the_agents_is_allowed(sim, warehouse_path):
    sync(sim, warehouse_path)
    for agent_id in range(2, 22):  # 20 of 40 gone: exactly half are left
        sim.delete_agent(agent_id)

    sync(sim, warehouse_path)

    assert query(warehouse_path, "SELECT count(*) FROM halo.agents") == [(20,)]


def test_a_server_that_ignores_the_role_filter_is_read_from_role_list_exactly(sim, warehouse_path):
    sync(sim, warehouse_path)
    sim.config.ignore_role_filter = True
    sim.set_agent_roles(9, [generate_dataset().roles[1].id])

    result = sync(sim, warehouse_path)

    assert result.memberships_from == "roles role_list, teams agent rows"
    roles, _ = expected_memberships(sim)
    assert (
        query(warehouse_path, "SELECT agent_id, role_id FROM halo.agent_roles ORDER BY ALL")
        == roles
    )
    assert query(warehouse_path, "SELECT sync_id, status, memberships_why FROM halo.sync_runs ORDER BY 1") == [
        (1, "loaded", "the list rows carry no roles"),
        (2, "loaded", "the list rows carry no roles; the role filter is ignored (role=6, a role "
                      "id no role has, answered agents)"),
    ]  # fmt: skip


@pytest.mark.parametrize("retry_after", [None, "2"])
def test_a_sync_rate_limited_midway_waits_and_stays_exact(sim, warehouse_path, retry_after):
    from halo_pipeline.halo import fetch_snapshot
    from halo_pipeline_tests.helpers import halo_client

    sync(sim, warehouse_path)
    expected = query(
        warehouse_path, "SELECT * EXCLUDE (sync_id, synced_at) FROM halo.agent_roles ORDER BY ALL"
    )
    headers = {"Retry-After": retry_after} if retry_after else {}
    # The third role asked for is refused once, as a busy tenant would.
    sim.inject(
        Fault(path="/api/agent", status=429, body="Rate Limit Reached", headers=headers, after=3)
    )
    waits: list[float] = []
    with halo_client(sim, sleep=waits.append) as client:
        result = sync_halo(client, lambda: connect(warehouse_path))
        reference = fetch_snapshot(client)

    assert (
        query(
            warehouse_path,
            "SELECT * EXCLUDE (sync_id, synced_at) FROM halo.agent_roles ORDER BY ALL",
        )
        == expected
    )
    assert [a for a, _ in reference.agent_roles] == [a for a, *_ in expected]
    assert result.counts["agents"] == 40
    if retry_after:
        assert waits == [2.0]
    else:  # the rolling window: until this sync's first request is 5 minutes old
        assert 295 <= sum(waits) <= 301


HALO_ROWS = {
    table: f"SELECT * EXCLUDE (sync_id, synced_at{when}) FROM halo.{table} ORDER BY ALL"
    for table in ("agents", "roles", "teams", "agent_roles", "agent_teams", "ticket_types")
    for when in [", roles_read_at" if table == "agents" else ""]
}


def _agent_page(page_no: int, body: str, times: int = 1) -> Fault:
    """An answer to one page of the agent list (role-filtered lists fit on page 1)."""
    return Fault(
        path="/api/agent", method="GET", status=200, body=body, times=times,
        content_type="application/json", params={"page_no": str(page_no)},
    )  # fmt: skip


def _paged_sync(make_client, path: Path) -> SyncResult:
    with make_client(page_size=10) as client:
        return sync_halo(client, lambda: connect(path))


@pytest.mark.parametrize(
    ("fault", "pages"),
    [
        # A flaky server: page 3 comes back empty once, as if the list ended there. An answer
        # that would end the list is read again: page 3 is full, so the list goes on; the empty
        # page 5, read twice alike, and page 6 with nothing new then end it.
        (_agent_page(3, '{"page_no": 3, "page_size": 10, "results": []}'), [1, 2, 3, 3, 4, 5, 5, 6]),
        # ... or a page cut short in transit, asked again.
        (_agent_page(2, '{"page_no": 2, "page_size": 10, "results": [{"id": 12, "na'),
         [1, 2, 2, 3, 4, 5, 5, 6]),
    ],
    ids=["empty-page-once", "truncated-page-once"],
)  # fmt: skip
def test_a_page_answered_wrong_once_still_ends_in_an_exact_sync(
    sim, make_client, tmp_path, fault, pages
):
    sim.config.include_record_count = False
    _paged_sync(make_client, tmp_path / "clean.duckdb")
    sim.reset_counts()
    sim.inject(fault)

    result = _paged_sync(make_client, tmp_path / "flaky.duckdb")

    assert result.counts["agents"] == 40
    for table, sql in HALO_ROWS.items():
        assert query(tmp_path / "flaky.duckdb", sql) == query(tmp_path / "clean.duckdb", sql), table
    listing = [r for r in sim.request_log if r.path == "/api/agent" and "role" not in r.query]
    assert [int(r.query["page_no"]) for r in listing] == pages


def test_an_empty_page_before_pages_with_rows_fails_the_sync_and_keeps_the_tables(
    sim, make_client, warehouse_path
):
    sim.config.include_record_count = False
    _paged_sync(make_client, warehouse_path)
    before = {table: query(warehouse_path, sql) for table, sql in HALO_ROWS.items()}
    sim.delete_agent(2)  # a change the failed sync must not half-apply
    sim.inject(_agent_page(3, '{"page_no": 3, "page_size": 10, "results": []}', times=100))

    with pytest.raises(SyncFailedError) as failure:
        _paged_sync(make_client, warehouse_path)

    assert str(failure.value) == (
        "sync 2 failed: GET /api/agent: page 3 answered 0 rows on every read, fewer than a full "
        "page of 10, yet page 4 has more: rows in between would be missing. Stopped rather than "
        "keep a partial list; run the sync again."
    )
    assert {table: query(warehouse_path, sql) for table, sql in HALO_ROWS.items()} == before
    assert query(warehouse_path, "SELECT sync_id, status FROM halo.sync_runs ORDER BY 1") == [
        (1, "loaded"), (2, "failed"),
    ]  # fmt: skip
