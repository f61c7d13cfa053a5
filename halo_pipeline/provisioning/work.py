"""Which requests a provisioning run has something to do for (shared by the job and its
sensor)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from halo_pipeline.provisioning import refresh
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.queue import FINAL, Request, Status, load_requests

FIRST_RETRY_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Work:
    todo: list[Request]
    """Requests whose status a run acts on."""
    unclosed: list[Request]
    """Finished requests whose ticket is still open: a run stopped before closing it."""
    last_full_sync: datetime | None
    now: datetime
    owed: refresh.Owed
    """What the warehouse still owes a refresh, whatever the requests."""

    def due(self, ticket_finished: Callable[[Request], bool]) -> list[Request]:
        """The requests a run would move now. Manual tickets count once a person has finished
        them, done requests once a full sync has run since, and a request whose last attempt
        failed after a pause that doubles with every failure."""
        due = list(self.unclosed)
        for request in self.todo:
            if request.failed_attempts:
                pause = FIRST_RETRY_AFTER * 2 ** (request.failed_attempts - 1)
                if self.now < request.updated_at + pause:
                    continue
            if request.status == Status.AWAITING_TICKET:
                if ticket_finished(request):
                    due.append(request)
            elif request.status == Status.DONE:
                if self.last_full_sync and self.last_full_sync > request.updated_at:
                    due.append(request)
            else:
                due.append(request)
        return due


def load_work(
    con: duckdb.DuckDBPyConnection,
    settings: ProvisioningSettings,
    *,
    approvals_in_halo: bool = False,
) -> Work:
    """`approvals_in_halo`: requests awaiting approval are looked at too, since their approval
    is read from HaloITSM by the run."""
    statuses = [Status.PENDING, Status.AWAITING_TICKET, Status.DONE]
    if approvals_in_halo:
        statuses.append(Status.AWAITING_APPROVAL)
    if settings.enabled:
        statuses += [Status.PLANNED, Status.APPLYING]
    todo = load_requests(con, "list_contains(?, status)", [[str(s) for s in statuses]])
    unclosed = (
        load_requests(
            con,
            "ticket_id IS NOT NULL AND NOT ticket_closed AND list_contains(?, status)",
            [[str(s) for s in FINAL]],
        )
        if settings.enabled
        else []
    )
    [(last_full_sync, now)] = con.execute(
        "SELECT max(synced_at), now() FROM halo.sync_runs "
        "WHERE status = 'succeeded' AND kind = 'full'"
    ).fetchall()
    return Work(todo, unclosed, last_full_sync, now, refresh.owed(con))
