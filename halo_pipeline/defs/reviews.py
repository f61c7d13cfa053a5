"""The `reviews` stage: access review campaigns, written by `halo-pipeline review`, shown as
assets whose metadata is each open campaign's progress, kept current by a sensor."""

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg
import duckdb

from halo_pipeline.defs.reporting import OWNERS, markdown
from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline.defs.ticks import skips_when_busy
from halo_pipeline.reviews.campaigns import progress

CAMPAIGNS = dg.AssetKey(["reviews", "campaigns"])
ITEMS = dg.AssetKey(["reviews", "items"])
DECISIONS = dg.AssetKey(["reviews", "decisions"])
NO_CAMPAIGN = "No review campaign yet."


def _table(key: dg.AssetKey, description: str, deps: list[dg.AssetKey]) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=deps,
        description=description,
        group_name="reviews",
        kinds={"duckdb"},
        owners=OWNERS,
        metadata={"dagster/table_name": ".".join(key.path)},
    )


review_tables = [
    _table(
        CAMPAIGNS,
        "Access review campaigns started with `halo-pipeline review start`: scope, snapshot "
        "sync, due date, who closed it. Its metadata is each open campaign's progress.",
        [dg.AssetKey(["access", "grants"])],
    ),
    _table(
        ITEMS,
        "The grants each campaign reviews, snapshotted from access.grants and "
        "access.grant_history at its start, with their reviewers (named, the team's managers, "
        "or the access policy's approvers; never the agent).",
        [CAMPAIGNS, dg.AssetKey(["access", "grants"]), dg.AssetKey(["access", "grant_history"])],
    ),
    _table(
        DECISIONS,
        "Every keep or revoke recorded with `review decide` or `review import` (a later one "
        "replaces an earlier until the campaign closes; both are kept), and the not_reviewed "
        "of `review close --force`. Closing files a revoke request per revoke into "
        "provisioning/requests (not drawn as lineage: the access models read the requests, "
        "and the graph would be a cycle).",
        [ITEMS],
    ),
]


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Each reviews table's rows (names from the keys above, not input)."""
    return {
        key.path[-1]: con.execute(f"SELECT count(*) FROM reviews.{key.path[-1]}").fetchall()[0][0]
        for key in (CAMPAIGNS, ITEMS, DECISIONS)
    }


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
@skips_when_busy
def review_progress_sensor(
    context: dg.SensorEvaluationContext, warehouse: DuckDBWarehouse
) -> dg.SensorResult | dg.SkipReason:
    """Reports the reviews tables as materialized, with each open campaign's progress (items,
    decided, kept, revoked, overdue), whenever a campaign starts, a decision is recorded or a
    campaign closes: within a minute of it, without a run."""
    with warehouse.get_connection(read_only=True, wait_s=0) as con:
        columns, rows = progress(con)
        counts = _counts(con) if rows else {}
    if not rows:
        return dg.SkipReason(NO_CAMPAIGN)
    # The day is part of what is reported: a campaign becomes overdue without anyone acting.
    state = json.dumps([rows, counts, datetime.now(UTC).date()], default=str)
    fingerprint = hashlib.sha256(state.encode()).hexdigest()
    if fingerprint == context.cursor:
        return dg.SkipReason("Nothing changed in the reviews tables since the last look.")
    open_rows = [row for row in rows if row[columns.index("status")] == "open"]
    campaigns = dg.AssetMaterialization(
        CAMPAIGNS,
        description="Reported by review_progress_sensor",
        metadata={
            "dagster/row_count": counts["campaigns"],
            "open_campaigns": len(open_rows),
            "progress": markdown(open_rows, [(column,) for column in columns]),
            "open": dg.MetadataValue.json(
                {
                    row[0]: dict(zip(columns[1:], map(_plain, row[1:]), strict=True))
                    for row in open_rows
                }
            ),
            "overdue_items": sum(row[columns.index("overdue")] for row in open_rows),
        },
    )
    tables = [
        dg.AssetMaterialization(key, metadata={"dagster/row_count": counts[key.path[-1]]})
        for key in (ITEMS, DECISIONS)
    ]
    return dg.SensorResult(asset_events=[campaigns, *tables], cursor=fingerprint)


def _plain(value: object) -> object:
    return value if isinstance(value, int | str | None) else str(value)


defs = dg.Definitions(assets=review_tables, sensors=[review_progress_sensor])
