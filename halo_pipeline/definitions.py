"""The Dagster code location: `dg dev`, or `dagster dev -w workspace.yaml`.

The stages' definitions (halo_pipeline/defs/), combined. Building them reads the project's SQL
and YAML files (the access policy's too: a malformed one stops the load, naming its line) but
opens no connection and reads no setting except the schedule's cron and the policy's path:
the API and the warehouse are reached, and the other HALO_* variables read, only when
something runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from halo_pipeline.defs import reviews
from halo_pipeline.defs.access import access_definitions
from halo_pipeline.defs.operations import operations_definitions
from halo_pipeline.defs.policy import policy_definitions
from halo_pipeline.defs.provisioning import provisioning_definitions
from halo_pipeline.defs.resources import shared_resources
from halo_pipeline.defs.runs import SYNC_JOB
from halo_pipeline.defs.sync import sync_definitions
from halo_pipeline.sql_models.project import load_project, models_dir

# Dagster's own @sensor passes a beta parameter (owners) and warns about it on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning, module="dagster")


def build_definitions(sql_dir: Path | None = None) -> dg.Definitions:
    """Every stage, with the SQL models of `sql_dir` (default: HALO_SQL_MODELS_DIR or the
    project's dbt_like_sql/): the sync job, provisioning's refresh and the checks all use them."""
    project = load_project(sql_dir or models_dir())

    def sync_job() -> dg.JobDefinition:
        return merged.resolve_job_def(SYNC_JOB)

    merged = dg.Definitions.merge(
        sync_definitions(project),
        access_definitions(project),
        policy_definitions(project),
        provisioning_definitions(project, sync_job),
        reviews.defs,
        operations_definitions(),
        dg.Definitions(
            resources=shared_resources(),
            # DuckDB takes one writer at a time and each job is one or two steps; a process per
            # step would only add seconds of start-up to every run.
            executor=dg.in_process_executor,
        ),
    )
    return merged


defs = build_definitions()
