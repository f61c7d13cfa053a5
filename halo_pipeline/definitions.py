"""The Dagster code location: `dagster dev -m halo_pipeline.definitions`.

Building the definitions reads the project's SQL and YAML files but opens no connection: the
API and the warehouse are reached only when something runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from halo_pipeline.assets.halo_tables import halo_tables
from halo_pipeline.failures import failed_run_recorder
from halo_pipeline.jobs import halo_sync_job
from halo_pipeline.provisioning.job import provisioning_job, provisioning_tables
from halo_pipeline.provisioning.sensor import provisioning_request_sensor
from halo_pipeline.resources import resources_from_env
from halo_pipeline.schedules import halo_sync_schedule
from halo_pipeline.sql_models.assets import build_model_assets
from halo_pipeline.sql_models.checks import build_column_checks
from halo_pipeline.sql_models.project import DEFAULT_MODELS_DIR, load_project

# Dagster's own @sensor passes a beta parameter (owners) and warns about it on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning, module="dagster")


def build_definitions(sql_dir: Path = DEFAULT_MODELS_DIR) -> dg.Definitions:
    project = load_project(sql_dir)
    return dg.Definitions(
        assets=[halo_tables, *build_model_assets(project), *provisioning_tables],
        asset_checks=build_column_checks(project.column_tests()),
        jobs=[halo_sync_job, provisioning_job],
        schedules=[halo_sync_schedule],
        sensors=[provisioning_request_sensor, failed_run_recorder],
        resources=resources_from_env(),
        # DuckDB takes one writer at a time and the `duckdb` pool serialises the steps anyway;
        # a process per step would only add seconds of start-up to every run.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
