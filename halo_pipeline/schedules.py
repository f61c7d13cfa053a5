"""When syncs run: `HALO_SYNC_CRON` (hourly by default) in `HALO_SYNC_TIMEZONE` (UTC)."""

import os

import dagster as dg

from halo_pipeline.jobs import halo_sync_job

halo_sync_schedule = dg.ScheduleDefinition(
    name="halo_sync_schedule",
    job=halo_sync_job,
    cron_schedule=os.getenv("HALO_SYNC_CRON") or "0 * * * *",
    execution_timezone=os.getenv("HALO_SYNC_TIMEZONE") or "UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Syncs HaloITSM into the warehouse and rebuilds the access model.",
)
