"""What `ticket_intake_sensor` looks for in HaloITSM between runs: request tickets nobody has
taken in yet, request tickets changed since they were, and answers on the tickets of requests
waiting for HaloITSM's approval. Plain Python over a client and a read-only warehouse; the
sensor only wires it up.

The cursor remembers each open request ticket's `last_update` and a fingerprint of each
waited-on ticket's approval rows, so a tick with nothing new asks for no run. Whether an
approval answer touches `last_update` is not documented, so the approval rows themselves are
read: at most `APPROVAL_READS_PER_TICK` tickets a tick, taking turns, so a long queue of
waiting requests cannot spend the tenant's request budget. News a run did not take up (it
failed, or found another run applying) is asked for again under a new run key once
`ASK_AGAIN_S` has passed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import duckdb

from halo_pipeline.halo import HaloClient
from halo_pipeline.halo.models import is_empty_date
from halo_pipeline.provisioning.intake import request_ticket_type, taken
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.catalog import Catalog

APPROVAL_READS_PER_TICK = 10
ASK_AGAIN_S = 600


@dataclass
class Cursor:
    seen: dict[int, str] = field(default_factory=dict)
    """Open request ticket id -> its `last_update` when last looked at."""
    answers: dict[int, str] = field(default_factory=dict)
    """Waited-on ticket id -> a fingerprint of its approval rows."""
    after: int = 0
    """The last waited-on ticket whose approvals were read: the next tick starts after it."""
    asked: dict[str, float] = field(default_factory=dict)
    """The news a run was asked for, and since when (epoch seconds)."""

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(
            {int(k): v for k, v in raw.get("seen", {}).items()},
            {int(k): v for k, v in raw.get("answers", {}).items()},
            int(raw.get("after", 0)),
            {str(k): float(v) for k, v in raw.get("asked", {}).items()},
        )

    def dump(self) -> str:
        return json.dumps({"seen": self.seen, "answers": self.answers, "after": self.after,
                           "asked": self.asked})  # fmt: skip


@dataclass(frozen=True)
class Found:
    news: list[tuple[int, str]]
    """(ticket id, what is new on it); empty when nothing is."""
    cursor: Cursor
    now: float = 0.0

    @property
    def digest(self) -> str:
        said = "|".join(f"{ticket_id}:{what}" for ticket_id, what in self.news)
        return hashlib.sha256(said.encode()).hexdigest()[:16]

    @property
    def run_key(self) -> str:
        """The same news starts one run, and one more each ASK_AGAIN_S while it stays news
        (a run that failed, or found another applying, did not take it up)."""
        since = self.cursor.asked.get(self.digest, self.now)
        return f"tickets-{self.digest}-{int((self.now - since) // ASK_AGAIN_S)}"

    @property
    def ticket_ids(self) -> str:
        return ",".join(str(t) for t in sorted({ticket_id for ticket_id, _ in self.news}))


@dataclass(frozen=True)
class Watched:
    """What the warehouse says, read in one short read-only connection."""

    type_id: int | None
    taken: set[int]
    waiting: list[int]
    """Tickets of requests waiting for an approval in HaloITSM, by id."""

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, settings: ProvisioningSettings) -> Watched:
        waiting = con.execute(
            "SELECT DISTINCT ticket_id FROM provisioning.requests "
            "WHERE status = 'awaiting_approval' AND ticket_id IS NOT NULL ORDER BY 1"
        ).fetchall()
        return cls(
            request_ticket_type(settings, Catalog.load(con)),
            taken(con),
            [int(ticket_id) for (ticket_id,) in waiting],
        )


def look(
    client: HaloClient,
    watched: Watched,
    cursor: Cursor,
    *,
    approvals: bool,
    results: dict[int, str] | None = None,
    now: float,
) -> Found:
    """What is new since `cursor` at `now` (epoch seconds). `approvals`: the policy takes
    approvals from HaloITSM, so answers on waited-on tickets are news too; a row is an answer
    when it carries a date, or when HALO_APPROVAL_RESULTS (`results`) says its result is not
    awaiting."""
    news: list[tuple[int, str]] = []
    seen: dict[int, str] = {}
    if watched.type_id is not None:
        for ticket in client.open_tickets(watched.type_id):
            updated = ticket.last_update or ""
            seen[ticket.id] = updated
            if ticket.id not in watched.taken:
                news.append((ticket.id, f"new, updated {updated}"))
            elif ticket.id in cursor.seen and cursor.seen[ticket.id] != updated:
                news.append((ticket.id, f"changed, updated {updated}"))
    answers = {t: a for t, a in cursor.answers.items() if t in watched.waiting}
    after = cursor.after
    if approvals and watched.waiting:
        turn = sorted(watched.waiting, key=lambda ticket_id: (ticket_id <= after, ticket_id))
        for ticket_id in turn[:APPROVAL_READS_PER_TICK]:
            rows = client.ticket_approvals(ticket_id)
            answered = sorted(
                f"{r.seq}:{r.agent_id}:{r.result}:{r.dateapproved}"
                for r in rows
                if not is_empty_date(r.dateapproved)
                or (results or {}).get(r.result if r.result is not None else -1, "awaiting")
                != "awaiting"
            )
            fingerprint = hashlib.sha256("|".join(answered).encode()).hexdigest()[:16]
            if answered and answers.get(ticket_id) != fingerprint:
                news.append((ticket_id, f"approvals answered, {fingerprint}"))
            answers[ticket_id] = fingerprint
            after = ticket_id
    found = Found(news, Cursor(seen, answers, after), now)
    if news:
        found.cursor.asked = {found.digest: cursor.asked.get(found.digest, now)}
    return found
