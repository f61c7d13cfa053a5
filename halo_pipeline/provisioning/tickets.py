"""One HaloITSM ticket per request: the record of the change, or the work for a person.

The ticket's summary carries a tag naming the warehouse's queue and the request. Before tickets
are created the requests are marked (`ticket_requested_at`), so a run that dies between HaloITSM
creating a ticket and the warehouse recording it looks the ticket up by its tag instead of
opening a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from halo_pipeline.halo import HaloClient, HaloServerError, HaloUnreachableError
from halo_pipeline.halo.models import Ticket, TicketType
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.queue import Queue, Request, Status, Step
from halo_pipeline.requests.ticketing import (
    DEFAULT_TICKET_TYPE,
    TicketStatuses,
    create_ticket,
    ticket_type_named,
)


def tag(queue_id: str, request: Request) -> str:
    """`[halo-pipeline 3f9a1c#17]`: this warehouse's queue and the request."""
    return f"[halo-pipeline {queue_id}#{request.request_id}]"


@dataclass(frozen=True)
class TicketText:
    summary: str
    details: str


class TicketDesk:
    """Opens, finds and closes the tickets of requests."""

    def __init__(
        self,
        client: HaloClient,
        queue: Queue,
        settings: ProvisioningSettings,
        ticket_types: list[TicketType],
        queue_id: str,
    ) -> None:
        self._client = client
        self._queue = queue
        self._queue_id = queue_id
        self._settings = settings
        self._ticket_types = ticket_types
        self.statuses = TicketStatuses(client)

    def ensure(self, requests: list[tuple[Request, TicketText]]) -> list[Request]:
        """The requests with their tickets: found (after a crash) or opened now."""
        by_id = {request.request_id: request for request, _ in requests}
        missing = [(r, text) for r, text in requests if r.ticket_id is None]
        found = []
        for request, _ in missing:
            ticket = self._find(request) if request.ticket_requested_at else None
            if ticket:
                found.append(self._opened(request, ticket, "found ticket {} opened by an "
                                          "interrupted run"))  # fmt: skip
        by_id.update((r.request_id, r) for r in self._queue.record(found))
        to_open = [
            (by_id[r.request_id], text)
            for r, text in missing
            if by_id[r.request_id].ticket_id is None
        ]
        now = datetime.now(UTC)
        marked = self._queue.record(
            [Step.note(r, "opening a HaloITSM ticket", ticket_requested_at=now) for r, _ in to_open]
        )
        opened = []
        try:
            for request, (_, text) in zip(marked, to_open, strict=True):
                ticket = self._open(request, text)
                opened.append(self._opened(request, ticket, "ticket {} opened"))
        finally:
            # Record what was opened even when a later ticket fails, so none is opened twice.
            by_id.update((r.request_id, r) for r in self._queue.record(opened))
        return [by_id[request.request_id] for request, _ in requests]

    @staticmethod
    def _opened(request: Request, ticket: Ticket, detail: str) -> Step:
        """The request's ticket, recorded with a signed statement of what the request said
        when it was opened: what approvers answering on the ticket saw."""
        signed = {"kind": "ticket", "ticket_id": ticket.id}
        return Step(request, Status(request.status), detail.format(ticket.id),
                    {"ticket_id": ticket.id}, signed=signed)  # fmt: skip

    def opened_for(self, ticket: Ticket, request: Request) -> bool:
        """Whether the pipeline opened this ticket for this request (its tag is in the summary)."""
        return tag(self._queue_id, request) in ticket.summary

    def close(self, requests: list[Request], *, look_first: bool = False) -> None:
        """Write each outcome on its ticket as an action that also closes it; the ticket's own
        text, what was asked, stays as it was. An action is a new record, so repeating one
        would repeat the note: `look_first` (a run finishing what an earlier one left) skips
        tickets that are already closed."""
        open_ones = [r for r in requests if r.ticket_id is not None and not r.ticket_closed]
        if not open_ones:
            return
        closed_id = self.statuses.id_of(self._settings.ticket_closed_status)
        closed = []
        try:
            for request in open_ones:
                ticket_id = request.ticket_id
                assert ticket_id is not None
                outcome = request.status + (f": {request.error}" if request.error else "")
                if not (look_first and self._client.get_ticket(ticket_id).status_id == closed_id):
                    self._client.add_action(ticket_id, f"Outcome: {outcome}", closed_id)
                closed.append(Step.note(request, f"ticket {ticket_id} closed: {outcome}",
                                        ticket_closed=True))  # fmt: skip
        finally:
            self._queue.record(closed)

    @property
    def ticket_type_id(self) -> int:
        wanted = self._settings.ticket_type or DEFAULT_TICKET_TYPE
        return ticket_type_named(self._ticket_types, wanted, "HALO_TICKET_TYPE")

    def _open(self, request: Request, text: TicketText) -> Ticket:
        ticket = {
            **self._settings.ticket_fields,
            "tickettype_id": self.ticket_type_id,
            "summary": f"{tag(self._queue_id, request)} {text.summary}"[:250],
            "details": text.details,
            "status_id": self.statuses.id_of(self._settings.ticket_open_status),
        }
        try:
            wanted = self._settings.ticket_type or DEFAULT_TICKET_TYPE
            return create_ticket(self._client, ticket, wanted, "HALO_TICKET_TYPE")
        except (HaloServerError, HaloUnreachableError):
            # The create may have landed before the error: look before giving up.
            created = self._find(request)
            if created is None:
                raise
            return created

    def _find(self, request: Request) -> Ticket | None:
        # Search may match loosely: keep only summaries that carry this exact tag.
        wanted = tag(self._queue_id, request)
        matches = [t for t in self._client.search_tickets(wanted) if wanted in t.summary]
        return min(matches, key=lambda ticket: ticket.id) if matches else None
