"""What the warehouse says of its last full sync and of how old each agent's roles are."""

from __future__ import annotations

import math
from datetime import UTC
from pathlib import Path

import duckdb

from halo_pipeline.doctor.finding import Finding
from halo_pipeline.policy.freshness import RolesAgeSettings, roles_age
from halo_pipeline.policy.gate import say_duration
from halo_pipeline.warehouse import WarehouseError, connect


def last_sync(warehouse: Path, budget: int) -> list[Finding]:
    """The last full sync's requests and the least time they take under the request budget,
    and the roles' age against HALO_ROLES_MAX_AGE; nothing before the first sync."""
    max_age = RolesAgeSettings.load().roles_max_age
    if not warehouse.is_file():
        return []
    try:
        with connect(warehouse, read_only=True, wait_s=0) as con:
            synced = con.execute(
                "SELECT sync_id, api_requests, memberships_from FROM halo.sync_runs "
                "WHERE kind = 'full' AND status IN ('loaded', 'succeeded') "
                "ORDER BY sync_id DESC LIMIT 1"
            ).fetchall()
            age = roles_age(con, max_age) if synced else None
    except (WarehouseError, duckdb.CatalogException):
        return []
    if not synced or age is None:
        return []
    [(sync_id, requests, source)] = synced
    # 'budget' go at once, each later 'budget' a rolling five-minute window after.
    windows = max(0, math.ceil(requests / budget - 1))
    pace = f"at least {windows * 5} minutes" if windows else "within one 5-minute window"
    limit = f"{say_duration(max_age)} (HALO_ROLES_MAX_AGE)"
    stale = []
    if age.never_read:
        stale.append(f"{age.never_read} never read")
    if age.older:
        stale.append(f"{age.older} read more than {limit} ago")
    oldest = f"{age.oldest.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if age.oldest else "none"
    return [
        Finding(
            "last full sync",
            f"sync {sync_id}: {requests} requests (memberships: {source}); under the budget of "
            f"{budget} per 5 minutes a sync like it takes {pace}",
        ),
        Finding(
            "roles' age",
            f"{age.agents} agents, the oldest roles read {oldest}"
            + (f"; {' and '.join(stale)}" if stale else f", none older than {limit}"),
            "run halo_sync_job: a full sync reads every agent's roles" if stale else None,
        ),
    ]
