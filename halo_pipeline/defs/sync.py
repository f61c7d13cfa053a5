"""The `halo` stage: one step reads HaloITSM and replaces every `halo` table at once, then runs
the column tests `dbt_like_sql/schema.yml` sets on them."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import duckdb
from pydantic import Field

from halo_pipeline.defs import runs
from halo_pipeline.defs.failures import said_plainly
from halo_pipeline.defs.reporting import (
    OWNERS,
    by_relation,
    check_results,
    check_specs,
    table_metadata,
)
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.defs.runs import SYNC_JOB
from halo_pipeline.halo.paging import Progress
from halo_pipeline.policy.freshness import RolesAgeSettings, roles_age
from halo_pipeline.sql_models.project import SqlProject
from halo_pipeline.sync import SyncFailedError, sync_halo
from halo_pipeline.warehouse.registry import HALO_TABLES

ROLES_FRESH = "roles_fresh"


def roles_fresh(con: duckdb.DuckDBPyConnection, max_age: timedelta) -> dg.AssetCheckResult:
    """Whether every agent's roles were read within HALO_ROLES_MAX_AGE."""
    age = roles_age(con, max_age)
    return dg.AssetCheckResult(
        asset_key=["halo", "agents"],
        check_name=ROLES_FRESH,
        passed=age.fresh,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "agents": age.agents,
            "roles_never_read": age.never_read,
            "roles_older_than_max_age": age.older,
            "oldest_roles_read_at": str(age.oldest) if age.oldest else "(none)",
            "max_age": str(max_age),
        },
    )


class HaloSyncConfig(dg.Config):
    allow_large_drop: bool = Field(
        default=False,
        description="Replace the tables even when halo.agents would shrink by more than half "
        "compared with the last good sync (after a real clean-up in HaloITSM).",
    )
    agent_ids: list[int] | None = Field(
        default=None,
        description="A targeted sync of these agents only (and the roles, teams and ticket "
        "types), as provisioning_job runs after changing them. Empty: a full sync.",
    )


def sync_definitions(project: SqlProject) -> dg.Definitions:
    tests = [test for test in project.column_tests() if test.schema == "halo"]

    @dg.multi_asset(
        name="halo_tables",
        specs=[
            dg.AssetSpec(
                ["halo", table],
                description=project.table_description("halo", table),
                group_name="halo",
                kinds={"duckdb", "python"},
                owners=OWNERS,
                metadata={"dagster/table_name": f"halo.{table}"},
            )
            for table in HALO_TABLES
        ],
        check_specs=[
            *check_specs(tests),
            dg.AssetCheckSpec(
                ROLES_FRESH,
                asset=["halo", "agents"],
                description="Every agent's roles were read from HaloITSM within "
                "HALO_ROLES_MAX_AGE (default 7 days); warns otherwise.",
            ),
        ],
        pool="duckdb",
        # One sync replaces every table in one transaction: they cannot be materialised apart.
        can_subset=False,
    )
    @said_plainly
    def halo_tables(
        context: dg.AssetExecutionContext,
        config: HaloSyncConfig,
        halo: HaloResource,
        warehouse: DuckDBWarehouse,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Reads agents, roles, teams, memberships and ticket types from the HaloITSM API, then
        replaces the `halo` tables in one DuckDB transaction and extends the membership
        history. Everything is fetched before the warehouse is opened for writing, so a failed
        or interrupted sync leaves the last good tables as they were. Each attempt is a row in
        `halo.sync_runs`. With `agent_ids` it re-reads only those agents (a targeted sync)."""
        runs.claim(context)
        with warehouse.get_connection() as con:
            runs.reap(context.instance, con, context.log)
        settings = halo.settings()
        max_age = RolesAgeSettings.load().roles_max_age  # a bad one stops the sync unstarted
        with halo.get_client(logger=context.log) as client:
            try:
                result = sync_halo(
                    client,
                    warehouse.get_connection,
                    agent_ids=config.agent_ids,
                    dagster_run_id=context.run.run_id,
                    allow_large_drop=config.allow_large_drop,
                    progress=_progress(context),
                )
            except SyncFailedError as failure:
                raise dg.Failure(
                    description=str(failure),
                    metadata={"sync_id": failure.sync_id, "api_requests": failure.api_requests},
                    allow_retries=False,
                ) from None
        context.log.info(
            f"sync {result.sync_id}: {result.counts} rows from {result.api_requests} API requests"
        )
        with warehouse.get_connection(read_only=True) as con:
            for table in HALO_TABLES:
                yield dg.MaterializeResult(
                    asset_key=["halo", table],
                    metadata={
                        **table_metadata(
                            con, f"halo.{table}", project.column_descriptions("halo", table)
                        ),
                        "sync_id": result.sync_id,
                        "sync_kind": "full" if config.agent_ids is None else "targeted",
                        "api_requests": result.api_requests,
                        "memberships_from": result.memberships_from,
                        "source_url": dg.MetadataValue.url(settings.base_url),
                    },
                )
            for relation, group in by_relation(tests).items():
                yield from check_results(con, relation, group, context.selected_asset_check_keys)
            if dg.AssetCheckKey(dg.AssetKey(["halo", "agents"]), ROLES_FRESH) in (
                context.selected_asset_check_keys
            ):
                yield roles_fresh(con, max_age)

    halo_sync_job = dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.groups("halo", "policy", "access"),
        description="Sync HaloITSM agents, roles, teams and ticket types into the warehouse, "
        "rebuild the access model from them, and run every check. With the run config "
        "`ops: {halo_tables: {config: {agent_ids: [...]}}}` a targeted sync of those agents.",
    )
    return dg.Definitions(assets=[halo_tables], jobs=[halo_sync_job])


def _progress(context: dg.AssetExecutionContext) -> Progress:
    def report(page: int, known: int | None) -> None:
        if known is None:
            if page % 10 == 0:
                context.log.info(f"agents: {page} pages fetched (total not reported)")
        elif page % 10 == 0 or page == known:
            context.log.info(f"agents: {page} of {known} pages fetched")

    return report
