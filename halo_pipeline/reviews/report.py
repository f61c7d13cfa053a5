"""The evidence pack for auditors: what was in scope as of which sync, who decided what and
when, the revoke requests that followed (status, ticket), and which removals a later sync
confirmed. Regenerated at any time; after provisioning it shows the outcomes.

A removal is confirmed only while the latest sync that read the agent after the revoke was
applied finds the grant absent (sql/outcomes.sql); a grant gone without the revoke applied, or
held again since, is not."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from halo_pipeline.requests.signing import KeyRing
from halo_pipeline.reviews.campaigns import Campaign, load_campaign, sql
from halo_pipeline.reviews.decisions import KEEP, NOT_REVIEWED, REVOKE, unverified
from halo_pipeline.reviews.exports import csv_chunks, render_chunks, when, writable, write
from halo_pipeline.reviews.items import Reviewed, load_items

EVIDENCE_COLUMNS = (
    "campaign", "scope", "snapshot_sync_id", "snapshot_at", "item_id", "grant_id", "agent_id",
    "agent_name", "entitlement_id", "entitlement_name", "held_since", "held_at_first_sync",
    "reviewers", "reviewer_source", "decision", "note", "decided_by", "decided_at",
    "request_id", "request_status", "ticket_id", "removed_in_sync_id", "removed_at", "removal",
    "signature",
)  # fmt: skip
CONFIRMED = "confirmed"
# A revoke the close filed no request for: the grant was no longer held as it was reviewed.
NO_REQUEST = "not confirmed: no revoke request"


@dataclass(frozen=True)
class Outcome:
    item: Reviewed
    request_id: int | None
    request_status: str | None
    ticket_id: int | None
    removed_in_sync_id: int | None
    """The sync that found the period of the grant the item reviewed ended, for whatever reason."""
    removed_at: datetime | None
    removal: str | None
    """For a revoke: `confirmed`, `held again since sync N`, or `not ...` saying why not."""


@dataclass(frozen=True)
class Summary:
    items: int
    kept: int
    revoked: int
    not_reviewed: int
    undecided: int
    confirmed: int
    """Revokes applied, whose grant the latest sync to read the agent since found absent."""
    by_reviewer: list[tuple[str, dict[str, int]]]


def outcomes(con: duckdb.DuckDBPyConnection, campaign: Campaign) -> list[Outcome]:
    items = {item.item_id: item for item in load_items(con, campaign)}
    rows = con.execute(sql("outcomes"), {"campaign_id": campaign.campaign_id}).fetchall()
    found = []
    for item_id, request_id, status, ticket_id, removed_in, removed_at, removal in rows:
        item = items[item_id]
        if request_id is None and item.decision == REVOKE:
            removal = NO_REQUEST
        found.append(Outcome(item, request_id, status, ticket_id, removed_in, removed_at, removal))
    return found


def summarise(rows: list[Outcome]) -> Summary:
    decisions = Counter(row.item.decision for row in rows)
    reviewers: dict[str, Counter[str]] = {}
    for row in rows:
        if row.item.decision in (KEEP, REVOKE):
            reviewers.setdefault(row.item.decided_by or "", Counter())[row.item.decision] += 1
    return Summary(
        items=len(rows),
        kept=decisions[KEEP],
        revoked=decisions[REVOKE],
        not_reviewed=decisions[NOT_REVIEWED],
        undecided=decisions[None],
        confirmed=sum(
            1 for row in rows if row.item.decision == REVOKE and row.removal == CONFIRMED
        ),
        by_reviewer=[
            (who, {"decisions": counts.total(), "keep": counts[KEEP], "revoke": counts[REVOKE]})
            for who, counts in sorted(reviewers.items())
        ],
    )


def write_report(
    con: duckdb.DuckDBPyConnection, name: str, folder: Path, replace: bool = False,
    ring: KeyRing | None = None,
) -> tuple[list[Path], Summary]:  # fmt: skip
    """`report.html` and `report.csv` in `folder`; the paths and the summary. Each decision
    says whether its signature verifies under `ring` (without one, or for what a lost key
    signed: unverifiable)."""
    campaign = load_campaign(con, name)
    writable(folder, replace)
    rows = outcomes(con, campaign)
    summary = summarise(rows)
    signed = {row.item.item_id: signature(ring, row.item) for row in rows}
    html = render_chunks(
        "report.html.j2", campaign=campaign, rows=rows, summary=summary, signed=signed
    )
    evidence = csv_chunks(
        EVIDENCE_COLUMNS,
        (
            [
                campaign.name,
                campaign.scope_label,
                campaign.sync_id,
                when(campaign.synced_at),
                row.item.item_id,
                row.item.grant_id,
                row.item.agent_id,
                row.item.agent_name,
                row.item.entitlement_id,
                f"{row.item.resource_type} {row.item.entitlement_name}",
                when(row.item.held_since),
                row.item.held_since_first_sync,
                " ".join(row.item.reviewers),
                row.item.reviewer_source,
                row.item.decision or "",
                row.item.note or "",
                row.item.decided_by or "",
                when(row.item.decided_at),
                row.request_id,
                row.request_status,
                row.ticket_id,
                row.removed_in_sync_id,
                when(row.removed_at),
                row.removal or "",
                signed[row.item.item_id],
            ]  # fmt: skip
            for row in rows
        ),
    )
    return [write(folder / "report.html", html), write(folder / "report.csv", evidence)], summary


def signature(ring: KeyRing | None, item: Reviewed) -> str:
    """Whether the decision an item stands at can be believed: `verified`, or why not."""
    if item.decision is None:
        return ""
    if item.statement is None:
        return "not signed (recorded before decisions were signed, or by hand)"
    if ring is None:
        return "unverifiable: no signing key to verify it with"
    why = unverified(ring, item)
    return f"unverifiable: {why}" if why else "verified"
