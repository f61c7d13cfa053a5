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
from halo_pipeline.requests.identities import os_user
from halo_pipeline.requests.queue import Status, insert_request
from halo_pipeline.reviews.campaigns import LISTED, Campaign, ReviewRefused, load_campaign, people
from halo_pipeline.reviews.exports import unguarded
from halo_pipeline.reviews.items import Reviewed, load_items
from halo_pipeline.warehouse import transaction

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
    con: duckdb.DuckDBPyConnection, name: str, grant_id: str, decision: str, by: str,
    note: str | None,
) -> bool:  # fmt: skip
    """Record one reviewer's decision on one grant; False when it was already recorded."""
    campaign, items, reviewer = _open_campaign(con, name, by)
    found = _problem_or_item(con, campaign, items, grant_id.strip(), reviewer)
    if isinstance(found, str):
        raise ReviewRefused(found + " Nothing was recorded.")
    return bool(_record(con, [Decision(found, decision, _note(note), "decide")], reviewer))


@dataclass(frozen=True)
class Imported:
    recorded: int
    unchanged: int
    undecided: int
    """Rows left blank: the reviewer has not decided them yet."""


def import_decisions(con: duckdb.DuckDBPyConnection, name: str, path: Path, by: str) -> Imported:
    """Record the decisions of a filled-in export. The whole file is checked first: any
    problem (each named with its line) and nothing is recorded."""
    campaign, items, reviewer = _open_campaign(con, name, by)
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
            undecided += bool(known and reviewer in known.reviewers and known.decision is None)
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
    recorded = _record(con, decisions, reviewer)
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
    con: duckdb.DuckDBPyConnection, name: str, by: str
) -> tuple[Campaign, dict[str, Reviewed], str]:
    campaign = load_campaign(con, name)
    reviewer = rules.email(by, "The reviewer")
    if campaign.closed_at:
        raise ReviewRefused(
            f"Campaign {campaign.name!r} was closed at {campaign.closed_at:%Y-%m-%d %H:%M %Z} by "
            f"{campaign.closed_by}: its decisions are final. Nothing was recorded."
        )
    return campaign, {item.grant_id: item for item in load_items(con, campaign)}, reviewer


def _problem_or_item(
    con: duckdb.DuckDBPyConnection, campaign: Campaign, items: dict[str, Reviewed],
    grant_id: str, reviewer: str,
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
    if reviewer not in item.reviewers:
        return f"{reviewer} does not review {item.label}: {people(item.reviewers)} do."
    return item


def _note(note: str | None) -> str | None:
    return (note or "").strip() or None


def _record(con: duckdb.DuckDBPyConnection, decisions: list[Decision], by: str) -> int:
    """Insert the decisions that change something, in one transaction; how many."""
    changed = [decision for decision in decisions if decision.changes_anything]
    if changed:
        user = os_user()
        with transaction(con):
            con.executemany(
                "INSERT INTO reviews.decisions (item_id, decision, note, decided_by, os_user, "
                "source) VALUES (?, ?, ?, ?, ?, ?)",
                [[d.item.item_id, d.decision, d.note, by, user, d.source] for d in changed],
            )
    return len(changed)


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


def close(con: duckdb.DuckDBPyConnection, name: str, by: str, force: bool) -> Closed:
    """Close a campaign: undecided items refuse it, unless `force` records them as
    not_reviewed; each revoke becomes a revoke request linked to its item."""
    campaign, items, closer = _open_campaign(con, name, by)
    unsound = [problem for item in items.values() if (problem := _unsound(item))]
    if unsound:
        raise ReviewRefused(
            f"Campaign {campaign.name!r} holds decisions no reviewer could have made (recorded "
            "with SQL?):\n"
            + "\n".join(f"  {problem}" for problem in unsound[:LISTED])
            + "\nRecord them with `review decide`; nothing was closed."
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
        if undecided:
            con.executemany(
                "INSERT INTO reviews.decisions (item_id, decision, decided_by, os_user, source) "
                "VALUES (?, ?, ?, ?, 'close --force')",
                [[item.item_id, NOT_REVIEWED, closer, os_user()] for item in undecided],
            )
        requests = [(item, _file_revoke(con, campaign, item)) for item in held]
        con.execute(
            "UPDATE reviews.campaigns SET closed_by = ?, closed_at = now(), final_decision_id = "
            "(SELECT max(d.decision_id) FROM reviews.decisions AS d JOIN reviews.items AS i "
            "USING (item_id) WHERE i.campaign_id = ?) WHERE campaign_id = ?",
            [closer, campaign.campaign_id, campaign.campaign_id],
        )
    counts = Counter(item.decision for item in items.values())
    gone = [item for item in revoked if item not in held]
    return Closed(load_campaign(con, name), counts[KEEP], requests, len(undecided), gone)


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


def _unsound(item: Reviewed) -> str | None:
    if item.decision is None or item.decision == NOT_REVIEWED:
        return None
    if item.decision not in (KEEP, REVOKE):
        return f"{item.label}: {item.decision!r} is not a decision."
    if item.decided_by == item.agent_email:
        return f"{item.label}: decided by the agent themself."
    if item.decided_by not in item.reviewers:
        return f"{item.label}: decided by {item.decided_by}, who does not review it."
    return None


def _file_revoke(con: duckdb.DuckDBPyConnection, campaign: Campaign, item: Reviewed) -> int:
    why = f": {item.note}" if item.note else ""
    return insert_request(
        con,
        status=Status.PENDING,
        detail=f"filed by access review {campaign.name!r} (item {item.item_id})",
        action="revoke",
        agent_id=item.agent_id,
        entitlement_id=item.entitlement_id,
        reason=f"access review {campaign.name!r}: revoked by {item.decided_by}{why}",
        requested_by=item.decided_by,
        review_item_id=item.item_id,
    )
