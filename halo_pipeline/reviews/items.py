"""A campaign's items as recorded, each with the decision it stands at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from halo_pipeline.reviews.campaigns import Campaign, Grant, sql


@dataclass(frozen=True)
class Reviewed(Grant):
    """An item of a campaign and the decision it stands at (None: undecided)."""

    item_id: int
    reviewers: list[str]
    reviewer_source: str
    decision: str | None
    note: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_id: int | None = None
    statement: str | None = None
    """The decision's signed statement: what the reviewer decided, bound to this item."""
    signature: str | None = None


def load_items(con: duckdb.DuckDBPyConnection, campaign: Campaign) -> list[Reviewed]:
    rows = con.execute(sql("items"), {"campaign_id": campaign.campaign_id}).fetchall()
    return [Reviewed(*row) for row in rows]
