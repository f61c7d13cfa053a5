"""provisioning_job and its sensor in Dagster: the sensor's decisions, the CLI, and a SIGKILL."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs.provisioning import ProvisioningResource
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.simulator import Simulator, generate_dataset
from halo_pipeline.simulator.server import serve_in_background
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import (
    MANUAL,
    grant,
    hold_write_lock,
    provision,
    query,
    set_ticket_status,
    sync,
    ticket_tag,
)
from halo_pipeline_tests.processes import (
    KillOn,
    dagster_env,
    execute,
    instance_at,
    kill,
    next_run,
    running,
)

ROLE = {role.name: role.id for role in generate_dataset().roles}


def evaluate(path: Path, url: str, sim: Simulator, **provisioning: str):
    sensor = build_definitions().resolve_sensor_def("provisioning_request_sensor")
    resources = {
        "warehouse": DuckDBWarehouse(database=str(path)),
        "halo": HaloResource(
            base_url=url, client_id=sim.config.client_id, client_secret=sim.config.client_secret
        ),
        "provisioning": ProvisioningResource(**provisioning),
    }
    with dg.build_sensor_context(resources=resources) as context:
        return sensor(context)


@pytest.fixture
def url(sim: Simulator):
    with sim.serve() as url:
        yield url


def test_sensor_starts_a_run_for_pending_requests_once(sim, path, url):
    assert evaluate(path, url, sim) == dg.SkipReason("No provisioning request is waiting.")
    grant(path, "9", role="Read Only")
    grant(path, "10", team="1")

    first = evaluate(path, url, sim)
    second = evaluate(path, url, sim)

    [run] = first.run_requests
    assert run.run_key == second.run_requests[0].run_key
    assert run.run_key.startswith("requests-")
    assert run.tags == {"requests": "1,2"}
    assert (
        build_definitions().resolve_sensor_def("provisioning_request_sensor").job_name
        == "provisioning_job"
    )

    provision(sim, path, provisioning=True)

    assert evaluate(path, url, sim) == dg.SkipReason("No provisioning request is waiting.")
    grant(path, "9", team="1")
    assert evaluate(path, url, sim).run_requests[0].run_key != run.run_key


def test_sensor_skips_while_the_warehouse_is_written(sim, path, url):
    grant(path, "9", role="Read Only")
    holder = hold_write_lock(path, 10)
    try:
        result = evaluate(path, url, sim)
    finally:
        holder.kill()
        holder.wait()

    assert result == dg.SkipReason("The warehouse is being written; looking again next tick.")


def test_sensor_without_a_warehouse_says_so(sim, tmp_path, url):
    result = evaluate(tmp_path / "none.duckdb", url, sim)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("No warehouse at ")


def test_sensor_polls_manual_tickets_and_waits_for_the_sync_to_confirm(sim, path, url):
    request = grant(path, "9", team="4")
    manual = {"provisioning": "true", "manual_entitlements": MANUAL}
    provision(sim, path, provisioning=True, manual_entitlements=frozenset({MANUAL}))

    assert evaluate(path, url, sim, **manual) == dg.SkipReason(
        "No provisioning request is waiting."
    )
    set_ticket_status(sim, sim.tickets[0]["id"], 8)
    assert len(evaluate(path, url, sim, **manual).run_requests) == 1

    provision(sim, path, provisioning=True, manual_entitlements=frozenset({MANUAL}))
    assert query(
        path, "SELECT status FROM provisioning.requests WHERE request_id = ?", [request]
    ) == [("done",)]
    assert evaluate(path, url, sim, **manual) == dg.SkipReason(
        "No provisioning request is waiting."
    )
    sync(sim, path)
    assert len(evaluate(path, url, sim, **manual).run_requests) == 1


EXECUTE = execute("provisioning_job")


def test_dagster_cli_runs_the_provisioning_job(sim, halo_env, path, tmp_path):
    request = grant(path, "9", role="Read Only")
    env = dagster_env(halo_env, tmp_path, HALO_PROVISIONING="true", HALO_TICKETING="true")

    completed = subprocess.run(EXECUTE, env=env, capture_output=True, text=True, timeout=180)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stderr
    assert query(
        path,
        "SELECT status, ticket_closed FROM provisioning.requests WHERE request_id = ?",
        [request],
    ) == [("applied", True)]
    assert [role["name"] for role in sim.get_agent(9)["roles"]] == ["Read Only"]
    assert halo_env["HALO_CLIENT_SECRET"] not in completed.stdout + completed.stderr
    # The change reaches the warehouse through halo_sync_job in targeted mode: the same assets
    # and checks as every sync, as a run of its own, with nobody but this command running.
    assert query(path, "SELECT kind, status FROM halo.sync_runs ORDER BY sync_id") == [
        ("full", "succeeded"), ("targeted", "succeeded"),
    ]  # fmt: skip
    assert query(path, "SELECT count(*) FROM access.grants WHERE grant_id = ?", [f"role:{ROLE['Read Only']}:assigned:agent:9"]) == [(1,)]  # fmt: skip
    with instance_at(env) as instance:
        runs = {r.dagster_run.job_name: r.dagster_run for r in instance.get_run_records()}
        assert set(runs) == {"provisioning_job", "halo_sync_job"}
        refresh = runs["halo_sync_job"]
        assert refresh.status == dg.DagsterRunStatus.SUCCESS
        assert refresh.tags["halo/after_provisioning_run"] == runs["provisioning_job"].run_id
        for key in (["halo", "agent_roles"], ["access", "grants"]):
            event = instance.get_latest_materialization_event(dg.AssetKey(key))
            assert event.run_id == refresh.run_id
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(["access", "grants"]), "column_tests")]
        )
        assert [c.run_id for c in checks.values()] == [refresh.run_id]
        requests = instance.get_latest_materialization_event(
            dg.AssetKey(["provisioning", "requests"])
        )
        assert requests.run_id == runs["provisioning_job"].run_id


@pytest.mark.slow
@pytest.mark.parametrize(("kill_path", "nth"), [("/api/agent", 2), ("/api/tickets", 3)])
def test_killed_mid_run_then_rerun_applies_each_request_once_with_one_ticket(
    sim, path, halo_env, tmp_path, kill_path, nth, monkeypatch
):
    requests = [
        grant(path, "9", role="Read Only"),
        grant(path, "10", role="Administrator"),
        grant(path, "10", team="2"),
        grant(path, "2", role="Agent", action="revoke"),
    ]
    killer = KillOn(sim.app, "POST", kill_path, nth, lands=True)
    with serve_in_background(killer, "127.0.0.1", 0) as url:
        env = dagster_env(
            {**halo_env, "HALO_BASE_URL": url},
            tmp_path,
            HALO_PROVISIONING="true",
            HALO_TICKETING="true",
        )
        log = tmp_path / "victim.log"
        with (
            log.open("w") as out,
            running(EXECUTE, env=env, stdout=out, stderr=subprocess.STDOUT) as victim,
        ):
            killer.kill = lambda: kill(victim.pid)
            assert victim.wait(timeout=180) == -signal.SIGKILL, log.read_text()[-5000:]
        # Nobody acts between the two: the rerun marks the dead run failed and goes on.
        assert next_run("provisioning_job", env, monkeypatch).success

    assert query(
        path, "SELECT request_id, status, ticket_closed FROM provisioning.requests ORDER BY 1"
    ) == [(r, "applied", True) for r in requests]
    # One write per agent, however the run was cut: agents 2, 9 and 10.
    assert sim.request_counts[("POST", "/api/agent")] == 3
    per_request = [
        sum(t["summary"].startswith(ticket_tag(path, r)) for t in sim.tickets) for r in requests
    ]
    assert per_request == [1, 1, 1, 1]
    assert all(t["status_id"] == 9 for t in sim.tickets)
    assert [role["name"] for role in sim.get_agent(9)["roles"]] == ["Read Only"]
    assert [role["name"] for role in sim.get_agent(2)["roles"]] == [
        "Administrator",
        "Change Manager",
    ]
    assert [team["team_id"] for team in sim.get_agent(10)["teams"]] == [2]
    with connect(path, read_only=True) as con:
        trail = con.execute(
            "SELECT request_id, list(to_status ORDER BY event_id) FROM provisioning.request_events GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert all(statuses[0] == "pending" and statuses[-1] == "applied" for _, statuses in trail)


def test_sensor_sends_an_unreadable_manual_ticket_to_a_run_instead_of_skipping(sim, path, url):
    request = grant(path, "9", team="4")
    provision(sim, path, provisioning=True, manual_entitlements=frozenset({MANUAL}))
    with connect(path) as con:
        con.execute(
            "UPDATE provisioning.requests SET ticket_id = 99999 WHERE request_id = ?", [request]
        )
    grant(path, "10", team="1")

    result = evaluate(path, url, sim, provisioning="true", manual_entitlements=MANUAL)

    assert result.run_requests[0].tags == {"requests": f"{request},{request + 1}"}


def test_after_a_failed_run_the_sensor_waits_then_starts_a_new_run(sim, path, url):
    from halo_pipeline.requests.queue import record_failed_run

    grant(path, "9", role="Read Only")
    first = evaluate(path, url, sim).run_requests[0].run_key
    with connect(path) as con:
        record_failed_run(con, run_id="run-1", error="HaloITSM could not be reached")

    assert evaluate(path, url, sim) == dg.SkipReason("No provisioning request is waiting.")
    with connect(path) as con:  # a minute later
        con.execute("UPDATE provisioning.requests SET updated_at = updated_at - INTERVAL 61 SECOND")
    again = evaluate(path, url, sim).run_requests[0].run_key

    assert again != first
    assert query(path, "SELECT failed_attempts FROM provisioning.requests") == [(1,)]


def test_a_request_fails_for_good_after_eight_failed_runs(path):
    from halo_pipeline.requests.queue import record_failed_run

    request = grant(path, "9", role="Read Only")
    for attempt in range(8):
        with connect(path) as con:
            record_failed_run(con, run_id=f"run-{attempt}", error="HaloITSM could not be reached")

    assert query(
        path,
        "SELECT status, failed_attempts, error FROM provisioning.requests WHERE request_id = ?",
        [request],
    ) == [
        (
            "failed",
            8,
            "8 attempts failed, the last: provisioning run run-7 failed: HaloITSM could not be reached.",
        )
    ]
