"""Which requests a provisioning run has something to do for: shared by the job and its sensor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from halo_pipeline.provisioning.queue import FINAL, Request, Status, load_requests
from halo_pipeline.provisioning.settings import ProvisioningSettings


@dataclass(frozen=True)
class Work:
    todo: list[Request]
    """Requests whose status a run acts on."""
    unclosed: list[Request]
    """Finished requests whose ticket a crashed run left open."""
    last_full_sync: datetime | None

    def due(
        self, ticket_status: Callable[[Request], str], settings: ProvisioningSettings
    ) -> list[Request]:
        """The requests a run would move now: manual tickets only once a person has finished
        with them, done requests only once a full sync has run since."""
        due = list(self.unclosed)
        for request in self.todo:
            if request.status == Status.AWAITING_TICKET:
                status = ticket_status(request)
                if status in settings.done_statuses | settings.failed_statuses:
                    due.append(request)
            elif request.status == Status.DONE:
                if self.last_full_sync and self.last_full_sync > request.updated_at:
                    due.append(request)
            else:
                due.append(request)
        return due


def load_work(con: duckdb.DuckDBPyConnection, settings: ProvisioningSettings) -> Work:
    statuses = [Status.PENDING, Status.AWAITING_TICKET, Status.DONE]
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
    [(last_full_sync,)] = con.execute(
        "SELECT max(synced_at) FROM halo.sync_runs WHERE status = 'succeeded' AND kind = 'full'"
    ).fetchall()
    return Work(todo, unclosed, last_full_sync)
