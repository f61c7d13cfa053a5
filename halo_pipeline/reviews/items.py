"""A campaign's items as recorded, each with the decision it stands at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from halo_pipeline.reviews.campaigns import Campaign, grant_label, sql


@dataclass(frozen=True)
class Reviewed:
    """An item of a campaign and the decision it stands at (None: undecided)."""

    item_id: int
    grant_id: str
    agent_id: int
    agent_name: str
    agent_email: str | None
    entitlement_id: str
    resource_type: str
    entitlement_name: str
    held_since: datetime
    held_since_first_sync: bool
    first_seen_sync_id: int
    last_change: str
    reviewers: list[str]
    reviewer_source: str
    decision: str | None
    note: str | None
    decided_by: str | None
    decided_at: datetime | None

    @property
    def label(self) -> str:
        return grant_label(self)


def load_items(con: duckdb.DuckDBPyConnection, campaign: Campaign) -> list[Reviewed]:
    rows = con.execute(sql("items"), {"campaign_id": campaign.campaign_id}).fetchall()
    return [Reviewed(*row) for row in rows]
