"""Recording reviewers' decisions (one at a time, or a filled-in CSV checked whole first), and
closing a campaign: its revokes become revoke requests for provisioning_job."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb

from halo_pipeline.requests import rules
from halo_pipeline.requests.identities import Person, normal, os_user
from halo_pipeline.requests.queue import Status, insert_requests
from halo_pipeline.requests.signing import KeyRing, Unverified
from halo_pipeline.reviews.campaigns import LISTED, Campaign, ReviewRefused, load_campaign, people
from halo_pipeline.reviews.exports import unguarded
from halo_pipeline.reviews.items import Reviewed, load_items
from halo_pipeline.warehouse import transaction
from halo_pipeline.warehouse.bulk import insert_rows

KEEP, REVOKE, NOT_REVIEWED = "keep", "revoke", "not_reviewed"


@dataclass(frozen=True)
class Decision:
    item: Reviewed
    decision: str
    note: str | None
    source: str

    @property
    def changes_anything(self) -> bool:
        return (self.decision, self.note) != (self.item.decision, self.item.note)


def decide(
    con: duckdb.DuckDBPyConnection, ring: KeyRing, name: str, grant_id: str, decision: str,
    reviewer: Person, note: str | None,
) -> bool:  # fmt: skip
    """Record one reviewer's decision on one grant, signed; False when it was already
    recorded."""
    campaign, items = _open_campaign(con, name)
    found = _problem_or_item(con, campaign, items, grant_id.strip(), reviewer)
    if isinstance(found, str):
        raise ReviewRefused(found + " Nothing was recorded.")
    decided = [Decision(found, decision, _note(note), "decide")]
    return bool(_record(con, ring, campaign, decided, reviewer))


@dataclass(frozen=True)
class Imported:
    recorded: int
    unchanged: int
    undecided: int
    """Rows left blank: the reviewer has not decided them yet."""


def import_decisions(
    con: duckdb.DuckDBPyConnection, ring: KeyRing, name: str, path: Path, reviewer: Person
) -> Imported:
    """Record the decisions of a filled-in export, each signed. The whole file is checked
    first: any problem (each named with its line) and nothing is recorded."""
    campaign, items = _open_campaign(con, name)
    rows = _read_csv(path)
    decisions: list[Decision] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    undecided = unchanged = 0
    for line, row in rows:
        grant_id = (row.get("grant_id") or "").strip()
        word = (row.get("decision") or "").strip().lower()
        note = _note(unguarded(row.get("note") or ""))
        known = items.get(grant_id)
        if not word:  # not decided (yet): whoever reviews it, it is not a decision to check
            undecided += bool(known and _reviews(reviewer, known) and known.decision is None)
            continue
        if known and (word, note) == (known.decision, known.note):  # as recorded, by anyone
            unchanged += 1
            continue
        if grant_id in seen:
            problems.append(f"line {line}: grant {grant_id} is also on line {seen[grant_id]}.")
            continue
        seen[grant_id] = line
        found = _problem_or_item(con, campaign, items, grant_id, reviewer)
        if isinstance(found, str):
            problems.append(f"line {line}: {found}")
        elif word not in (KEEP, REVOKE):
            problems.append(
                f"line {line}: {rules.shorten(row.get('decision'))} is not a decision: write "
                f"{KEEP} or {REVOKE}, or leave it empty while undecided."
            )
        else:
            decisions.append(Decision(found, word, note, f"import {path.name}:{line}"))
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems[:LISTED])
        more = f"\n  ... and {len(problems) - LISTED} more" if len(problems) > LISTED else ""
        raise ReviewRefused(
            f"{path} cannot be imported ({len(problems)} problem(s)):\n{listed}{more}\n"
            "Nothing was recorded: mend the file and import it again."
        )
    recorded = _record(con, ring, campaign, decisions, reviewer)
    return Imported(recorded, unchanged + len(decisions) - recorded, undecided)


def _read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The rows, each with the line it starts on (a quoted note may span lines)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet may write a BOM
    except FileNotFoundError:
        raise ReviewRefused(f"There is no file {path}.") from None
    except UnicodeDecodeError:
        raise ReviewRefused(f"{path} is not UTF-8 text: save it as CSV UTF-8.") from None
    except OSError as error:
        raise ReviewRefused(f"{path} cannot be read: {error.strerror}.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"grant_id", "decision"} - set(reader.fieldnames or [])
    if missing:
        raise ReviewRefused(
            f"{path}, line 1: the header has no {' or '.join(sorted(missing))} column: import "
            "the file `review export --format csv` wrote, with the decision column filled in."
        )
    rows = []
    try:
        while True:
            starts = reader.line_num + 1
            rows.append((starts, next(reader)))
    except StopIteration:
        return rows
    except csv.Error as error:
        raise ReviewRefused(f"{path}, line {reader.line_num}: {error}") from None


def _open_campaign(
    con: duckdb.DuckDBPyConnection, name: str
) -> tuple[Campaign, dict[str, Reviewed]]:
    campaign = load_campaign(con, name)
    if campaign.closed_at:
        raise ReviewRefused(
            f"Campaign {campaign.name!r} was closed at {campaign.closed_at:%Y-%m-%d %H:%M %Z} by "
            f"{campaign.closed_by}: its decisions are final. Nothing was recorded."
        )
    return campaign, {item.grant_id: item for item in load_items(con, campaign)}


def _problem_or_item(
    con: duckdb.DuckDBPyConnection, campaign: Campaign, items: dict[str, Reviewed],
    grant_id: str, reviewer: Person,
) -> Reviewed | str:  # fmt: skip
    """The campaign's item for a grant that `reviewer` may decide, or what is wrong."""
    item = items.get(grant_id)
    if item is None:
        known = con.execute(
            "SELECT count(*) FROM access.grant_history WHERE grant_id = ?", [grant_id]
        ).fetchall()[0][0]
        if not known:
            return f"there is no grant {rules.shorten(grant_id)} (ids as the export writes them)."
        return f"grant {grant_id} is not in campaign {campaign.name!r} ({campaign.scope_label})."
    if reviewer.agent_id == item.agent_id:
        return f"{reviewer.label} holds {item.label}: nobody reviews their own access."
    if not _reviews(reviewer, item):
        return f"{reviewer.email} does not review {item.label}: {people(item.reviewers)} do."
    return item


def _reviews(reviewer: Person, item: Reviewed) -> bool:
    return reviewer.email in {normal(person) for person in item.reviewers}


def _note(note: str | None) -> str | None:
    return (note or "").strip() or None


def _record(
    con: duckdb.DuckDBPyConnection, ring: KeyRing, campaign: Campaign,
    decisions: list[Decision], by: Person,
) -> int:  # fmt: skip
    """Insert the decisions that change something, each signed, in one transaction; how
    many."""
    changed = [decision for decision in decisions if decision.changes_anything]
    if changed:
        with transaction(con):
            _insert_decisions(con, ring, campaign, changed, by)
    return len(changed)


def _insert_decisions(
    con: duckdb.DuckDBPyConnection, ring: KeyRing, campaign: Campaign,
    decisions: list[Decision], by: Person,
) -> None:  # fmt: skip
    """Decision rows, each with its statement: what was decided, on which item of which
    campaign, by which HaloITSM agent, named by its own id so it proves nothing for another
    row. In the caller's transaction, as one insert."""
    ids = [row[0] for row in con.execute(
        "SELECT nextval('reviews.decision_id_seq') FROM range(?)", [len(decisions)]
    ).fetchall()]  # fmt: skip
    who = os_user()
    rows = []
    for decision_id, decision in zip(ids, decisions, strict=True):
        statement, signature = ring.sign(_said(campaign, decision, by, decision_id))
        rows.append(
            [
                decision_id,
                decision.item.item_id,
                decision.decision,
                decision.note,
                by.email,
                by.agent_id,
                who,
                decision.source,
                statement,
                signature,
            ]
        )
    insert_rows(
        con,
        "reviews.decisions",
        ("decision_id", "item_id", "decision", "note", "decided_by", "decided_by_agent_id",
         "os_user", "source", "statement", "signature"),
        rows,
    )  # fmt: skip


def _said(
    campaign: Campaign, decision: Decision, by: Person, decision_id: int
) -> dict[str, object]:
    return {
        "kind": "review_decision", "campaign_id": campaign.campaign_id,
        "item_id": decision.item.item_id, "grant_id": decision.item.grant_id,
        "decision": decision.decision, "note": decision.note, "by": by.agent_id,
        "by_email": by.email, "decision_id": decision_id,
    }  # fmt: skip


def unverified(ring: KeyRing, item: Reviewed) -> str | None:
    """Why the decision an item stands at cannot be believed; None when it verifies and says
    exactly what the row says."""
    try:
        said = ring.verify(item.statement, item.signature)
    except Unverified as why:
        return str(why)
    row = {"kind": "review_decision", "item_id": item.item_id, "grant_id": item.grant_id,
           "decision": item.decision, "note": item.note, "by_email": item.decided_by,
           "decision_id": item.decision_id}  # fmt: skip
    changed = sorted(name for name, value in row.items() if said.get(name) != value)
    return (
        f"its statement does not say what the row says ({', '.join(changed)})" if changed else None
    )


@dataclass(frozen=True)
class Closed:
    campaign: Campaign
    kept: int
    revokes: list[tuple[Reviewed, int]]
    """Each revoked item with the revoke request filed for it."""
    not_reviewed: int
    gone: list[Reviewed]
    """Revoked items whose grant the last sync no longer shows as reviewed (removed, or
    removed and granted again since the snapshot): no request is filed for them."""
    tickets: int = 0
    """Reviewer tickets provisioning_job now answers with the outcome and closes."""


def close(
    con: duckdb.DuckDBPyConnection, ring: KeyRing, name: str, closer: Person, force: bool
) -> Closed:
    """Close a campaign: undecided items refuse it, unless `force` records them as
    not_reviewed; a decision whose signature does not verify counts as none (it was recorded
    before decisions were signed, or written by hand); each revoke becomes a revoke request
    linked to its item. The close itself is a signed statement of the last decision it counts."""
    campaign, items = _open_campaign(con, name)
    unsound = [problem for item in items.values() if (problem := _unsound(ring, item))]
    if unsound:
        raise ReviewRefused(
            f"Campaign {campaign.name!r} holds decisions that cannot be believed:\n"
            + "\n".join(f"  {problem}" for problem in unsound[:LISTED])
            + (f"\n  ... and {len(unsound) - LISTED} more" if len(unsound) > LISTED else "")
            + "\nTheir reviewers decide them again (`review decide` or `review import`); "
            "nothing was closed."
        )
    undecided = [item for item in items.values() if item.decision is None]
    if undecided and not force:
        listed = "\n".join(
            f"  {item.label}: {people(item.reviewers)}" for item in undecided[:LISTED]
        )
        more = f"\n  ... and {len(undecided) - LISTED} more" if len(undecided) > LISTED else ""
        raise ReviewRefused(
            f"{len(undecided)} of {len(items)} items of {campaign.name!r} are undecided "
            f"(grant: its reviewers):\n{listed}{more}\nWait for their reviewers, or close with "
            "--force to record them as not_reviewed. Nothing was closed."
        )
    revoked = [item for item in items.values() if item.decision == REVOKE]
    held = _still_held(con, revoked)
    with transaction(con):
        not_reviewed = [Decision(item, NOT_REVIEWED, None, "close --force") for item in undecided]
        if not_reviewed:
            _insert_decisions(con, ring, campaign, not_reviewed, closer)
        requests = list(zip(held, _file_revokes(con, campaign, held), strict=True))
        [(final,)] = con.execute(
            "SELECT max(d.decision_id) FROM reviews.decisions AS d JOIN reviews.items AS i "
            "USING (item_id) WHERE i.campaign_id = ?",
            [campaign.campaign_id],
        ).fetchall()
        statement, signature = ring.sign(
            {"kind": "review_close", "campaign_id": campaign.campaign_id,
             "name": campaign.name, "final_decision_id": final, "by": closer.agent_id,
             "by_email": closer.email}
        )  # fmt: skip
        con.execute(
            "UPDATE reviews.campaigns SET closed_by = ?, closed_at = now(), final_decision_id = ?, "
            "close_statement = ?, close_signature = ? WHERE campaign_id = ?",
            [closer.email, final, statement, signature, campaign.campaign_id],
        )
    counts = Counter(item.decision for item in items.values())
    filed = {item.item_id for item in held}
    gone = [item for item in revoked if item.item_id not in filed]
    [(tickets,)] = con.execute(
        "SELECT count(ticket_id) FROM reviews.reviewer_tickets WHERE campaign_id = ? "
        "AND closed_at IS NULL",
        [campaign.campaign_id],
    ).fetchall()
    return Closed(load_campaign(con, name), counts[KEEP], requests, len(undecided), gone, tickets)


def _still_held(con: duckdb.DuckDBPyConnection, revoked: list[Reviewed]) -> list[Reviewed]:
    """The revoked items whose reviewed period of the grant the last sync still shows."""
    if not revoked:
        return []
    current = set(
        con.execute(
            "SELECT grant_id, first_seen_sync_id FROM access.grant_history "
            "WHERE is_current AND list_contains(?, grant_id)",
            [[item.grant_id for item in revoked]],
        ).fetchall()
    )
    return [item for item in revoked if (item.grant_id, item.first_seen_sync_id) in current]


def _unsound(ring: KeyRing, item: Reviewed) -> str | None:
    if item.decision is None:
        return None
    why = unverified(ring, item)
    if why:
        return f"{item.label}: its decision ({item.decision} by {item.decided_by}) {why}"
    if item.decision == NOT_REVIEWED:
        return None
    if item.decision not in (KEEP, REVOKE):
        return f"{item.label}: {item.decision!r} is not a decision."
    if normal(item.decided_by) == normal(item.agent_email):
        return f"{item.label}: decided by the agent themself."
    if normal(item.decided_by) not in {normal(person) for person in item.reviewers}:
        return f"{item.label}: decided by {item.decided_by}, who does not review it."
    return None


def _file_revokes(
    con: duckdb.DuckDBPyConnection, campaign: Campaign, items: list[Reviewed]
) -> list[int]:
    return insert_requests(
        con,
        Status.PENDING,
        [
            (
                f"filed by access review {campaign.name!r} (item {item.item_id})",
                {
                    "action": "revoke",
                    "agent_id": item.agent_id,
                    "entitlement_id": item.entitlement_id,
                    "reason": f"access review {campaign.name!r}: revoked by {item.decided_by}"
                    + (f": {item.note}" if item.note else ""),
                    "requested_by": item.decided_by,
                    "review_item_id": item.item_id,
                },
            )
            for item in items
        ],
    )
