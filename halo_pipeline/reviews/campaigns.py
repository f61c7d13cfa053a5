"""Starting a campaign: the grants in its scope as the last sync saw them, each with who
reviews it, and reading a campaign back by name."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from importlib.resources import files

import duckdb

from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline.policy.gate import Gate
from halo_pipeline.requests import rules
from halo_pipeline.requests.catalog import Catalog
from halo_pipeline.requests.identities import normal, os_user, typed_email
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.warehouse import transaction
from halo_pipeline.warehouse.bulk import insert_rows

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
LISTED = 20
"""Items a refusal lists before saying how many more there are."""


class ReviewRefused(RequestRefused):
    """A review command cannot do what was asked; the message says why and what to do."""


def sql(name: str) -> str:
    return files("halo_pipeline.reviews").joinpath("sql", f"{name}.sql").read_text()


@dataclass(frozen=True)
class Campaign:
    campaign_id: int
    name: str
    scope: str
    scope_label: str
    sync_id: int
    synced_at: datetime
    due_date: date | None
    reviewer: str | None
    started_by: str | None
    started_at: datetime
    closed_by: str | None
    closed_at: datetime | None


def load_campaign(con: duckdb.DuckDBPyConnection, name: str) -> Campaign:
    try:
        rows = con.execute(
            "SELECT campaign_id, name, scope, scope_label, sync_id, synced_at, due_date, "
            "reviewer, started_by, started_at, closed_by, closed_at FROM reviews.campaigns "
            "WHERE name = ?",
            [name],
        ).fetchall()
    except duckdb.CatalogException:  # a warehouse older than reviews, opened read-only
        rows = []
    if rows:
        return Campaign(*rows[0])
    names = [row[0] for row in _names(con)]
    raise ReviewRefused(
        f"There is no review campaign {rules.shorten(name)}. "
        + (f"Campaigns: {', '.join(names)}." if names else "Start one with `review start`.")
    )


def _names(con: duckdb.DuckDBPyConnection) -> list[tuple[str]]:
    try:
        return con.execute("SELECT name FROM reviews.campaigns ORDER BY campaign_id").fetchall()
    except duckdb.CatalogException:
        return []


def progress(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple]]:
    """Every campaign's progress (reviews/sql/progress.sql): its columns and rows; none in a
    warehouse no writer has upgraded to the reviews tables yet."""
    try:
        cursor = con.execute(sql("progress"))
    except duckdb.CatalogException:
        return [], []
    return [column[0] for column in cursor.description], cursor.fetchall()


@dataclass(frozen=True)
class Scope:
    key: str
    """What the campaign table records: privileged, all, role:<guid>, team:<id>."""
    label: str
    entitlement_ids: list[str] | None
    """None: every grant."""


def resolve_scope(con: duckdb.DuckDBPyConnection, scope: str) -> Scope:
    """`privileged` (the policy's privileged roles), `all`, `role:<name or id>` or
    `team:<name or id>`, named as the last sync has them."""
    kind, _, ref = scope.partition(":")
    if scope == "all":
        return Scope("all", "every grant", None)
    if scope == "privileged":
        gate = Gate.load(con)
        if gate.broken:
            raise ReviewRefused(f"The access policy cannot be used: {gate.broken}")
        privileged = gate.resolved.privileged if gate.resolved else frozenset()
        if not privileged:
            raise ReviewRefused(
                "The access policy names no privileged roles (privileged_roles), so "
                "--scope privileged has nothing to review."
            )
        names = ", ".join(sorted(gate.resolved.names[role] for role in privileged))  # type: ignore[union-attr]
        catalog = Catalog.load(con)
        ids = sorted(e.entitlement_id for e in catalog.of_kind("role") if e.target in privileged)
        return Scope("privileged", f"privileged roles ({names})", ids)
    if kind in ("role", "team") and ref.strip():
        catalog = Catalog.load(con)
        found = catalog.find_role(ref) if kind == "role" else catalog.find_team(ref)
        return Scope(f"{kind}:{found.target}", found.label, [found.entitlement_id])
    raise ReviewRefused(
        f"{rules.shorten(scope)} is not a scope: write privileged, all, role:<name or id> or "
        "team:<name or id>."
    )


def people(emails: list[str], shown: int = 3) -> str:
    """Reviewers as a message names them: the first few, and how many more."""
    more = len(emails) - shown
    return ", ".join(emails[:shown]) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class Grant:
    """A grant as a campaign snapshots it (reviews/sql/snapshot.sql)."""

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

    @property
    def label(self) -> str:
        """As a refusal lists it: its id, and whose and what it is."""
        return (
            f"{self.grant_id} ({self.agent_name}: {self.resource_type} {self.entitlement_name!r})"
        )


@dataclass(frozen=True)
class Item(Grant):
    """A grant in scope and its managers, before the campaign is recorded."""

    managers: list[str]

    def reviewers(self, named: str | None, approvers: list[str]) -> tuple[list[str], str]:
        """Who reviews this grant and by which rule: the named reviewer, else the managers,
        else the policy's approvers; never the agent themself. ([], '') when nobody."""
        managers = "team managers" if self.resource_type == "team" else "default team managers"
        for source, people in (
            ("the named reviewer", [named] if named else []),
            (managers, self.managers),
            ("policy approvers", approvers),
        ):
            people = [person for person in people if normal(person) != normal(self.agent_email)]
            if people:
                return people, source
        return [], ""


@dataclass(frozen=True)
class Started:
    campaign: Campaign
    items: int
    reviewers: int
    by_source: dict[str, int]
    roles_unread: list[tuple[int, str]]
    """Agents whose roles were never read from HaloITSM, when the scope takes in roles: what
    they hold of it is not in the campaign."""


def start(
    con: duckdb.DuckDBPyConnection, name: str, scope: str, due: date | None,
    reviewer: str | None, notify: bool = False,
) -> Started:  # fmt: skip
    """Snapshot the grants in scope into a new campaign's items, each with its reviewers;
    with `notify`, each reviewer (who must be an enabled agent) is owed a ticket."""
    name = name.strip()
    if not _NAME.match(name):
        raise ReviewRefused(
            f"{rules.shorten(name)} is not a campaign name: up to 80 letters, digits, dots, "
            "dashes and underscores (no spaces), first a letter or digit: e.g. 2026-q4-admins."
        )
    if (name,) in _names(con):
        raise ReviewRefused(f"A campaign named {name!r} exists already: choose another name.")
    named = typed_email(reviewer, "The reviewer") if reviewer else None
    latest = _latest_sync(con)
    found = resolve_scope(con, scope)
    named_ids = None
    if named:  # compared as the rules compare people: by normalised address
        agents = con.execute("SELECT agent_id, email FROM halo.agents").fetchall()
        named_ids = [agent_id for agent_id, email in agents if normal(email) == normal(named)]
    rows = con.execute(
        sql("snapshot"), {"entitlements": found.entitlement_ids, "named_ids": named_ids}
    ).fetchall()
    items = [Item(*row) for row in rows]
    if not items:
        raise ReviewRefused(f"Nobody holds {found.label} as of the last sync: nothing to review.")
    approvers = _approvers(items, named)
    assigned = [(item, *item.reviewers(named, approvers)) for item in items]
    nobody = [item for item, people, _ in assigned if not people]
    if nobody:
        raise ReviewRefused(
            f"{len(nobody)} of {len(items)} grants have nobody to review them (no enabled "
            "manager of the team, and no approver in the access policy other than the agent):\n"
            + "\n".join(f"  {item.label}" for item in nobody[:LISTED])
            + (f"\n  ... and {len(nobody) - LISTED} more" if len(nobody) > LISTED else "")
            + "\nName one with --reviewer EMAIL, or list approvers in the access policy."
        )
    counts = Counter(person for _, people, _ in assigned for person in people)
    agents = reviewer_agents(Catalog.load(con), set(counts)) if notify else {}
    with transaction(con):
        [(campaign_id,)] = con.execute(
            "INSERT INTO reviews.campaigns (name, scope, scope_label, sync_id, synced_at, "
            "due_date, reviewer, started_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING campaign_id",
            [name, found.key, found.label, *latest[0], due, named, os_user()],
        ).fetchall()
        insert_rows(
            con,
            "reviews.items",
            ("campaign_id", "grant_id", "agent_id", "agent_name", "agent_email",
             "entitlement_id", "resource_type", "entitlement_name", "held_since",
             "held_since_first_sync", "first_seen_sync_id", "last_change", "reviewers",
             "reviewer_source"),
            [
                [campaign_id, item.grant_id, item.agent_id, item.agent_name, item.agent_email,
                 item.entitlement_id, item.resource_type, item.entitlement_name,
                 item.held_since, item.held_since_first_sync, item.first_seen_sync_id,
                 item.last_change, people, source]
                for item, people, source in assigned
            ],
        )  # fmt: skip
        if notify:
            assign_tickets(con, campaign_id, counts, agents)
    by_source: dict[str, int] = {}
    for _, _, source in assigned:
        by_source[source] = by_source.get(source, 0) + 1
    unread = []
    if found.entitlement_ids is None or any(e.startswith("role:") for e in found.entitlement_ids):
        unread = con.execute(
            "SELECT agent_id, name FROM halo.agents WHERE NOT roles_known ORDER BY agent_id"
        ).fetchall()
    return Started(load_campaign(con, name), len(items), len(counts), by_source, unread)


def reviewer_agents(catalog: Catalog, reviewers: set[str]) -> dict[str, int]:
    """Each reviewer as the enabled HaloITSM agent their ticket is assigned to."""
    found, problems = {}, []
    for reviewer in sorted(reviewers):
        try:
            agent = catalog.find_agent(reviewer)
        except RequestRefused:
            problems.append(f"{reviewer} is not a HaloITSM agent (as of the last sync)")
            continue
        if agent.is_disabled:
            problems.append(f"{reviewer} is {agent.label}")
            continue
        found[reviewer] = agent.agent_id
    if problems:
        raise ReviewRefused(
            "--notify assigns each reviewer a ticket, which needs an enabled agent: "
            + "; ".join(problems)
            + ". Name another --reviewer, or start without --notify and send the pages yourself."
        )
    return found


def assign_tickets(con: duckdb.DuckDBPyConnection, campaign_id: int, counts: dict[str, int],
           agents: dict[str, int]) -> None:  # fmt: skip
    """The tickets owed to a new campaign's reviewers (in the caller's transaction)."""
    insert_rows(
        con,
        "reviews.reviewer_tickets",
        ("campaign_id", "reviewer", "agent_id", "items"),
        [[campaign_id, reviewer, agents[reviewer], n] for reviewer, n in sorted(counts.items())],
    )


def _latest_sync(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The sync whose grants are snapshotted: the latest that access.grants was built from.
    A sync loaded since, whose models are not rebuilt yet, is not what the campaign reviews."""
    try:
        latest = con.execute(
            "SELECT sync_id, synced_at FROM halo.sync_runs "
            "WHERE sync_id = (SELECT max(sync_id) FROM access.grants)"
        ).fetchall()
    except duckdb.CatalogException:
        latest = []
    if not latest:
        raise ReviewRefused("No sync has finished yet: run halo_sync_job first.")
    return latest


def _approvers(items: list[Item], named: str | None) -> list[str]:
    """The policy's approvers, read only when some item has neither a named reviewer nor a
    manager: a policy that cannot be read stops the campaign only then."""
    if all(item.reviewers(named, [])[0] for item in items):
        return []
    try:
        return list(load_policy().approvers)
    except PolicyError as error:
        raise ReviewRefused(f"The access policy cannot be loaded: {error}") from None
