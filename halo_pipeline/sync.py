"""One sync: read HaloITSM, then replace the `halo` tables. Plain Python, no Dagster.

The warehouse is opened twice, briefly: to log the attempt, then, once everything has been read
from the API, to write it in one transaction. A failure anywhere is logged in `halo.sync_runs`
and leaves the last good tables as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from halo_pipeline.environment import FromEnvironment
from halo_pipeline.halo import HaloClient, HaloError, fetch_snapshot
from halo_pipeline.halo.paging import Progress
from halo_pipeline.halo.snapshot import fetch_agents
from halo_pipeline.warehouse import OpenWarehouse, WarehouseError
from halo_pipeline.warehouse.halo_tables import (
    record_sync_failure,
    record_sync_start,
    replace_agents,
    replace_halo_tables,
    seen_agents,
)


class ScheduleSettings(FromEnvironment):
    sync_cron: str = "0 * * * *"
    """HALO_SYNC_CRON: when halo_sync_schedule runs halo_sync_job (hourly)."""
    sync_timezone: str = "UTC"
    """HALO_SYNC_TIMEZONE: the cron's time zone."""


@dataclass(frozen=True)
class SyncResult:
    sync_id: int
    counts: dict[str, int]
    api_requests: int
    memberships_from: str
    detail_reads: int


class SyncFailedError(Exception):
    """A sync failed; `halo.sync_runs` says so and the previous tables are unchanged."""

    def __init__(self, message: str, sync_id: int, api_requests: int | None) -> None:
        super().__init__(message)
        self.sync_id = sync_id
        self.api_requests = api_requests


def sync_halo(
    client: HaloClient,
    open_warehouse: OpenWarehouse,
    *,
    agent_ids: list[int] | None = None,
    dagster_run_id: str | None = None,
    allow_large_drop: bool = False,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SyncResult:
    """A full sync, or with `agent_ids` a targeted one: the roles, teams and ticket types and
    those agents only, read one by one (what provisioning runs after changing them).

    `clock` says when the data was read (`synced_at`, the time history is kept by): the demo
    replays a past with it. When the sync ran is recorded as it happened."""
    kind = "full" if agent_ids is None else "targeted"
    with open_warehouse() as con:
        sync_id = record_sync_start(
            con, dagster_run_id=dagster_run_id, source_url=client.settings.base_url, kind=kind
        )
        previous = seen_agents(con) if agent_ids is None else {}
    requests = None
    try:
        try:
            if agent_ids is None:
                snapshot = fetch_snapshot(client, progress, previous=previous, seed=sync_id)
            else:
                snapshot = fetch_agents(client, agent_ids)
        finally:
            requests = client.request_count
        synced_at = clock()
        with open_warehouse() as con:
            if agent_ids is None:
                counts = replace_halo_tables(
                    con,
                    snapshot,
                    sync_id=sync_id,
                    synced_at=synced_at,
                    api_requests=requests,
                    allow_large_drop=allow_large_drop,
                )
            else:
                counts = replace_agents(
                    con,
                    snapshot,
                    agent_ids=agent_ids,
                    sync_id=sync_id,
                    synced_at=synced_at,
                    api_requests=requests,
                )
    except Exception as exc:
        # Halo and warehouse errors already say what to fix; anything else is named by type.
        known = isinstance(exc, HaloError | WarehouseError)
        error = str(exc) if known else f"{type(exc).__name__}: {exc}"
        _record_failure(open_warehouse, sync_id, error, requests, client)
        raise SyncFailedError(f"sync {sync_id} failed: {error}", sync_id, requests) from exc
    return SyncResult(sync_id, counts, requests, snapshot.memberships_from, snapshot.detail_reads)


def _record_failure(
    open_warehouse: OpenWarehouse,
    sync_id: int,
    error: str,
    requests: int | None,
    client: HaloClient,
) -> None:
    try:
        with open_warehouse() as con:
            record_sync_failure(con, sync_id, error, requests)
    except (WarehouseError, duckdb.Error) as exc:
        client.log.warning(f"could not record the failure of sync {sync_id}: {exc}")
