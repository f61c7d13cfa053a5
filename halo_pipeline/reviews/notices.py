"""A campaign's reviewers told in HaloITSM (`review start --notify`): one ticket per reviewer,
assigned to them, listing their grants with counts and the due date, their review sheet
attached; once the campaign closes, each ticket gets an action with the outcome that also
closes it.

`serve` does whatever is owed, from the command that started the campaign and from every
provisioning_job run, so a network error leaves work for the next, never half of it lost: a
row is marked (`opening_at`) before its ticket is created and found again by its tag, each
attachment is recorded once it is on the ticket, and `review close` only records the outcome,
leaving the tickets to the run. Writes follow HALO_PROVISIONING and HALO_TICKETING; otherwise
`serve` says what it would post. Plain Python.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from halo_pipeline.halo import HaloClient, HaloError
from halo_pipeline.halo.errors import RUN_LEVEL_ERRORS
from halo_pipeline.requests.catalog import Catalog
from halo_pipeline.requests.queue import queue_id
from halo_pipeline.requests.ticketing import (
    DEFAULT_TICKET_TYPE,
    TicketSettings,
    TicketStatuses,
    create_ticket,
    ticket_type_named,
)
from halo_pipeline.reviews.campaigns import Campaign, load_campaign
from halo_pipeline.reviews.exports import decisions_csv, page_name, render, when
from halo_pipeline.reviews.items import Reviewed, load_items
from halo_pipeline.warehouse import OpenWarehouse, transaction

PAGE_LIMIT = 1_000_000
"""A reviewer's HTML page is attached when it is at most this many bytes (about 2,000 grants);
the CSV always is. Halo documents no limit of its own; a larger page is slow to open, and
`review export --format html` still writes it."""
LISTED = 25
"""Grants a ticket's text lists; the attached sheet has them all."""


@dataclass(frozen=True)
class Owed:
    campaign: Campaign
    reviewer: str
    agent_id: int
    items: int
    ticket_id: int | None
    opening_at: datetime | None
    attached: list[str]

    @property
    def files(self) -> tuple[str, str]:
        """The names of the reviewer's sheet and page on their ticket."""
        page = f"review-{self.campaign.name}-{page_name(self.reviewer)}"
        return page.removesuffix(".html") + ".csv", page


def owed(con: duckdb.DuckDBPyConnection) -> list[Owed]:
    """Tickets to open or finish (open campaigns), and to close (closed ones)."""
    try:
        rows = con.execute(
            "SELECT c.name, t.reviewer, t.agent_id, t.items, t.ticket_id, t.opening_at, "
            "t.attached FROM reviews.reviewer_tickets AS t JOIN reviews.campaigns AS c "
            "USING (campaign_id) WHERE t.closed_at IS NULL "
            "AND (t.notified_at IS NULL OR c.closed_at IS NOT NULL) "
            "ORDER BY t.campaign_id, t.reviewer"
        ).fetchall()
    except duckdb.CatalogException:  # a warehouse no writer has upgraded yet, read-only
        return []
    return [Owed(load_campaign(con, row[0]), *row[1:]) for row in rows]


@dataclass
class Served:
    said: list[str] = field(default_factory=list)
    """What was posted, or in a dry run what would be, one line each."""
    failed: list[str] = field(default_factory=list)
    """Tickets HaloITSM refused or could not take now, and why: the next run tries again."""


def serve(
    client: HaloClient | None,
    open_warehouse: OpenWarehouse,
    settings: TicketSettings,
    log: Callable[[str], Any],
) -> Served:
    """Open, finish or close every owed reviewer ticket; `client` None, or settings that do not
    allow writing tickets, make it a dry run that says what it would post. One reviewer's
    ticket that HaloITSM refuses is said and left for the next run; an error about the
    connection stops it all."""
    served = Served()
    with open_warehouse() as con:
        work = owed(con)
        if not work:
            return served
        tag_id = queue_id(con)
        catalog = Catalog.load(con)
        items = {o.campaign.campaign_id: load_items(con, o.campaign) for o in work}
    writes = client is not None and settings.writes_tickets
    desk = _Desk(client, open_warehouse, settings, catalog, tag_id) if writes else None
    for notice in work:
        mine = [i for i in items[notice.campaign.campaign_id] if notice.reviewer in i.reviewers]
        try:
            said = _serve(desk, notice, mine)
        except RUN_LEVEL_ERRORS:
            raise
        except HaloError as error:
            served.failed.append(f"{notice.reviewer}'s ticket: {error}")
            continue
        served.said.append(said)
        log(said)
    return served


def _serve(desk: _Desk | None, notice: Owed, mine: list[Reviewed]) -> str:
    if notice.campaign.closed_at is not None:
        outcome = _outcome(notice, mine)
        if desk is not None:
            return desk.close(notice, outcome)
        ticket = f"ticket {notice.ticket_id}" if notice.ticket_id else "no ticket"
        return f"would close {ticket} for {notice.reviewer}: {outcome}"
    if desk is not None:
        return desk.open(notice, mine)
    return (
        f"would open a ticket for {notice.reviewer} (agent {notice.agent_id}) with "
        f"{notice.items} grant(s) and attach {', '.join(_attachments(notice, mine))}"
    )


def _attachments(notice: Owed, mine: list[Reviewed]) -> dict[str, bytes]:
    """The reviewer's sheet and, when small enough, their page."""
    sheet, page = notice.files
    files = {sheet: decisions_csv(mine).encode()}
    html = render("reviewer.html.j2", campaign=notice.campaign, reviewer=notice.reviewer,
                  items=mine).encode()  # fmt: skip
    if len(html) <= PAGE_LIMIT:
        files[page] = html
    return files


def _details(notice: Owed, mine: list[Reviewed], files: dict[str, bytes]) -> str:
    campaign = notice.campaign
    by_access = Counter(f"{item.resource_type} {item.entitlement_name}" for item in mine)
    lines = [
        f"Access review {campaign.name}: {len(mine)} grant(s) of {campaign.scope_label} for "
        f"you, {notice.reviewer}, to review, as HaloITSM had them at {when(campaign.synced_at)} "
        f"(sync {campaign.sync_id}). Due: {campaign.due_date or 'no due date'}.",
        "",
        "By access:",
        *(f"  {count} x {access}" for access, count in sorted(by_access.items())),
        "",
        "Your grants:",
        *(
            f"  {item.grant_id}: {item.agent_name} ({item.agent_email or 'no email'}), "
            f"{item.resource_type} {item.entitlement_name}"
            for item in mine[:LISTED]
        ),  # fmt: skip
    ]
    if len(mine) > LISTED:
        lines.append(f"  ... and {len(mine) - LISTED} more (every one is in the attached sheet)")
    sheet, page = notice.files
    lines += [
        "",
        f"Decide each keep or revoke: fill in the decision and note columns of the attached "
        f"{sheet}, then `halo-pipeline review import {campaign.name} {sheet} --by "
        f"{notice.reviewer}`; or one at a time with `halo-pipeline review decide`.",
        f"The attached {page} shows the same grants."
        if page in files
        else f"Your page is over {PAGE_LIMIT:,} bytes, so it is not attached: "
        f"`halo-pipeline review export {campaign.name} --format html --reviewer "
        f"{notice.reviewer} --out PAGE.html` writes it.",
    ]
    return "\n".join(lines)


def _outcome(notice: Owed, mine: list[Reviewed]) -> str:
    campaign = notice.campaign
    counts = Counter(item.decision or "undecided" for item in mine)
    said = ", ".join(f"{n} {decision.replace('_', ' ')}" for decision, n in sorted(counts.items()))
    return (
        f"Outcome: campaign {campaign.name} closed by {campaign.closed_by} at "
        f"{when(campaign.closed_at)}; of your {len(mine)} grant(s): {said}. Revoked grants are "
        "removed by revoke requests, each with its own record."
    )


_UPDATES = {
    change: f"UPDATE reviews.reviewer_tickets SET {columns} WHERE campaign_id = ? AND reviewer = ?"
    for change, columns in {
        "opening": "opening_at = now()",
        "ticket": "ticket_id = ?",
        "attached": "attached = ?",
        "notified": "notified_at = now()",
        "closed": "closed_at = now(), outcome = ?",
    }.items()
}
"""Each step recorded as soon as HaloITSM has it."""


class _Desk:
    """Writes to HaloITSM, each recorded in the warehouse as soon as it is made."""

    def __init__(self, client: HaloClient | None, open_warehouse: OpenWarehouse,
                 settings: TicketSettings, catalog: Catalog, tag_id: str) -> None:  # fmt: skip
        assert client is not None
        self._client, self._open, self._settings = client, open_warehouse, settings
        self._catalog, self._tag_id = catalog, tag_id
        self._statuses = TicketStatuses(client)

    def _tag(self, notice: Owed) -> str:
        return (
            f"[halo-pipeline {self._tag_id} review {notice.campaign.campaign_id}/{notice.agent_id}]"
        )

    def _record(self, notice: Owed, change: str, *values: Any) -> None:
        with self._open() as con, transaction(con):
            con.execute(_UPDATES[change], [*values, notice.campaign.campaign_id, notice.reviewer])

    def open(self, notice: Owed, mine: list[Reviewed]) -> str:
        files = _attachments(notice, mine)
        ticket_id = notice.ticket_id or self._find(notice)
        if ticket_id is None:
            self._record(notice, "opening")
            ticket_id = self._create(notice, mine, files).id
            self._record(notice, "ticket", ticket_id)
        attached = list(notice.attached)
        for name, content in files.items():
            if name not in attached:
                self._client.add_attachment(ticket_id, name, content)
                attached.append(name)
                self._record(notice, "attached", attached)
        self._record(notice, "notified")
        return (
            f"ticket {ticket_id} for {notice.reviewer} (agent {notice.agent_id}): "
            f"{notice.items} grant(s), attached {', '.join(attached)}"
        )

    def _find(self, notice: Owed) -> int | None:
        """The ticket of a run that died before recording it; only a marked row can have one."""
        if notice.opening_at is None:
            return None
        wanted = self._tag(notice)
        found = [t.id for t in self._client.search_tickets(wanted) if wanted in t.summary]
        if found:
            self._record(notice, "ticket", min(found))
        return min(found) if found else None

    def _create(self, notice: Owed, mine: list[Reviewed], files: dict[str, bytes]) -> Any:
        settings = self._settings
        wanted = settings.review_ticket_type or settings.ticket_type or DEFAULT_TICKET_TYPE
        setting = "HALO_REVIEW_TICKET_TYPE" if settings.review_ticket_type else "HALO_TICKET_TYPE"
        due = f", due {notice.campaign.due_date}" if notice.campaign.due_date else ""
        ticket = {
            **settings.ticket_fields,
            "tickettype_id": ticket_type_named(self._catalog.ticket_types, wanted, setting),
            "summary": f"{self._tag(notice)} Access review {notice.campaign.name}: "
            f"{len(mine)} grant(s) for you to review{due}"[:250],
            "details": _details(notice, mine, files),
            "status_id": self._statuses.id_of(settings.ticket_open_status),
            "agent_id": notice.agent_id,
        }
        return create_ticket(self._client, ticket, wanted, setting)

    def close(self, notice: Owed, outcome: str) -> str:
        # A run that died between HaloITSM creating the ticket and recording it left it open.
        ticket_id = notice.ticket_id or self._find(notice)
        if ticket_id is not None:
            closed = self._statuses.id_of(self._settings.ticket_closed_status)
            self._client.add_action(ticket_id, outcome, closed)
        self._record(notice, "closed", outcome)
        if ticket_id is None:
            return f"no ticket was opened for {notice.reviewer}: nothing to close"
        return f"ticket {ticket_id} closed: {outcome}"
