"""Running it unattended: the sync schedule, and failed runs written where SQL can see them."""

from datetime import UTC, datetime

import dagster as dg

from halo_pipeline.defs import runs
from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline.defs.runs import SYNC_JOB, WATCHED_JOBS
from halo_pipeline.defs.ticks import skips_when_busy
from halo_pipeline.sync import ScheduleSettings

BATCH = 50


def halo_sync_schedule() -> dg.ScheduleDefinition:
    """`HALO_SYNC_CRON` (hourly by default) in `HALO_SYNC_TIMEZONE` (UTC): read when the
    definitions load, because Dagster needs the cron then."""
    settings = ScheduleSettings.load()
    return dg.ScheduleDefinition(
        name="halo_sync_schedule",
        job_name=SYNC_JOB,
        cron_schedule=settings.sync_cron,
        execution_timezone=settings.sync_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Syncs HaloITSM into the warehouse and rebuilds the access model.",
    )


# A plain sensor with its own cursor rather than a run_failure_sensor: the cursor of a run
# status sensor moves on even when its evaluation fails, and a failure met while the warehouse
# was busy would never be written. Here the cursor moves only past runs that were recorded.
@dg.sensor(
    name="failed_run_recorder",
    # Often: a dead run holds the run queue's `duckdb` slot until this marks it failed.
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
@skips_when_busy
def failed_run_recorder(
    context: dg.SensorEvaluationContext, warehouse: DuckDBWarehouse
) -> dg.SensorResult | dg.SkipReason:
    """Marks runs whose process died failed (so the run queue goes on), then records every
    failed halo_sync_job run in halo.sync_runs, and every failed provisioning_job run as an
    event (and a failed attempt) on each request it left unfinished. Recording a run twice
    changes nothing, so none is lost and none counted twice."""
    if runs.dead_runs(context.instance):
        with warehouse.get_connection(wait_s=5) as con:
            runs.reap(context.instance, con, context.log)
    since = datetime.fromtimestamp(float(context.cursor or 0), UTC)
    failed = sorted(
        (
            record
            for job in WATCHED_JOBS
            for record in context.instance.get_run_records(
                dg.RunsFilter(
                    job_name=job, statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since
                ),
                limit=BATCH,
            )
        ),
        key=lambda record: record.update_timestamp,
    )[:BATCH]
    if not failed:
        return dg.SkipReason("No failed run to record.")
    with warehouse.get_connection(wait_s=5) as con:
        for record in failed:
            run = record.dagster_run
            runs.record_failure(con, run, runs.failure_of(context.instance, run.run_id))
    context.log.info(f"recorded {len(failed)} failed runs")
    return dg.SensorResult(cursor=str(failed[-1].update_timestamp.timestamp()))


def operations_definitions() -> dg.Definitions:
    return dg.Definitions(schedules=[halo_sync_schedule()], sensors=[failed_run_recorder])
