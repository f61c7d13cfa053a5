"""The runs of this code location: what each one claims while it lives, and what becomes of one
whose process died.

A run killed with `kill -9` (a headless `dagster job execute`, or a run worker the default
launcher does not watch) stays STARTED in Dagster and `running` in `halo.sync_runs` forever, and
under the daemon its run keeps the `duckdb` pool's slot, so the queue waits on it. Each run tags
itself with its process; the next run, and the failure recorder on every tick, mark a run
whose process is gone failed, in Dagster and in the warehouse.
"""

import os
import socket

import dagster as dg
import duckdb
import psutil

from halo_pipeline.requests import queue
from halo_pipeline.warehouse import halo_tables

SYNC_JOB = "halo_sync_job"
PROVISIONING_JOB = "provisioning_job"
WATCHED_JOBS = (SYNC_JOB, PROVISIONING_JOB)
PID, HOST = "halo/pid", "halo/host"
LIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
ENDED_BADLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def claim(context: dg.AssetExecutionContext) -> None:
    """Tag this run with the process that runs it, so a later one can tell if it died. Steps
    run in the run's own process (the in-process executor), so that is this one."""
    if context.run.tags.get(PID) != str(os.getpid()):
        context.instance.add_run_tags(
            context.run.run_id, {PID: str(os.getpid()), HOST: socket.gethostname()}
        )


def dead_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs of this location still STARTED whose process, on this host, is gone. A run on
    another host, or that never tagged itself, is left to Dagster's run monitoring."""
    dead = []
    for record in instance.get_run_records(
        dg.RunsFilter(job_name=None, statuses=LIVE, tags={HOST: socket.gethostname()})
    ):
        run = record.dagster_run
        if run.job_name in WATCHED_JOBS and not _alive(int(run.tags[PID]), record.start_time):
            dead.append(run)
    return dead


def _alive(pid: int, run_started: float | None) -> bool:
    """Whether `pid` is the process that started the run: alive, and not a newer process that
    was given the same pid."""
    try:
        process = psutil.Process(pid)
        return process.is_running() and (
            run_started is None or process.create_time() <= run_started + 1
        )
    except psutil.NoSuchProcess:
        return False


def reap(instance: dg.DagsterInstance, con: duckdb.DuckDBPyConnection, log: object) -> int:
    """Mark each dead run failed in Dagster and record it in the warehouse, and record every
    run that has ended while its sync still says `running` (failed_run_recorder would, on its
    next tick; the run about to write should not wait for that)."""
    runs = dead_runs(instance)
    for run in runs:
        why = f"its process (pid {run.tags[PID]} on {run.tags[HOST]}) is gone: killed or crashed"
        instance.report_run_failed(run, message=f"Marked failed by a later run: {why}.")
        record_failure(con, run, why)
        log.warning(f"run {run.run_id} of {run.job_name} had died ({why}); marked failed")  # type: ignore[attr-defined]
    for (run_id,) in con.execute(
        "SELECT DISTINCT dagster_run_id FROM halo.sync_runs WHERE status = 'running'"
    ).fetchall():
        run = instance.get_run_by_id(run_id) if run_id else None
        if run is not None and run.status in ENDED_BADLY:
            record_failure(con, run, failure_of(instance, run.run_id))
    return len(runs)


def failure_of(instance: dg.DagsterInstance, run_id: str) -> str:
    """What failed: each failed step's own error (Dagster wraps what a step raised in its
    own exception, so the innermost cause), else the run's failure message."""
    steps = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error = entry.dagster_event.step_failure_data.error if entry.dagster_event else None
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            message = error.message.strip()
            if error.cls_name == "Failure":  # our own sentence, without Dagster's class path
                message = message.removeprefix("dagster._core.definitions.events.Failure: ")
            steps.append(f"{entry.step_key}: {message}")
    if steps:
        return "; ".join(steps)
    failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return failures[-1].message if failures else "the run failed"


def record_failure(con: duckdb.DuckDBPyConnection, run: dg.DagsterRun, error: str) -> None:
    """What a failed run leaves in the warehouse. Recording a run twice changes nothing."""
    if run.job_name == SYNC_JOB:
        halo_tables.record_failed_run(con, dagster_run_id=run.run_id, error=error)
    else:
        queue.record_failed_run(con, run_id=run.run_id, error=error)
        halo_tables.record_failed_run(
            con, dagster_run_id=run.run_id, error=error, its_own_row=False
        )
