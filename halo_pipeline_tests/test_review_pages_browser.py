"""An access review's pages as their readers see them, in Debian's Chromium through Playwright:
the page a reviewer is given (`review export --format html --reviewer`) and the auditor's
evidence pack (`review report`). No Dagster: the campaign is run on the command line against a
warehouse synced from the simulator, and its revoke applied by a provisioning run in-process.

Takes review-page.png and review-report.png: into a temporary folder, or into
HALO_SCREENSHOTS_DIR (`make screenshots` sets it to docs/ to refresh them on purpose).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from halo_pipeline_tests.helpers import build_access, provision, query, sync
from halo_pipeline_tests.policy_support import cli
from halo_pipeline_tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed: run scripts/install-system-deps.sh",
    ),
]

CAMPAIGN = "2026-q4-admins"
REVIEWER = "reviewer@example.com"
# A name from HaloITSM is data: the pages must show it as text, never run it.
HOSTILE = "<script>window.pwned=1</script> Mallory"
NOTE = "not on the change board"
SHOT_HEIGHT = 1400
"""At most this much of a page's top goes into its screenshot."""


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class ReviewRun:
    """A campaign run from start to evidence, and what the warehouse recorded of it."""

    page: Path
    report: Path
    mallory: int
    mallory_grant: str
    zoe_grant: str


@pytest.fixture
def reviewed(sim, synced, tmp_path) -> ReviewRun:
    """Campaign CAMPAIGN over the Administrators, HOSTILE among them: the reviewer's page as
    exported when it started, then HOSTILE's grant revoked and the other kept, the campaign
    closed, the revoke applied with its ticket, and the evidence pack written."""
    administrator = sim.role_ids()["Administrator"]
    mallory = sim.add_agent(
        HOSTILE, "mallory@example.com", role_ids=(administrator,), team_ids=(2,)
    )
    sim.add_agent("Rae Reviewer", REVIEWER)  # who decides is a HaloITSM agent
    sync(sim, synced)
    build_access(synced)

    def ok(*args: str) -> str:
        result = cli(synced, "review", *args)
        assert result.exit_code == 0, result.output
        return result.output

    started = ok("start", CAMPAIGN, "--scope", "role:Administrator", "--reviewer", REVIEWER)
    assert started.startswith(f"Started campaign '{CAMPAIGN}': 2 grants of role 'Administrator'")
    page = tmp_path / "page" / "reviewer.html"
    ok("export", CAMPAIGN, "--format", "html", "--reviewer", REVIEWER, "--out", str(page))

    grants = dict(query(synced, "SELECT agent_id, grant_id FROM reviews.items"))
    assert sorted(grants) == [2, mallory]
    ok("decide", CAMPAIGN, "--grant", grants[mallory], "--revoke", "--by", REVIEWER,
       "--note", NOTE)  # fmt: skip
    ok("decide", CAMPAIGN, "--grant", grants[2], "--keep", "--by", REVIEWER)
    closed = ok("close", CAMPAIGN, "--by", REVIEWER)
    assert closed.startswith(f"Closed campaign '{CAMPAIGN}': 1 kept, 1 revoked, 0 not reviewed.")
    provision(sim, synced, provisioning=True, ticketing=True)
    ok("report", CAMPAIGN, "--out", str(tmp_path / "report"))
    return ReviewRun(page, tmp_path / "report" / "report.html", mallory, grants[mallory], grants[2])


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:  # playwright.sync_api.Browser
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def opened(browser) -> Iterator:
    """`opened(path)`: the file open in a new page, and every URL the page requested."""
    pages = []

    def open_file(path: Path) -> tuple[object, list[str]]:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        pages.append(page)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(path.as_uri())
        return page, requested

    yield open_file
    for page in pages:
        page.close()


def screenshot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("HALO_SCREENSHOTS_DIR") or tmp_path)
    # The page down to its footer and body margin, not the empty window below it.
    bottom = page.evaluate("Math.ceil(document.body.getBoundingClientRect().bottom) + 32")
    height = min(bottom, SHOT_HEIGHT)
    page.screenshot(
        path=str(folder / name),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": height},
    )


def cells(page, rows: str) -> list[list[str]]:
    """The text of each cell of the rows `rows` selects, as the browser renders it."""
    return page.locator(rows).evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.innerText))"
    )


def test_the_reviewer_sees_every_grant_they_review_as_text(reviewed, opened, synced, tmp_path):
    page, requested = opened(reviewed.page)

    assert page.title() == f"Access review {CAMPAIGN}: {REVIEWER}"
    assert page.locator("h1").inner_text() == f"Access review: {CAMPAIGN}"
    assert page.locator("#reviewer").inner_text() == REVIEWER
    [(sync_id, synced_at)] = query(synced, "SELECT sync_id, synced_at FROM reviews.campaigns")
    assert sync_id == 2  # the fixture's sync, then the one that saw HOSTILE
    assert page.locator("dl").inner_text().splitlines() == [
        "Scope", "role 'Administrator'",
        "Snapshot", f"HaloITSM as of {utc(synced_at)} (sync 2)",
        "Due", "no due date",
        "Status", "open",
    ]  # fmt: skip

    held = dict(query(synced, "SELECT agent_id, held_since FROM reviews.items"))
    assert cells(page, "#items thead tr") == [
        ["Agent", "Access", "Held since", "Last change", "Decision", "Grant id"]
    ]
    assert cells(page, "#items tbody tr") == [
        [
            f"{HOSTILE}\nmallory@example.com · agent {reviewed.mallory}",
            "role Administrator",
            utc(held[reviewed.mallory]),
            "added in HaloITSM, first seen by sync 2",
            "undecided",
            reviewed.mallory_grant,
        ],
        [
            "Zoë Müller\nagent2@example.com · agent 2",
            "role Administrator",
            f"on or before {utc(held[2])}",
            "held when the warehouse first synced",
            "undecided",
            reviewed.zoe_grant,
        ],
    ]
    # The name is text in the page, not a script: nothing ran.
    assert page.locator("script").count() == 0
    assert page.evaluate("typeof window.pwned") == "undefined"
    # Self-contained: mailed, archived, opened offline, it loads nothing but itself.
    assert requested == [reviewed.page.as_uri()]
    screenshot(page, "review-page.png", tmp_path)


def test_the_auditor_sees_the_scope_decisions_and_confirmed_removals(
    reviewed, opened, synced, sim, tmp_path
):
    page, requested = opened(reviewed.report)

    assert page.title() == f"Access review evidence: {CAMPAIGN}"
    [(synced_at, started_at, started_by, closed_at)] = query(
        synced, "SELECT synced_at, started_at, started_by, closed_at FROM reviews.campaigns"
    )
    assert started_by  # whoever runs the tests, as the operating system names them
    assert page.locator("#campaign").inner_text().splitlines() == [
        "Scope", "role 'Administrator'",
        "Snapshot", f"HaloITSM as of {utc(synced_at)} (sync 2), 2 grant(s)",
        "Started", f"{utc(started_at)} by {started_by}",
        "Due", "no due date",
        "Closed", f"{utc(closed_at)} by {REVIEWER}",
    ]  # fmt: skip
    assert page.locator("#summary > div").all_inner_texts() == [
        "2\ngrants in scope",
        "1\nkept",
        "1\nrevoked",
        "0\nnot reviewed",
        "0\nundecided",
        "1 of 1\nrevokes confirmed removed by a later sync",
    ]
    assert page.locator("#confirmed").inner_text() == "1 of 1"
    assert cells(page, "#reviewed-by tbody tr") == [[REVIEWER, "2", "1", "1"]]

    # The revoke request closing filed, applied with its ticket, and the sync that followed.
    [(request_id, status, ticket_id)] = query(
        synced,
        "SELECT r.request_id, r.status, r.ticket_id FROM provisioning.requests AS r "
        "JOIN reviews.items AS i ON r.review_item_id = i.item_id WHERE i.agent_id = ?",
        [reviewed.mallory],
    )
    assert (request_id, status) == (1, "applied")
    assert ticket_id in [ticket["id"] for ticket in sim.tickets]
    [(removed_in, removed_at)] = query(
        synced,
        "SELECT removed_in_sync_id, removed_at FROM access.grant_history WHERE grant_id = ?",
        [reviewed.mallory_grant],
    )
    assert query(synced, "SELECT kind FROM halo.sync_runs WHERE sync_id = ?", [removed_in]) == [
        ("targeted",)
    ]
    decided = dict(
        query(
            synced,
            "SELECT i.agent_id, d.decided_at FROM reviews.decisions AS d "
            "JOIN reviews.items AS i USING (item_id)",
        )
    )
    held = dict(query(synced, "SELECT agent_id, held_since FROM reviews.items"))
    assert cells(page, f'#items tr[data-grant="{reviewed.mallory_grant}"]') == [
        [
            f"{HOSTILE}\nagent {reviewed.mallory}",
            "role Administrator",
            utc(held[reviewed.mallory]),
            f"{REVIEWER}\nthe named reviewer",
            f"revoke\n{NOTE}",
            f"{REVIEWER}\n{utc(decided[reviewed.mallory])}",
            f"request {request_id}: applied, ticket {ticket_id}",
            f"confirmed removed by sync {removed_in}, {utc(removed_at)}",
        ]
    ]
    assert cells(page, f'#items tr[data-grant="{reviewed.zoe_grant}"]') == [
        [
            "Zoë Müller\nagent 2",
            "role Administrator",
            f"on or before {utc(held[2])}",
            f"{REVIEWER}\nthe named reviewer",
            "keep",
            f"{REVIEWER}\n{utc(decided[2])}",
            "",
            "",
        ]
    ]
    assert page.locator("#items tbody tr").count() == 2
    assert page.locator("script").count() == 0
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert requested == [reviewed.report.as_uri()]
    screenshot(page, "review-report.png", tmp_path)
