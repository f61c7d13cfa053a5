"""`kill -9` of a run under `dagster dev`'s daemon: the next runs the queue starts complete, and
the warehouse says what happened."""

from __future__ import annotations

import re
import sys
import threading

import dagster as dg
import httpx
import pytest

from halo_pipeline.defs import runs
from halo_pipeline.simulator.server import serve_in_background
from halo_pipeline_tests.helpers import (
    free_port,
    grant,
    project_copy,
    query,
    wait_for,
)  # fmt: skip
from halo_pipeline_tests.processes import (
    KillOn,
    dagster_env,
    instance_at,
    kill,
    started,
    take_writer_lock,
)  # fmt: skip
from halo_pipeline_tests.test_crash_safety import GONE, NEXT_RUN_S

pytestmark = pytest.mark.slow


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
    fetch = KillOn(sim.app, "GET", "/api/agent", nth=3)
    write = KillOn(sim.app, "GET", "/api/agent", answer=True)  # its first read: after its row
    serving = [fetch]
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    log = tmp_path / "dev.log"
    app = lambda environ, start_response: serving[-1](environ, start_response)  # noqa: E731
    with serve_in_background(app, "127.0.0.1", 0) as url:
        env = dagster_env({**halo_env, "HALO_BASE_URL": url}, tmp_path, HALO_PROVISIONING="true",
                          HALO_SYNC_CRON="0 0 1 1 *")  # fmt: skip
        command = [sys.executable, "-m", "halo_pipeline.cli", "dev", "--port", str(port)]
        # One instance for every look at the runs: opening one costs more than the look.
        with instance_at(env) as looks, started(command, log=log, cwd=project, env=env):
            wait_for("the code location", lambda: "LOADED" in httpx.post(f"{ui}/graphql", json={
                "query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
            }).text, log)  # fmt: skip

            # 1. A run worker killed in its fetch, as `kill -9 <pid>` of it.
            in_fetch = _launch(ui, "halo_sync_job")
            fetch.kill = lambda: kill(_run_pid(looks, in_fetch), children=False)
            wait_for("the kill in the fetch", lambda: fetch.seen >= 3, log)

            # 2. One killed at its write, while it waits for the writer lock this test holds.
            serving.append(write)
            released = threading.Event()
            write.kill = lambda: take_writer_lock(path, released)
            at_write = _launch(ui, "halo_sync_job")
            wait_for("the wait for the lock", lambda: _logged(looks, at_write, WAITING), log)
            kill(_run_pid(looks, at_write), children=False)
            released.set()

            # Nobody acts but a person filing a request and launching the next runs.
            grant(path, "9", role="Read Only")
            synced = _launch(ui, "halo_sync_job")
            _launch(ui, "provisioning_job")
            wait_for("the next runs", lambda: _finished(looks, synced, "provisioning_job"), log,
                     timeout=NEXT_RUN_S)  # fmt: skip

    with instance_at(env) as instance:
        records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
        for killed in (in_fetch, at_write):
            assert records[killed].dagster_run.status == dg.DagsterRunStatus.FAILURE
        provisioned = [r for r in records.values() if r.dagster_run.job_name == "provisioning_job"]
        for record in [records[synced], *provisioned]:
            assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    rows = query(path, "SELECT sync_id, kind, status, error FROM halo.sync_runs ORDER BY 1")
    assert [row[:3] for row in rows] == [
        (1, "full", "succeeded"), (2, "full", "failed"), (3, "full", "failed"),
        (4, "full", "succeeded"), (5, "targeted", "succeeded"),
    ]  # fmt: skip
    # Marked failed by the code server that watched its run worker die, or by the next run.
    for row in rows[1:3]:
        assert re.fullmatch(
            rf"{GONE}|This run has been marked as failed from outside the execution context\.",
            row[3],
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


WAITING = "Waiting for the warehouse: the crash test (pid "


def _logged(instance: dg.DagsterInstance, run_id: str, text: str) -> bool:
    return any(text in entry.user_message for entry in instance.all_logs(run_id))


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    return int(instance.get_run_by_id(run_id).tags[runs.PID])


def _finished(instance: dg.DagsterInstance, sync_run: str, job: str) -> bool:
    sync = instance.get_run_by_id(sync_run)
    others = instance.get_runs(dg.RunsFilter(job_name=job))
    # Every one: the sensor may have started one for the request beside the test's own.
    return sync.is_finished and bool(others) and all(run.is_finished for run in others)
