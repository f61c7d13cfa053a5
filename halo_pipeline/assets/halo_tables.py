"""The `halo` source tables: one sync reads HaloITSM and replaces them all at once."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from halo_pipeline.halo import HaloError, fetch_snapshot
from halo_pipeline.halo.paging import Progress
from halo_pipeline.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.warehouse import WarehouseError
from halo_pipeline.warehouse.halo_tables import (
    HALO_TABLES,
    record_sync_failure,
    record_sync_start,
    replace_halo_tables,
)

OWNERS = ["team:access-governance"]
PREVIEW_ROWS = 10

DESCRIPTIONS = {
    "agents": "Every HaloITSM agent (account): enabled, disabled and API-only, from "
    "`GET /api/agent`, without the Unassigned placeholder (id 1).",
    "roles": "HaloITSM roles from `GET /api/roles`; `role_id` is Halo's GUID.",
    "teams": "HaloITSM teams from `GET /api/team`, inactive ones included.",
    "agent_roles": "Which agent holds which role: from the agent rows, or from "
    "`GET /api/agent?role=<id_int>` per role when the rows omit roles.",
    "agent_teams": "Which agent is in which team: from the agent rows, or from "
    "`GET /api/agent?team_id=<id>` per team when the rows omit teams.",
    "ticket_types": 'HaloITSM ticket types ("ticket schemas") from `GET /api/tickettype`.',
}


class HaloSyncConfig(dg.Config):
    allow_large_drop: bool = Field(
        default=False,
        description="Replace the tables even when halo.agents would shrink by more than half "
        "compared with the last good sync (after a real clean-up in HaloITSM).",
    )


@dg.multi_asset(
    name="halo_tables",
    specs=[
        dg.AssetSpec(
            ["halo", table],
            description=DESCRIPTIONS[table],
            group_name="halo",
            kinds={"duckdb"},
            owners=OWNERS,
            metadata={"dagster/table_name": f"halo.{table}"},
        )
        for table in HALO_TABLES
    ],
    pool="duckdb",
    # One sync replaces every table in one transaction: they cannot be materialised apart.
    can_subset=False,
)
def halo_tables(
    context: dg.AssetExecutionContext,
    config: HaloSyncConfig,
    halo: HaloResource,
    warehouse: DuckDBWarehouse,
) -> Iterator[dg.MaterializeResult]:
    """Reads agents, roles, teams, memberships and ticket types from the HaloITSM API, then
    replaces the `halo` tables in one DuckDB transaction.

    Everything is fetched before the warehouse is opened for writing, so a failed or
    interrupted sync leaves the last good tables as they were. Each attempt is a row in
    `halo.sync_runs`.
    """
    with warehouse.get_connection() as con:
        sync_id = record_sync_start(
            con, dagster_run_id=context.run.run_id, source_url=halo.base_url
        )
    context.log.info(f"sync {sync_id}: reading HaloITSM at {halo.base_url}")
    requests = None
    try:
        with halo.get_client(logger=context.log) as client:
            try:
                snapshot = fetch_snapshot(client, progress=_progress(context))
            finally:
                requests = client.request_count
        with warehouse.get_connection() as con:
            counts = replace_halo_tables(
                con,
                snapshot,
                sync_id=sync_id,
                synced_at=datetime.now(UTC),
                api_requests=requests,
                allow_large_drop=config.allow_large_drop,
            )
            previews = {table: _preview(con, table) for table in HALO_TABLES}
    except (HaloError, WarehouseError) as exc:
        _record_failure(warehouse, sync_id, str(exc), requests, context)
        raise dg.Failure(
            description=f"sync {sync_id} failed: {exc}",
            metadata={"sync_id": sync_id, "api_requests": requests},
            allow_retries=False,
        ) from None
    except Exception as exc:
        _record_failure(warehouse, sync_id, f"{type(exc).__name__}: {exc}", requests, context)
        raise

    context.log.info(f"sync {sync_id}: {counts} rows from {requests} API requests")
    for table in HALO_TABLES:
        yield dg.MaterializeResult(
            asset_key=["halo", table],
            metadata={
                "dagster/row_count": counts[table],
                "preview": dg.MetadataValue.md(previews[table]),
                "sync_id": sync_id,
                "api_requests": requests,
                "memberships_from": snapshot.memberships_from,
                "source_url": dg.MetadataValue.url(halo.base_url),
            },
        )


def _progress(context: dg.AssetExecutionContext) -> Progress:
    def report(page: int, known: int | None) -> None:
        if known is None:
            if page % 10 == 0:
                context.log.info(f"agents: {page} pages fetched (total not reported)")
        elif page % 10 == 0 or page == known:
            context.log.info(f"agents: {page} of {known} pages fetched")

    return report


def _preview(con, table: str) -> str:
    # The table name comes from HALO_TABLES, not from input.
    frame = con.execute(
        f"SELECT * EXCLUDE (sync_id, synced_at) FROM halo.{table} ORDER BY ALL LIMIT ?",
        [PREVIEW_ROWS],
    ).df()
    return frame.to_markdown(index=False)


def _record_failure(
    warehouse: DuckDBWarehouse,
    sync_id: int,
    error: str,
    requests: int | None,
    context: dg.AssetExecutionContext,
) -> None:
    try:
        with warehouse.get_connection() as con:
            record_sync_failure(con, sync_id, error, requests)
    except WarehouseError as exc:
        context.log.warning(f"could not record the failure of sync {sync_id}: {exc}")
