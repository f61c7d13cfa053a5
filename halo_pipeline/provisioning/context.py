"""What every part of a provisioning run shares: HaloITSM, the queue, tickets, the outcomes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from halo_pipeline.halo import HaloClient
from halo_pipeline.halo.models import Agent
from halo_pipeline.policy.gate import Gate
from halo_pipeline.provisioning import refresh
from halo_pipeline.provisioning.planning import ticket_text
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import TicketDesk, TicketText
from halo_pipeline.requests.catalog import Catalog
from halo_pipeline.requests.queue import FINAL, Queue, Request, Status, Step


@dataclass
class RunSummary:
    outcomes: dict[int, str] = field(default_factory=dict)
    """Each request this run moved, and the status it left it in."""
    touched_agents: set[int] = field(default_factory=set)
    """Agents this run wrote or read back, and those an earlier run left owed: a targeted sync
    brings them into the warehouse."""
    access_behind: bool = False
    """A sync's `halo` tables are newer than `access.*`: the refresh rebuilds the models."""
    skipped: str | None = None
    """Why this run wrote nothing: another run was applying requests to the warehouse."""

    @property
    def refresh_due(self) -> bool:
        return bool(self.touched_agents) or self.access_behind

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())


@dataclass
class RunContext:
    client: HaloClient
    queue: Queue
    tickets: TicketDesk
    catalog: Catalog
    settings: ProvisioningSettings
    log: Any
    sleep: Callable[[float], None] = time.sleep
    summary: RunSummary = field(default_factory=RunSummary)
    gate: Gate = field(default_factory=lambda: Gate(None))
    """The access policy, as this run resolved it."""

    def record(self, steps: list[Step]) -> list[Request]:
        updated = self.queue.record(steps)
        self.summary.outcomes.update((r.request_id, r.status) for r in updated)
        return updated

    def finish(self, steps: list[Step], *, close_tickets: bool = True) -> None:
        """Record final outcomes, then write each on its ticket and close it."""
        finished = self.record(steps)
        for step in steps:
            if step.to == Status.FAILED:
                self.log.warning(f"request {step.request.request_id} failed: {step.detail}")
        # A dry run writes nothing to HaloITSM, not even to a ticket an earlier run opened.
        if close_tickets and self.settings.enabled:
            with_tickets = [r for r in finished if r.ticket_id is not None and not r.ticket_closed]
            self.tickets.close(with_tickets)

    def fail(self, requests: list[Request], reason: str, *, close_tickets: bool = True) -> None:
        self.finish(
            [Step(r, Status.FAILED, reason, {"error": reason}) for r in requests],
            close_tickets=close_tickets,
        )

    def ticketed(self, requests: list[Request]) -> list[Request]:
        """The requests with a ticket each, when ticketing is on and writes are allowed."""
        if not (self.settings.enabled and self.settings.ticketing):
            return requests
        return self.tickets.ensure([(r, self.ticket_text(r)) for r in requests])

    def ticket_text(self, request: Request, manual: bool = False) -> TicketText:
        return ticket_text(self.catalog, self.settings, request, manual)

    def verify(self, agent_id: int, done: Callable[[Agent], bool]) -> Agent:
        """Read the agent until `done` holds (Halo may take a few seconds to show a write) or
        the attempts run out; the last read either way."""
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.verify_attempts),
            wait=wait_fixed(self.settings.verify_interval_s),
            retry=retry_if_result(lambda agent: not done(agent)),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            sleep=self.sleep,
        )
        agent = retrying(self.client.get_agent, agent_id)
        self.touch(agent_id)
        return agent

    def touch(self, agent_id: int) -> None:
        """The agent is owed a refresh, durably, before the request that changed it is final."""
        if agent_id not in self.summary.touched_agents:
            with self.queue.open_warehouse() as con:
                refresh.record_changed(con, agent_id, self.queue.run_id)
            self.summary.touched_agents.add(agent_id)

    def is_final(self, request: Request) -> bool:
        return self.summary.outcomes.get(request.request_id, request.status) in FINAL
