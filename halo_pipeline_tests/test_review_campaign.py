"""A whole access review against the simulator over loopback, through the command line and
the real jobs: snapshot the privileged grants, each reviewer fills in and imports their CSV,
the close files the revokes, provisioning_job applies them with tickets, a sync confirms them,
and the evidence pack says so."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from halo_pipeline_tests.helpers import query
from halo_pipeline_tests.policy_support import POLICY, cli

LEAD = "security-lead@example.com"
NAME = "2026-q4-privileged"


@pytest.fixture
def path(sim, halo_env, policy, signing_key, monkeypatch, run_job) -> Path:
    policy(POLICY.replace("approvers: []", f"approvers: [{LEAD}]"))
    monkeypatch.setenv("HALO_PROVISIONING", "true")
    monkeypatch.setenv("HALO_TICKETING", "true")
    sim.add_agent("Sam Lead", LEAD)  # who decides is a HaloITSM agent
    assert run_job("halo_sync_job").success
    path = Path(halo_env["HALO_DUCKDB_PATH"])
    signing_key(path)
    return path


def review(path: Path, *args: str) -> str:
    result = cli(path, "review", *args)
    assert result.exit_code == 0, result.output
    return result.output


def enabled_managers(sim) -> dict[str, set[str]]:
    """Each team's enabled managers' emails by team name, read from the simulator itself."""
    managers: dict[str, set[str]] = {}
    for team_id in range(1, 13):
        for member in sim.members_of(team_id):
            agent = sim.get_agent(member)
            for row in agent["teams"]:
                if row["team_id"] == team_id and row["is_manager"] and not agent["isdisabled"]:
                    managers.setdefault(row["team_name"], set()).add(agent["email"].lower())
    return managers


def evidence(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "report.csv").open(encoding="utf-8") as report:
        return {row["grant_id"]: row for row in csv.DictReader(report)}


def test_a_privileged_review_ends_in_confirmed_revocations(sim, path, run_job, tmp_path):
    review(path, "start", NAME, "--scope", "privileged", "--due", "2026-12-31")

    items = query(path, "SELECT grant_id, agent_id, agent_email, reviewers, reviewer_source "
                        "FROM reviews.items ORDER BY item_id")  # fmt: skip
    held = query(path, "SELECT grant_id FROM access.grants WHERE resource_name IN "
                       "('Administrator', 'Change Manager') ORDER BY grant_id")  # fmt: skip
    assert sorted(item[0] for item in items) == [grant_id for (grant_id,) in held]
    managers = enabled_managers(sim)
    sources = set()
    for _, agent_id, email, reviewers, source in items:
        agent = sim.get_agent(agent_id)
        expected = sorted(managers.get(agent["team"], set()) - {email})
        assert (reviewers, source) == (
            (expected, "default team managers") if expected else ([LEAD], "policy approvers")
        )
        assert email not in reviewers
        sources.add(source)
    assert sources == {"default team managers", "policy approvers"}

    # The two grants to revoke: one a manager reviews, one the security lead.
    by_manager = next(item for item in items if item[4] == "default team managers")
    by_lead = next(item for item in items if item[4] == "policy approvers")
    revoke = {by_manager[0], by_lead[0]}
    reviewers = sorted({person for item in items for person in item[3]})
    for reviewer in reviewers:
        sheet = tmp_path / f"{reviewer}.csv"
        review(path, "export", NAME, "--format", "csv", "--reviewer", reviewer, "--out", str(sheet))
        with sheet.open(encoding="utf-8") as exported:
            rows = list(csv.DictReader(exported))
        for row in rows:
            if not row["decision"]:
                row["decision"] = "revoke" if row["grant_id"] in revoke else "keep"
                row["note"] = "no longer needed" if row["grant_id"] in revoke else ""
        with sheet.open("w", encoding="utf-8", newline="") as filled:
            writer = csv.DictWriter(filled, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        review(path, "import", NAME, str(sheet), "--by", reviewer)
    assert query(path, "SELECT count(DISTINCT item_id), count(*) FILTER (decision = 'revoke') "
                       "FROM reviews.decisions") == [(len(items), 2)]  # fmt: skip

    closed = review(path, "close", NAME, "--by", LEAD)
    assert closed.splitlines()[0] == (
        f"Closed campaign '{NAME}': {len(items) - 2} kept, 2 revoked, 0 not reviewed."
    )
    before = tmp_path / "before"
    review(path, "report", NAME, "--out", str(before))
    assert {evidence(before)[grant]["request_status"] for grant in revoke} == {"pending"}

    # Revokes need no approval, privileged or not: the usual job applies them.
    assert run_job("provisioning_job").success
    assert run_job("halo_sync_job").success

    requests = query(
        path,
        "SELECT i.grant_id, r.status, r.ticket_id, r.requested_by FROM provisioning.requests AS r "
        "JOIN reviews.items AS i ON i.item_id = r.review_item_id ORDER BY i.grant_id",
    )
    # Requested by who decided: the first of the item's reviewers to import their sheet.
    assert [(grant, status, by) for grant, status, _, by in requests] == sorted(
        [(by_manager[0], "applied", by_manager[3][0]), (by_lead[0], "applied", LEAD)]
    )
    tickets = {ticket["id"]: ticket for ticket in sim.tickets}
    for grant_id, _, ticket_id, _ in requests:
        assert ticket_id in tickets
        agent_id = int(grant_id.rsplit(":", 1)[1])
        role_id = grant_id.split(":")[1]
        assert role_id not in [role["id"] for role in sim.get_agent(agent_id)["roles"]]

    after = tmp_path / "after"
    said = review(path, "report", NAME, "--out", str(after))
    assert said.splitlines()[1] == (
        f"{len(items)} grants: {len(items) - 2} kept, 2 revoked (2 confirmed removed by a later "
        "sync), 0 not reviewed, 0 undecided."
    )
    [(last_full_sync,)] = query(path, "SELECT max(sync_id) FROM halo.sync_runs")
    rows = evidence(after)
    for grant_id, status, ticket_id, _ in requests:
        row = rows[grant_id]
        assert (row["decision"], row["note"], row["request_status"], row["ticket_id"]) == (
            "revoke",
            "no longer needed",
            status,
            str(ticket_id),
        )
        # The targeted sync after provisioning saw it gone; the full sync after agrees.
        assert row["removed_in_sync_id"] and int(row["removed_in_sync_id"]) < last_full_sync
    assert all(not row["removed_at"] for grant, row in rows.items() if grant not in revoke)
    page = (after / "report.html").read_text(encoding="utf-8")
    assert "2 of 2</b>revokes confirmed removed by a later sync" in page
