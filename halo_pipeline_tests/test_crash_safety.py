"""`kill -9` at the moments that matter, with real processes: a headless run in its fetch and
at its write, a sync between its two writes, provisioning before its refresh (a run of the
daemon: test_crash_daemon.py). After each, the next
runs complete with nobody acting, and the warehouse says what happened."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs.provisioning import ProvisioningResource
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.simulator import generate_dataset
from halo_pipeline.simulator.server import serve_in_background
from halo_pipeline_tests.helpers import (
    grant,
    query,
)  # fmt: skip
from halo_pipeline_tests.processes import (
    PROJECT,
    KillOn,
    dagster_env,
    execute,
    instance_at,
    kill,
    next_run,
    running,
    take_writer_lock,
)  # fmt: skip

pytestmark = pytest.mark.slow

ROLE = {role.name: role.id for role in generate_dataset().roles}
# What `kill -9` leaves, as the next run records it.
GONE = rf"its process \(pid \d+ on {socket.gethostname()}\) is gone: killed or crashed"
# The bound on "the next run is not blocked": a headless run takes about ten seconds.
NEXT_RUN_S = 60


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
    sim, path, halo_env, tmp_path, monkeypatch
):
    def env_of(url: str) -> dict[str, str]:
        return dagster_env({**halo_env, "HALO_BASE_URL": url}, tmp_path, HALO_PROVISIONING="true")

    # 1. Killed while it reads the agents: the run's own process only, as `kill -9 <pid>`
    #    does. Nothing it started outlives it.
    fetch = KillOn(sim.app, "GET", "/api/agent", nth=3)
    with (
        serve_in_background(fetch, "127.0.0.1", 0) as url,
        running(execute("halo_sync_job"), env=env_of(url), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) as victim,
    ):  # fmt: skip
        orphans: list[int] = []
        fetch.kill = lambda: orphans.extend(kill(victim.pid, children=False))
        assert victim.wait(timeout=120) == -signal.SIGKILL
    _, alive = psutil.wait_procs([psutil.Process(p) for p in orphans if psutil.pid_exists(p)], 10)
    assert alive == []

    # 2. Killed at its write, while it waits for the writer lock this test holds. The wait is
    #    logged at INFO with who holds the lock.
    log = tmp_path / "write.log"
    write = KillOn(sim.app, "GET", "/api/agent", answer=True)  # its first read: after its row
    with (
        serve_in_background(write, "127.0.0.1", 0) as url,
        log.open("w") as out,
        running(execute("halo_sync_job"), env=env_of(url), stdout=out,
                stderr=subprocess.STDOUT) as victim,
    ):  # fmt: skip
        released = threading.Event()
        write.kill = lambda: take_writer_lock(path, released)
        waiting = re.compile(
            r"INFO - halo_sync_job - [0-9a-f-]+ - halo_tables - Waiting for the warehouse: the "
            r"crash test \(pid \d+, since [\d:]+ UTC\) is writing it\."
        )
        _wait_for(lambda: waiting.search(log.read_text()), log)
        kill(victim.pid)
        released.set()
        assert victim.wait(timeout=30) == -signal.SIGKILL

    # 3. Nobody acts: the next runs complete, and mark the dead ones failed.
    grant(path, "9", role="Read Only")
    with serve_in_background(sim.app, "127.0.0.1", 0) as url:
        for job in ("halo_sync_job", "provisioning_job"):
            assert next_run(job, env_of(url), monkeypatch).success

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
    sim, path, halo_env, tmp_path, monkeypatch
):
    models = tmp_path / "models"
    shutil.copytree(PROJECT / "dbt_like_sql", models)
    (models / "aa_slow.sql").write_text(SLOW_MODEL)  # the first model rebuilt
    env = dagster_env(halo_env, tmp_path, HALO_SQL_MODELS_DIR=str(models))
    sim.delete_agent(12)
    sim.set_agent_roles(9, [ROLE["Read Only"]])

    with running(execute("halo_sync_job"), env=env, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL) as victim:  # fmt: skip
        with instance_at(env) as instance:
            _wait_for(lambda: _step_started(instance, "access_models"), tmp_path / "none")
        kill(victim.pid)
        assert victim.wait(timeout=30) == -signal.SIGKILL

    # The halo tables are sync 2's, access.* still sync 1's: and the log does not call it done.
    assert query(path, "SELECT sync_id, status FROM halo.sync_runs ORDER BY 1") == [
        (1, "succeeded"), (2, "loaded"),
    ]  # fmt: skip
    assert disagreements(path) > 0

    assert next_run("halo_sync_job", env, monkeypatch).success

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
    sim, path, halo_env, tmp_path, monkeypatch
):
    request = grant(path, "9", role="Read Only")
    held = f"role:{ROLE['Read Only']}:assigned:agent:9"
    # The targeted sync's first read (the run's own first read of the roles decides by the
    # policy): every request is final and its ticket closed by then.
    killer = KillOn(sim.app, "GET", "/api/roles", nth=2)
    with serve_in_background(killer, "127.0.0.1", 0) as url:
        env = dagster_env({**halo_env, "HALO_BASE_URL": url}, tmp_path,
                          HALO_PROVISIONING="true", HALO_TICKETING="true")  # fmt: skip
        with running(execute("provisioning_job"), env=env, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL) as victim:  # fmt: skip
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

        assert next_run("provisioning_job", env, monkeypatch).success

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
