"""failed_run_recorder: failed syncs and provisioning runs, written where SQL can see them."""

from typing import TYPE_CHECKING

import dagster as dg

from halo_pipeline.jobs import halo_sync_job
from halo_pipeline.provisioning import queue
from halo_pipeline.provisioning.job import provisioning_job
from halo_pipeline.resources import DuckDBWarehouse
from halo_pipeline.warehouse import halo_tables

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo


@dg.run_failure_sensor(
    name="failed_run_recorder",
    monitored_jobs=[halo_sync_job, provisioning_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed halo_sync_job run in halo.sync_runs and every failed "
    "provisioning_job run as an event on the requests it left unfinished.",
)
def failed_run_recorder(context: dg.RunFailureSensorContext, warehouse: DuckDBWarehouse) -> None:
    run = context.dagster_run
    steps = [
        f"{event.step_key}: {_innermost(event.event_specific_data.error)}"
        for event in context.get_step_failure_events()
        if event.event_specific_data and event.event_specific_data.error
    ]
    error = "; ".join(steps) or context.failure_event.message or "the run failed"
    # A writer may hold the file: wait for it; raising leaves this run to the next tick.
    with warehouse.get_connection(wait_s=60) as con:
        if run.job_name == halo_sync_job.name:
            halo_tables.record_failed_run(con, dagster_run_id=run.run_id, error=error)
        else:
            queue.record_failed_run(con, run_id=run.run_id, error=error)
    context.log.info(f"recorded the failure of {run.job_name} run {run.run_id}")


def _innermost(error: "SerializableErrorInfo") -> str:
    """The error that started it: Dagster wraps what a step raised in its own exception."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
