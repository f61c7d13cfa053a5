"""`kill -9` at the moments that matter, with real processes: a headless run, a run of the
daemon, a sync between its two writes, provisioning before its refresh. After each, the next
runs complete with nobody acting, and the warehouse says what happened."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import httpx
import psutil
import pytest

from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs import runs
from halo_pipeline.defs.provisioning import ProvisioningResource
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.simulator import Simulator, generate_dataset
from halo_pipeline.simulator.server import serve_in_background
from halo_pipeline.warehouse.locks import HOLDER, writer_lock
from halo_pipeline_tests.helpers import (
    build_access,
    free_port,
    grant,
    project_copy,
    query,
    sync,
    wait_for,
)  # fmt: skip
from halo_pipeline_tests.processes import PROJECT, KillOn, dagster_env, execute, instance_at, kill

pytestmark = pytest.mark.slow

ROLE = {role.name: role.id for role in generate_dataset().roles}
# What `kill -9` leaves, as the next run records it.
GONE = rf"its process \(pid \d+ on {socket.gethostname()}\) is gone: killed or crashed"
# The bound on "the next run is not blocked": a headless run takes about ten seconds.
NEXT_RUN_S = 60


@pytest.fixture
def path(sim: Simulator, warehouse_path: Path) -> Path:
    sync(sim, warehouse_path)
    build_access(warehouse_path)
    return warehouse_path


def run_statuses(env: dict) -> list[tuple[str, str]]:
    with instance_at(env) as instance:
        return [
            (r.dagster_run.job_name, r.dagster_run.status.value)
            for r in reversed(instance.get_run_records())
        ]


def disagreements(path: Path) -> int:
    """Grants in access.grants that the halo tables do not hold, and the other way round."""
    return query(
        path,
        """
        WITH held AS (
            SELECT 'role:' || role_id || ':assigned:agent:' || agent_id AS grant_id, sync_id
            FROM halo.agent_roles
            UNION ALL
            SELECT 'team:' || team_id || ':member:agent:' || agent_id, sync_id FROM halo.agent_teams
        )
        SELECT count(*) FROM (
            (SELECT * FROM held EXCEPT SELECT grant_id, sync_id FROM access.grants)
            UNION ALL
            (SELECT grant_id, sync_id FROM access.grants EXCEPT SELECT * FROM held)
        )
        """,
    )[0][0]


def newest_sync_status(path: Path) -> str:
    return query(
        path, "SELECT status FROM halo.sync_runs WHERE status <> 'failed' ORDER BY sync_id DESC"
    )[0][0]


def test_headless_syncs_killed_in_their_fetch_and_at_their_write_block_no_later_run(
    sim, path, halo_env, tmp_path
):
    def env_of(url: str) -> dict[str, str]:
        return dagster_env({**halo_env, "HALO_BASE_URL": url}, tmp_path, HALO_PROVISIONING="true")

    # 1. Killed while it reads the agents: the run's own process only, as `kill -9 <pid>`
    #    does. Nothing it started outlives it.
    fetch = KillOn(sim.app, "GET", "/api/agent", nth=3)
    with serve_in_background(fetch, "127.0.0.1", 0) as url:
        victim = subprocess.Popen(execute("halo_sync_job"), env=env_of(url),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        orphans: list[int] = []
        fetch.kill = lambda: orphans.extend(kill(victim.pid, children=False))
        assert victim.wait(timeout=120) == -signal.SIGKILL
    _, alive = psutil.wait_procs([psutil.Process(p) for p in orphans if psutil.pid_exists(p)], 10)
    assert alive == []

    # 2. Killed at its write, while it waits for the writer lock this test holds. The wait is
    #    logged at INFO with who holds the lock.
    log = tmp_path / "write.log"
    write = KillOn(sim.app, "GET", "/api/agent", answer=True)  # its first read: after its row
    with serve_in_background(write, "127.0.0.1", 0) as url, log.open("w") as out:
        victim = subprocess.Popen(execute("halo_sync_job"), env=env_of(url), stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
        released = threading.Event()
        write.kill = lambda: _hold_writer_lock(path, released)
        waiting = re.compile(
            r"INFO - halo_sync_job - [0-9a-f-]+ - halo_tables - Waiting for the warehouse: the "
            r"crash test \(pid \d+, since [\d:]+ UTC\) is writing it\."
        )
        _wait_for(lambda: waiting.search(log.read_text()), log)
        kill(victim.pid)
        released.set()
        assert victim.wait(timeout=30) == -signal.SIGKILL

    # 3. Nobody acts: the next headless runs complete, and mark the dead ones failed.
    grant(path, "9", role="Read Only")
    with serve_in_background(sim.app, "127.0.0.1", 0) as url:
        for job in ("halo_sync_job", "provisioning_job"):
            done = subprocess.run(execute(job), env=env_of(url), capture_output=True, text=True,
                                  timeout=NEXT_RUN_S)  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]

    rows = query(path, "SELECT sync_id, kind, status, error FROM halo.sync_runs ORDER BY 1")
    assert [row[:3] for row in rows] == [
        (1, "full", "succeeded"), (2, "full", "failed"), (3, "full", "failed"),
        (4, "full", "succeeded"), (5, "targeted", "succeeded"),
    ]  # fmt: skip
    assert all(re.fullmatch(GONE, row[3]) for row in rows[1:3]), rows
    assert run_statuses(env_of(url)) == [
        ("halo_sync_job", "FAILURE"), ("halo_sync_job", "FAILURE"),
        ("halo_sync_job", "SUCCESS"), ("provisioning_job", "SUCCESS"), ("halo_sync_job", "SUCCESS"),
    ]  # fmt: skip
    assert query(path, "SELECT status FROM provisioning.requests") == [("applied",)]


def _hold_writer_lock(path: Path, released: threading.Event) -> None:
    """Take the writer lock in a thread of this test until `released`, as another writer."""
    taken = threading.Event()

    def hold() -> None:
        HOLDER.set("the crash test")
        with writer_lock(path, wait_s=10):
            taken.set()
            released.wait(60)

    threading.Thread(target=hold, daemon=True).start()
    taken.wait(10)


def _wait_for(check, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


SLOW_MODEL = """-- Takes seconds, so a test can kill the rebuild in the middle of it.
{{ config(materialized='table') }}
SELECT count(*) AS agents, (SELECT count(*) FROM range(1000000000) AS r(i) WHERE hash(i) % 7 = 0) AS n
FROM {{ source('halo', 'agents') }}
"""


def test_a_sync_killed_between_its_two_writes_is_finished_by_the_next_run(
    sim, path, halo_env, tmp_path
):
    models = tmp_path / "models"
    shutil.copytree(PROJECT / "dbt_like_sql", models)
    (models / "aa_slow.sql").write_text(SLOW_MODEL)  # the first model rebuilt
    env = dagster_env(halo_env, tmp_path, HALO_SQL_MODELS_DIR=str(models))
    sim.delete_agent(12)
    sim.set_agent_roles(9, [ROLE["Read Only"]])

    victim = subprocess.Popen(execute("halo_sync_job"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    with instance_at(env) as instance:
        _wait_for(lambda: _step_started(instance, "access_models"), tmp_path / "none")
    kill(victim.pid)
    assert victim.wait(timeout=30) == -signal.SIGKILL

    # The halo tables are sync 2's, access.* still sync 1's: and the log does not call it done.
    assert query(path, "SELECT sync_id, status FROM halo.sync_runs ORDER BY 1") == [
        (1, "succeeded"), (2, "loaded"),
    ]  # fmt: skip
    assert disagreements(path) > 0

    done = subprocess.run(execute("halo_sync_job"), env=env, capture_output=True, text=True,
                          timeout=NEXT_RUN_S)  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    rows = query(path, "SELECT sync_id, status, error FROM halo.sync_runs ORDER BY 1")
    assert [row[:2] for row in rows] == [(1, "succeeded"), (2, "succeeded"), (3, "succeeded")]
    assert re.fullmatch("the sync loaded, then the run failed: " + GONE, rows[1][2]), rows
    assert disagreements(path) == 0
    assert query(path, "SELECT count(*) FROM access.grants WHERE principal_id = 12") == [(0,)]


def _step_started(instance: dg.DagsterInstance, step: str) -> bool:
    runs = instance.get_runs(limit=1)
    return bool(runs) and any(
        event.step_key == step
        for event in instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_START)
    )


def test_provisioning_killed_before_its_refresh_is_refreshed_by_the_next_run(
    sim, path, halo_env, tmp_path
):
    request = grant(path, "9", role="Read Only")
    held = f"role:{ROLE['Read Only']}:assigned:agent:9"
    # The targeted sync's first read: every request is final and its ticket closed by then.
    killer = KillOn(sim.app, "GET", "/api/roles")
    with serve_in_background(killer, "127.0.0.1", 0) as url:
        env = dagster_env({**halo_env, "HALO_BASE_URL": url}, tmp_path,
                          HALO_PROVISIONING="true", HALO_TICKETING="true")  # fmt: skip
        victim = subprocess.Popen(execute("provisioning_job"), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        killer.kill = lambda: kill(victim.pid)
        assert victim.wait(timeout=120) == -signal.SIGKILL

        assert query(path, "SELECT request_id, status, ticket_closed FROM provisioning.requests") == [
            (request, "applied", True)
        ]  # fmt: skip
        assert [r["name"] for r in sim.get_agent(9)["roles"]] == ["Read Only"]
        assert query(path, "SELECT count(*) FROM access.grants WHERE grant_id = ?", [held]) == [
            (0,)
        ]
        assert query(path, "SELECT agent_id FROM provisioning.pending_refresh") == [(9,)]
        with instance_at(env) as instance:
            # While the killed run looks alive, the refresh is its own; once it is marked
            # failed, the sensor starts a run for it.
            assert isinstance(_provisioning_sensor(instance, env), dg.SkipReason)
            _failed_run_recorder(instance, env)
            owed = _provisioning_sensor(instance, env)
            assert [r.tags for r in owed.run_requests] == [{"halo/refresh": "owed"}]

        rerun = subprocess.run(execute("provisioning_job"), env=env, capture_output=True,
                               text=True, timeout=NEXT_RUN_S)  # fmt: skip

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert query(path, "SELECT count(*) FROM access.grants WHERE grant_id = ?", [held]) == [(1,)]
    assert query(path, "SELECT count(*) FROM halo.agent_roles WHERE agent_id = 9 AND role_id = ?",
                 [ROLE["Read Only"]]) == [(1,)]  # fmt: skip
    assert query(path, "SELECT count(*) FROM provisioning.pending_refresh") == [(0,)]
    assert query(path, "SELECT sync_id, kind, status FROM halo.sync_runs ORDER BY 1") == [
        (1, "full", "succeeded"), (2, "targeted", "failed"), (3, "targeted", "succeeded"),
    ]  # fmt: skip
    assert disagreements(path) == 0
    # Nothing was written twice: one role write, one ticket.
    assert sim.request_counts[("POST", "/api/agent")] == 1
    assert len(sim.tickets) == 1


def _resources(env: dict) -> dict:
    return {
        "warehouse": DuckDBWarehouse(database=env["HALO_DUCKDB_PATH"]),
        "halo": HaloResource(
            base_url=env["HALO_BASE_URL"],
            client_id=env["HALO_CLIENT_ID"],
            client_secret=env["HALO_CLIENT_SECRET"],
        ),  # fmt: skip
        "provisioning": ProvisioningResource(provisioning="true"),
    }


def _provisioning_sensor(instance: dg.DagsterInstance, env: dict):
    sensor = build_definitions().resolve_sensor_def("provisioning_request_sensor")
    with dg.build_sensor_context(instance=instance, resources=_resources(env)) as context:
        return sensor(context)


def _failed_run_recorder(instance: dg.DagsterInstance, env: dict):
    sensor = build_definitions().resolve_sensor_def("failed_run_recorder")
    resources = {"warehouse": _resources(env)["warehouse"]}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        return sensor(context)


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""


def test_a_run_killed_under_the_daemon_blocks_no_later_run(sim, path, halo_env, tmp_path):
    (tmp_path / "project").mkdir()
    project = project_copy(tmp_path / "project")
    killer = KillOn(sim.app, "GET", "/api/agent", nth=3)
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    log = tmp_path / "dev.log"
    with serve_in_background(killer, "127.0.0.1", 0) as url, log.open("w") as out:
        env = dagster_env({**halo_env, "HALO_BASE_URL": url}, tmp_path, HALO_PROVISIONING="true",
                          HALO_SYNC_CRON="0 0 1 1 *")  # fmt: skip
        dev = subprocess.Popen(
            [sys.executable, "-m", "halo_pipeline.cli", "dev", "--port", str(port)],
            cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for("the code location", lambda: "LOADED" in httpx.post(f"{ui}/graphql", json={
                "query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
            }).text, log)  # fmt: skip

            killed = _launch(ui, "halo_sync_job")
            # The run worker, as `kill -9 <pid>` of it.
            killer.kill = lambda: kill(_run_pid(env, killed), children=False)
            wait_for("the kill", lambda: killer.seen >= 3, log)

            # Nobody acts but a person filing a request and the next sync being launched.
            grant(path, "9", role="Read Only")
            synced = _launch(ui, "halo_sync_job")
            wait_for("the next runs", lambda: _finished(env, synced, "provisioning_job"), log,
                     timeout=NEXT_RUN_S)  # fmt: skip
        finally:
            os.killpg(dev.pid, signal.SIGINT)
            dev.wait(timeout=60)

    with instance_at(env) as instance:
        records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
        assert records[killed].dagster_run.status == dg.DagsterRunStatus.FAILURE
        provisioned = [r for r in records.values() if r.dagster_run.job_name == "provisioning_job"]
        for record in [records[synced], *provisioned]:
            assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    rows = query(path, "SELECT sync_id, kind, status, error FROM halo.sync_runs ORDER BY 1")
    assert [row[:3] for row in rows] == [
        (1, "full", "succeeded"), (2, "full", "failed"), (3, "full", "succeeded"),
        (4, "targeted", "succeeded"),
    ]  # fmt: skip
    # Marked failed by the code server that watched its run worker die, or by the next run.
    assert re.fullmatch(
        rf"{GONE}|This run has been marked as failed from outside the execution context\.",
        rows[1][3],
    ), rows
    assert query(path, "SELECT status FROM provisioning.requests") == [("applied",)]


def _launch(ui: str, job: str) -> str:
    params = {
        "selector": {
            "repositoryLocationName": "halo_pipeline",
            "repositoryName": "__repository__",
            "jobName": job,
        },
        "runConfigData": {},
    }
    answer = httpx.post(f"{ui}/graphql", json={"query": LAUNCH, "variables": {"params": params}},
                        timeout=60).json()["data"]["launchRun"]  # fmt: skip
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


def _run_pid(env: dict, run_id: str) -> int:
    with instance_at(env) as instance:
        return int(instance.get_run_by_id(run_id).tags[runs.PID])


def _finished(env: dict, sync_run: str, job: str) -> bool:
    with instance_at(env) as instance:
        sync = instance.get_run_by_id(sync_run)
        others = instance.get_runs(dg.RunsFilter(job_name=job))
        return sync.is_finished and any(run.is_finished for run in others)
