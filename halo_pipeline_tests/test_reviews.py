"""Access review campaigns through the command line, on a warehouse synced in plain Python:
who reviews what, decisions one at a time and by file (refused whole when any line is wrong),
closing, and the progress the Dagster sensor reports. The whole campaign against the real jobs
is test_review_campaign.py; the pages in a browser, test_review_pages_browser.py."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline.defs.reviews import review_progress_sensor
from halo_pipeline.provisioning.runner import Provisioner
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.signing import init_keyring, load_keyring
from halo_pipeline.simulator import Simulator, SimulatorConfig, generate_dataset
from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.migrations import warehouse_id
from halo_pipeline_tests.helpers import (
    build_access,
    grant,
    halo_client,
    provision,
    query,
    sync,
    synced_copy,
)
from halo_pipeline_tests.policy_support import cli

TEAM = 6  # its managers are the ones added here
POLICY = """\
privileged_roles: ["Administrator"]
approval:
  required_for: privileged
  approvers: ["approver@example.com"]
"""


@dataclass(frozen=True)
class World:
    path: Path
    role: str  # Payroll Admin's GUID
    ids: dict[str, int]  # agent ids by first name, lower-cased

    def grant(self, who: str, kind: str = "role") -> str:
        target = f"role:{self.role}:assigned" if kind == "role" else f"team:{TEAM}:member"
        return f"{target}:agent:{self.ids[who]}"


def populate(sim) -> tuple[str, dict[str, int]]:
    """Payroll Admin's id, and the ids of the agents added, by first name."""
    role = sim.add_role("Payroll Admin")
    ids = {
        "mia": sim.add_agent("Mia Manager", "mia@example.com", team_ids=(TEAM,)),
        "dee": sim.add_agent("Dee Departed", "dee@example.com", team_ids=(TEAM,)),
        "ned": sim.add_agent("Ned Newcomer", "ned@example.com", role_ids=(role,), team_ids=(TEAM,)),
        "ola": sim.add_agent("Ola Owner", "Ola@Example.com", role_ids=(role,), team_ids=(TEAM,)),
        "pat": sim.add_agent("Pat Nomad", "pat@example.com", role_ids=(role,)),
        # Who decides is a HaloITSM agent too: the policy's approver, a lead who reviews and
        # closes, and Eve, who reviews nothing here.
        "avery": sim.add_agent("Avery Approver", "approver@example.com"),
        "lee": sim.add_agent("Lee Lead", "lead@example.com"),
        "eve": sim.add_agent("Eve Elsewhere", "eve@example.com"),
    }  # fmt: skip
    for member in sim.members_of(TEAM):
        sim.set_membership(member, TEAM, is_manager=False)
    for manager in ("mia", "dee", "ola"):
        sim.set_membership(ids[manager], TEAM, is_manager=True)
    sim.disable_agent(ids["dee"])
    return role, ids


def synced_world(tmp_path_factory) -> Path:
    """The world's warehouse, synced and modelled: the simulator is seeded and the ids of what
    `populate` adds follow from it, so one module makes it once."""
    sim = Simulator(generate_dataset(), SimulatorConfig())
    populate(sim)
    path = tmp_path_factory.mktemp("world") / "warehouse.duckdb"
    sync(sim, path)
    build_access(path)
    return path


def the_world(sim, warehouse_path, policy, signing_key, template: Path) -> World:
    """Payroll Admin, a role only these agents hold: Ned (in the team), Ola (in it, a manager)
    and Pat (no team); Mia manages the team, Dee did (disabled). Reviewers are read from the
    simulator (over loopback) as HaloITSM agents; decisions are signed with a key of the
    test's. The warehouse is what a sync of that simulator makes (`template`)."""
    policy(POLICY)
    role, ids = populate(sim)
    synced_copy(template, warehouse_path)
    signing_key(warehouse_path)
    return World(warehouse_path, role, ids)


@pytest.fixture(scope="module")
def world_template(tmp_path_factory) -> Path:
    return synced_world(tmp_path_factory)


@pytest.fixture
def world(sim, halo_env, warehouse_path, policy, signing_key, world_template) -> World:
    return the_world(sim, warehouse_path, policy, signing_key, world_template)


def ok(path: Path, *args: str) -> str:
    result = cli(path, "review", *args)
    assert result.exit_code == 0, result.output
    return result.output


def refused(path: Path, *args: str) -> str:
    result = cli(path, "review", *args)
    assert result.exit_code == 1, result.output
    return result.output


def items(path: Path) -> list[tuple]:
    return query(
        path,
        "SELECT agent_name, entitlement_name, reviewers, reviewer_source FROM reviews.items "
        "ORDER BY agent_name, entitlement_name",
    )


def decisions(path: Path) -> list[tuple]:
    return query(
        path,
        "SELECT i.agent_name, d.decision, d.note, d.decided_by, d.source FROM reviews.decisions "
        "AS d JOIN reviews.items AS i USING (item_id) ORDER BY d.decision_id",
    )


def test_each_grant_goes_to_its_managers_then_the_approvers_never_the_agent(sim, world):
    said = ok(
        world.path, "start", "payroll", "--scope", "role:Payroll Admin", "--due", "2026-12-15"
    )

    assert items(world.path) == [
        ("Ned Newcomer", "Payroll Admin", ["mia@example.com", "ola@example.com"],
         "default team managers"),
        # Ola manages the team too, but never reviews her own grant; Dee is disabled.
        ("Ola Owner", "Payroll Admin", ["mia@example.com"], "default team managers"),
        ("Pat Nomad", "Payroll Admin", ["approver@example.com"], "policy approvers"),
    ]  # fmt: skip
    [[sync_id]] = query(world.path, "SELECT max(sync_id) FROM halo.sync_runs")
    assert query(
        world.path, "SELECT name, scope, scope_label, sync_id, due_date::VARCHAR, closed_at "
        "FROM reviews.campaigns",
    ) == [("payroll", f"role:{world.role}", "role 'Payroll Admin'", sync_id, "2026-12-15", None)]  # fmt: skip
    [(synced_at,)] = query(world.path, "SELECT strftime(synced_at, '%Y-%m-%d %H:%M') FROM reviews.campaigns")  # fmt: skip
    assert said.splitlines()[:3] == [
        f"Started campaign 'payroll': 3 grants of role 'Payroll Admin', as of sync {sync_id} "
        f"({synced_at} UTC), for 3 reviewer(s), due 2026-12-15.",
        "  2 reviewed by default team managers",
        "  1 reviewed by policy approvers",
    ]

    ok(world.path, "start", "payroll-team", "--scope", f"team:{TEAM}")
    team = [row for row in items(world.path) if row[3] == "team managers"]
    assert [row for row in team if row[0] in ("Mia Manager", "Ned Newcomer", "Ola Owner")] == [
        ("Mia Manager", "Закупки", ["ola@example.com"], "team managers"),
        ("Ned Newcomer", "Закупки", ["mia@example.com", "ola@example.com"], "team managers"),
        ("Ola Owner", "Закупки", ["mia@example.com"], "team managers"),
    ]
    members = len(sim.members_of(TEAM)) - 1  # Dee is disabled, and still a member
    assert len(team) == members + 1
    assert {tuple(row[2]) for row in team if row[0] not in ("Mia Manager", "Ola Owner")} == {
        ("mia@example.com", "ola@example.com")
    }


def test_a_campaign_over_roles_names_the_agents_whose_roles_were_never_read(world):
    # As a targeted sync leaves an agent it read without roles: none of them are known.
    with connect(world.path) as con:
        con.execute("UPDATE halo.agents SET roles_known = false, roles_read_at = NULL, "
                    "roles_read_sync_id = NULL WHERE agent_id = ?", [world.ids["eve"]])  # fmt: skip

    over_roles = cli(world.path, "review", "start", "payroll", "--scope", "role:Payroll Admin")
    over_a_team = cli(world.path, "review", "start", "team6", "--scope", f"team:{TEAM}")

    assert over_roles.exit_code == 0, over_roles.output
    assert over_roles.stderr == (
        "Warning: the roles of 1 agent(s) were never read from HaloITSM, so any of theirs in "
        f"scope are not in this campaign: {world.ids['eve']} (Eve Elsewhere). The next full "
        "sync reads them.\n"
    )
    assert (over_a_team.exit_code, over_a_team.stderr) == (0, "")


def test_a_grant_with_nobody_to_review_it_stops_the_campaign(sim, world, policy):
    abe = sim.add_agent("Abe Approver", "approver@example.com", role_ids=(world.role,))
    sync(sim, world.path)
    build_access(world.path)

    said = refused(world.path, "start", "payroll", "--scope", "role:Payroll Admin")

    assert said == (
        "Error: 1 of 4 grants have nobody to review them (no enabled manager of the team, and no "
        "approver in the access policy other than the agent):\n"
        f"  role:{world.role}:assigned:agent:{abe} (Abe Approver: role 'Payroll Admin')\n"
        "Name one with --reviewer EMAIL, or list approvers in the access policy. "
        "No campaign was started.\n"
    )
    assert query(world.path, "SELECT count(*) FROM reviews.campaigns") == [(0,)]

    # A named reviewer takes every grant but their own, which goes to their managers.
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin", "--reviewer",
       "Ned@Example.com")  # fmt: skip
    assert items(world.path) == [
        ("Abe Approver", "Payroll Admin", ["ned@example.com"], "the named reviewer"),
        ("Ned Newcomer", "Payroll Admin", ["mia@example.com", "ola@example.com"],
         "default team managers"),
        ("Ola Owner", "Payroll Admin", ["ned@example.com"], "the named reviewer"),
        ("Pat Nomad", "Payroll Admin", ["ned@example.com"], "the named reviewer"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--scope", "role:Payrol Admin"],
         "Error: Unknown role 'Payrol Admin': not in the last sync. Did you mean: "),
        (["--scope", "everything"],
         "Error: 'everything' is not a scope: write privileged, all, role:<name or id> or "
         "team:<name or id>. No campaign was started.\n"),
        (["--scope", "all", "--reviewer", "not-an-email"],
         "Error: The reviewer 'not-an-email' is not an email address: "),
    ],
)  # fmt: skip
def test_start_refuses_what_it_cannot_resolve(world, args, error):
    assert refused(world.path, "start", "payroll", *args).startswith(error)
    assert query(world.path, "SELECT count(*) FROM reviews.items") == [(0,)]


def test_a_name_is_used_once(world):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    assert refused(world.path, "start", "payroll", "--scope", "all") == (
        "Error: A campaign named 'payroll' exists already: choose another name. "
        "No campaign was started.\n"
    )
    assert query(world.path, "SELECT count(*) FROM reviews.items") == [(3,)]


def test_a_later_decision_replaces_an_earlier_until_the_campaign_closes(world):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    ned = world.grant("ned")

    assert ok(world.path, "decide", "payroll", "--grant", ned, "--keep", "--by", "mia@example.com") == f"Recorded: keep {ned}.\n"  # fmt: skip
    assert ok(world.path, "decide", "payroll", "--grant", ned, "--keep", "--by", "mia@example.com") == f"Already recorded: keep {ned}.\n"  # fmt: skip
    ok(world.path, "decide", "payroll", "--grant", ned, "--revoke", "--by", "ola@example.com",
       "--note", "moved to sales")  # fmt: skip
    assert refused(world.path, "decide", "payroll", "--grant", ned, "--keep", "--by", "pat@example.com") == (
        f"Error: pat@example.com does not review {ned} (Ned Newcomer: role 'Payroll Admin'): "
        "mia@example.com, ola@example.com do. Nothing was recorded.\n"
    )  # fmt: skip
    assert refused(world.path, "decide", "payroll", "--grant", world.grant("ned", "team"), "--keep", "--by", "mia@example.com") == (
        f"Error: grant {world.grant('ned', 'team')} is not in campaign 'payroll' (role 'Payroll "
        "Admin'). Nothing was recorded.\n"
    )  # fmt: skip
    assert decisions(world.path) == [
        ("Ned Newcomer", "keep", None, "mia@example.com", "decide"),
        ("Ned Newcomer", "revoke", "moved to sales", "ola@example.com", "decide"),
    ]

    ok(world.path, "decide", "payroll", "--grant", world.grant("ola"), "--keep", "--by", "mia@example.com")  # fmt: skip
    ok(world.path, "decide", "payroll", "--grant", world.grant("pat"), "--keep", "--by", "approver@example.com")  # fmt: skip
    ok(world.path, "close", "payroll", "--by", "lead@example.com")
    assert refused(world.path, "decide", "payroll", "--grant", ned, "--keep", "--by", "mia@example.com").startswith(
        "Error: Campaign 'payroll' was closed at "
    )  # fmt: skip
    # A decision slipped in with SQL after the close changes nothing either.
    with connect(world.path) as con:
        con.execute(
            "INSERT INTO reviews.decisions (item_id, decision, decided_by, source, decided_at) "
            "SELECT item_id, 'keep', 'mia@example.com', 'sql', TIMESTAMPTZ '2020-01-01' "
            "FROM reviews.items WHERE grant_id = ?",
            [ned],
        )
    report = world.path.parent / "evidence"
    ok(world.path, "report", "payroll", "--out", str(report))
    with (report / "report.csv").open() as evidence:
        assert [(row["agent_name"], row["decision"], row["decided_by"])
                for row in csv.DictReader(evidence)] == [
            ("Ned Newcomer", "revoke", "ola@example.com"),
            ("Ola Owner", "keep", "mia@example.com"),
            ("Pat Nomad", "keep", "approver@example.com"),
        ]  # fmt: skip


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(["grant_id,agent_name,decision,note", *lines]) + "\n")
    return path


def test_an_import_with_any_bad_line_records_nothing(world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    bad = write_csv(
        tmp_path / "decided.csv",
        f"{world.grant('ned')},Ned Newcomer,keep,still runs payroll",
        "role:nope:assigned:agent:1,Nobody,keep,",
        f"{world.grant('ned', 'team')},Ned Newcomer,keep,",
        f"{world.grant('ola')},Ola Owner,maybe,",
        f"{world.grant('pat')},Pat Nomad,revoke,",
        f"{world.grant('ned')},Ned Newcomer,revoke,",
    )

    said = refused(world.path, "import", "payroll", str(bad), "--by", "mia@example.com")

    assert said == (
        f"Error: {bad} cannot be imported (5 problem(s)):\n"
        "  line 3: there is no grant 'role:nope:assigned:agent:1' (ids as the export writes them).\n"
        f"  line 4: grant {world.grant('ned', 'team')} is not in campaign 'payroll' (role 'Payroll "
        "Admin').\n"
        "  line 5: 'maybe' is not a decision: write keep or revoke, or leave it empty while "
        "undecided.\n"
        f"  line 6: mia@example.com does not review {world.grant('pat')} (Pat Nomad: role 'Payroll "
        "Admin'): approver@example.com do.\n"
        f"  line 7: grant {world.grant('ned')} is also on line 2.\n"
        "Nothing was recorded: mend the file and import it again.\n"
    )
    assert decisions(world.path) == []

    assert refused(world.path, "import", "payroll", str(write_csv(tmp_path / "x.csv")).replace("x.csv", "missing.csv"), "--by", "mia@example.com") == (
        f"Error: There is no file {tmp_path / 'missing.csv'}.\n"
    )  # fmt: skip
    (tmp_path / "no_header.csv").write_text(f"{world.grant('ned')},keep\n")
    assert refused(world.path, "import", "payroll", str(tmp_path / "no_header.csv"), "--by", "mia@example.com").startswith(
        f"Error: {tmp_path / 'no_header.csv'}, line 1: the header has no decision or grant_id column"
    )  # fmt: skip


def test_the_export_imports_back_unchanged_and_a_changed_line_replaces(world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    exported = tmp_path / "mia.csv"
    assert ok(world.path, "export", "payroll", "--format", "csv", "--reviewer", "mia@example.com",
              "--out", str(exported)) == f"Wrote {exported}.\n"  # fmt: skip
    header, *rows = exported.read_text().splitlines()
    assert header == (
        "grant_id,agent_id,agent_name,entitlement_id,entitlement_name,held_since,reviewer,"
        "decision,note"
    )
    assert [row.split(",")[:3] + row.split(",")[6:] for row in rows] == [
        [world.grant("ned"), str(world.ids["ned"]), "Ned Newcomer", "mia@example.com ola@example.com", "", ""],
        [world.grant("ola"), str(world.ids["ola"]), "Ola Owner", "mia@example.com", "", ""],
    ]  # fmt: skip

    # Filled in as a spreadsheet would: a note that starts like a formula stays text.
    filled = (
        exported.read_text()
        .replace(",,\n", ",keep,@payroll lead\n", 1)
        .replace(",,\n", ",revoke,\n")
    )
    exported.write_text(filled)
    assert ok(world.path, "import", "payroll", str(exported), "--by", "mia@example.com") == (
        f"Recorded 2 decision(s) from {exported}; 0 unchanged, 0 still undecided.\n"
    )
    # Exported again, the note is neutralised; imported again, nothing changes.
    again = tmp_path / "again.csv"
    ok(world.path, "export", "payroll", "--format", "csv", "--reviewer", "mia@example.com", "--out", str(again))  # fmt: skip
    assert again.read_text().splitlines()[1].endswith(",keep,'@payroll lead")
    assert ok(world.path, "import", "payroll", str(again), "--by", "mia@example.com") == (
        f"Recorded 0 decision(s) from {again}; 2 unchanged, 0 still undecided.\n"
    )
    again.write_text(again.read_text().replace(",revoke,", ",keep,"))
    ok(world.path, "import", "payroll", str(again), "--by", "mia@example.com")
    assert decisions(world.path) == [
        ("Ned Newcomer", "keep", "@payroll lead", "mia@example.com", "import mia.csv:2"),
        ("Ola Owner", "revoke", None, "mia@example.com", "import mia.csv:3"),
        ("Ola Owner", "keep", None, "mia@example.com", "import again.csv:3"),
    ]


def test_names_are_escaped_in_pages_and_formulas_neutralised_in_csv(sim, world, tmp_path):
    sim.add_agent('=HYPERLINK("http://evil.example","x") <b>Eve</b>', "eve@example.com",
                  role_ids=(world.role,), team_ids=(TEAM,))  # fmt: skip
    sync(sim, world.path)
    build_access(world.path)
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")

    ok(world.path, "export", "payroll", "--format", "csv", "--out", str(tmp_path / "all.csv"))
    assert '"\'=HYPERLINK(""http://evil.example"",""x"") <b>Eve</b>"' in (tmp_path / "all.csv").read_text()  # fmt: skip

    pages = tmp_path / "pages"
    assert ok(world.path, "export", "payroll", "--format", "html", "--out", str(pages)) == (
        f"Wrote 3 reviewer pages and {pages / 'index.html'}.\n"
    )
    assert sorted(path.name for path in pages.iterdir()) == [
        "approver@example.com.html", "index.html", "mia@example.com.html", "ola@example.com.html",
    ]  # fmt: skip
    page = (pages / "mia@example.com.html").read_text()
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;x&#34;) &lt;b&gt;Eve&lt;/b&gt;" in page
    assert "<b>Eve" not in page
    assert "<link" not in page and "<script" not in page and "src=" not in page
    assert refused(world.path, "export", "payroll", "--format", "html", "--out", str(tmp_path / "a.html")).startswith(
        "Error: Without --reviewer the HTML export is a folder of pages"
    )  # fmt: skip
    assert refused(world.path, "export", "payroll", "--format", "csv", "--reviewer", "pat@example.com", "--out", str(tmp_path / "p.csv")) == (
        "Error: pat@example.com reviews nothing in 'payroll'. Its reviewers: "
        "approver@example.com, mia@example.com, ola@example.com.\n"
    )  # fmt: skip


def test_close_refuses_undecided_items_unless_forced_and_files_each_revoke(world):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--revoke", "--by",
       "mia@example.com", "--note", "moved to sales")  # fmt: skip

    assert refused(world.path, "close", "payroll", "--by", "lead@example.com") == (
        "Error: 2 of 3 items of 'payroll' are undecided (grant: its reviewers):\n"
        f"  {world.grant('ola')} (Ola Owner: role 'Payroll Admin'): mia@example.com\n"
        f"  {world.grant('pat')} (Pat Nomad: role 'Payroll Admin'): approver@example.com\n"
        "Wait for their reviewers, or close with --force to record them as not_reviewed. "
        "Nothing was closed.\n"
    )
    assert query(world.path, "SELECT count(*) FROM provisioning.requests") == [(0,)]

    said = ok(world.path, "close", "payroll", "--by", "Lead@Example.com", "--force")

    [(request_id, item_id)] = query(
        world.path, "SELECT request_id, review_item_id FROM provisioning.requests"
    )
    assert said.splitlines()[:2] == [
        "Closed campaign 'payroll': 0 kept, 1 revoked, 2 not reviewed.",
        f"  request {request_id}: revoke role 'Payroll Admin' from Ned Newcomer (agent "
        f"{world.ids['ned']})",
    ]
    assert decisions(world.path) == [
        ("Ned Newcomer", "revoke", "moved to sales", "mia@example.com", "decide"),
        ("Ola Owner", "not_reviewed", None, "lead@example.com", "close --force"),
        ("Pat Nomad", "not_reviewed", None, "lead@example.com", "close --force"),
    ]
    assert query(
        world.path,
        "SELECT r.action, r.agent_id, r.entitlement_id, r.status, r.requested_by, r.reason, "
        "i.grant_id FROM provisioning.requests AS r JOIN reviews.items AS i "
        "ON i.item_id = r.review_item_id",
    ) == [
        ("revoke", world.ids["ned"], f"role:{world.role}:assigned", "pending", "mia@example.com",
         "access review 'payroll': revoked by mia@example.com: moved to sales", world.grant("ned")),
    ]  # fmt: skip
    assert item_id is not None
    assert query(world.path, "SELECT closed_by FROM reviews.campaigns") == [("lead@example.com",)]
    assert refused(world.path, "close", "payroll", "--by", "lead@example.com").startswith(
        "Error: Campaign 'payroll' was closed at "
    )
    assert query(world.path, "SELECT count(*) FROM provisioning.requests") == [(1,)]


def test_a_decision_inserted_with_sql_by_someone_else_stops_the_close(world):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    with connect(world.path) as con:
        con.execute(
            "INSERT INTO reviews.decisions (item_id, decision, decided_by, source) "
            "SELECT item_id, 'revoke', 'eve@example.com', 'sql' FROM reviews.items"
        )
    said = refused(world.path, "close", "payroll", "--by", "lead@example.com", "--force")
    assert said.splitlines()[:2] == [
        "Error: Campaign 'payroll' holds decisions that cannot be believed:",
        f"  {world.grant('ned')} (Ned Newcomer: role 'Payroll Admin'): its decision (revoke by "
        "eve@example.com) it is not signed (recorded before statements were signed, or written "
        "into the warehouse by hand)",
    ]
    assert said.splitlines()[-1] == (
        "Their reviewers decide them again (`review decide` or `review import`); nothing was "
        "closed."
    )
    assert query(world.path, "SELECT count(*) FROM provisioning.requests") == [(0,)]
    assert query(world.path, "SELECT closed_at FROM reviews.campaigns") == [(None,)]

    # A signed decision copied with SQL onto another item proves nothing there.
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--keep",
       "--by", "mia@example.com")  # fmt: skip
    with connect(world.path) as con:
        con.execute(
            "INSERT INTO reviews.decisions (item_id, decision, decided_by, source, statement, "
            "signature) SELECT i.item_id, d.decision, d.decided_by, d.source, d.statement, "
            "d.signature FROM reviews.decisions AS d, reviews.items AS i "
            "WHERE d.statement IS NOT NULL AND i.grant_id = ?",
            [world.grant("ola")],
        )
    said = refused(world.path, "close", "payroll", "--by", "lead@example.com", "--force")
    assert (
        f"  {world.grant('ola')} (Ola Owner: role 'Payroll Admin'): its decision (keep by "
        "mia@example.com) its statement does not say what the row says (decision_id, grant_id, "
        "item_id)"
    ) in said.splitlines()
    assert query(world.path, "SELECT count(*) FROM provisioning.requests") == [(0,)]


def test_the_sensor_reports_each_open_campaigns_progress_when_it_changes(world):
    def tick(cursor: str | None = None):
        with dg.build_sensor_context(
            cursor=cursor, resources={"warehouse": DuckDBWarehouse(database=str(world.path))}
        ) as context:
            return review_progress_sensor(context)

    assert tick().skip_message == "No review campaign yet."
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin", "--due", "2020-01-31")
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--revoke", "--by",
       "mia@example.com")  # fmt: skip

    first = tick()

    campaigns, items_event, decisions_event = first.asset_events
    assert [event.asset_key.path for event in first.asset_events] == [
        ["reviews", "campaigns"], ["reviews", "items"], ["reviews", "decisions"],
    ]  # fmt: skip
    assert campaigns.metadata["open"].value == {
        "payroll": {"scope": "role 'Payroll Admin'", "due": "2020-01-31", "status": "open",
                    "items": 3, "decided": 1, "kept": 0, "revoked": 1, "not_reviewed": 0,
                    "overdue": 2},
    }  # fmt: skip
    assert campaigns.metadata["overdue_items"].value == 2
    assert items_event.metadata["dagster/row_count"].value == 3
    assert decisions_event.metadata["dagster/row_count"].value == 1
    assert tick(first.cursor).skip_message == (
        "Nothing changed in the reviews tables since the last look."
    )
    ok(world.path, "decide", "payroll", "--grant", world.grant("ola"), "--keep", "--by",
       "mia@example.com")  # fmt: skip
    assert tick(first.cursor).asset_events[0].metadata["open"].value["payroll"]["kept"] == 1


def test_without_a_sync_there_is_nothing_to_snapshot(warehouse_path):
    with connect(warehouse_path):  # a new warehouse: the tables, no sync
        pass
    assert refused(warehouse_path, "start", "payroll", "--scope", "all") == (
        "Error: No sync has finished yet: run halo_sync_job first. No campaign was started.\n"
    )
    assert refused(warehouse_path, "report", "payroll", "--out", str(warehouse_path.parent)) == (
        "Error: There is no review campaign 'payroll'. Start one with `review start`.\n"
    )


def test_a_reviewer_imports_the_whole_sheet_with_only_their_rows_filled(world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    sheet = tmp_path / "all.csv"
    ok(world.path, "export", "payroll", "--format", "csv", "--out", str(sheet))
    rows = sheet.read_text().splitlines()
    assert [row.split(",")[2] for row in rows[1:]] == ["Ned Newcomer", "Ola Owner", "Pat Nomad"]
    sheet.write_text("\n".join([rows[0], rows[1][:-2] + ",keep,", *rows[2:]]) + "\n")

    assert ok(world.path, "import", "payroll", str(sheet), "--by", "mia@example.com") == (
        f"Recorded 1 decision(s) from {sheet}; 0 unchanged, 1 still undecided.\n"
    )
    assert decisions(world.path) == [("Ned Newcomer", "keep", None, "mia@example.com", "import all.csv:2")]  # fmt: skip


def test_decide_takes_one_of_keep_and_revoke(world):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    for flags in ([], ["--keep", "--revoke"]):
        result = cli(world.path, "review", "decide", "payroll", "--grant", world.grant("ned"),
                     *flags, "--by", "mia@example.com")  # fmt: skip
        assert result.exit_code == 2
        assert result.output.endswith("Error: Say --keep or --revoke, one of them.\n")
    assert decisions(world.path) == []


def test_a_note_over_several_lines_imports_back_unchanged(world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    note = "moved to sales\nsee HR ticket 12\u2028(signed)"
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--revoke", "--by",
       "mia@example.com", "--note", note)  # fmt: skip
    sheet = tmp_path / "mia.csv"
    ok(world.path, "export", "payroll", "--format", "csv", "--reviewer", "mia@example.com", "--out", str(sheet))  # fmt: skip
    assert ok(world.path, "import", "payroll", str(sheet), "--by", "mia@example.com") == (
        f"Recorded 0 decision(s) from {sheet}; 1 unchanged, 1 still undecided.\n"
    )
    # A line after the note is numbered as the file numbers it.
    sheet.write_text(
        sheet.read_text(encoding="utf-8").replace(",,\n", ",maybe,\n"), encoding="utf-8"
    )
    assert "  line 4: 'maybe' is not a decision" in refused(
        world.path, "import", "payroll", str(sheet), "--by", "mia@example.com"
    )
    assert decisions(world.path) == [("Ned Newcomer", "revoke", note, "mia@example.com", "decide")]


def test_one_sheet_goes_round_the_reviewers(world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    sheet = tmp_path / "all.csv"
    ok(world.path, "export", "payroll", "--format", "csv", "--out", str(sheet))
    header, ned, ola, pat = sheet.read_text().splitlines()
    sheet.write_text("\n".join([header, ned[:-2] + ",keep,", ola, pat]) + "\n")
    ok(world.path, "import", "payroll", str(sheet), "--by", "mia@example.com")
    sheet.write_text("\n".join([header, ned[:-2] + ",keep,", ola, pat[:-2] + ",revoke,"]) + "\n")

    assert ok(world.path, "import", "payroll", str(sheet), "--by", "approver@example.com") == (
        f"Recorded 1 decision(s) from {sheet}; 1 unchanged, 0 still undecided.\n"
    )
    assert [row[:2] for row in decisions(world.path)] == [
        ("Ned Newcomer", "keep"), ("Pat Nomad", "revoke"),
    ]  # fmt: skip


def test_files_that_cannot_be_read_or_written_are_refused_in_one_line(world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    assert refused(world.path, "import", "payroll", str(tmp_path), "--by", "mia@example.com") == (
        f"Error: {tmp_path} cannot be read: Is a directory.\n"
    )
    (tmp_path / "taken").mkdir()
    assert refused(world.path, "export", "payroll", "--format", "csv", "--out", str(tmp_path / "taken")) == (
        f"Error: {tmp_path / 'taken'} cannot be written: Is a directory.\n"
    )  # fmt: skip
    assert list(tmp_path.glob("*.partial")) == list(tmp_path.glob(".*.partial")) == []


def test_a_revoke_of_a_grant_gone_since_the_snapshot_files_nothing(sim, world):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--revoke", "--by", "mia@example.com")  # fmt: skip
    ok(world.path, "decide", "payroll", "--grant", world.grant("ola"), "--revoke", "--by", "mia@example.com")  # fmt: skip
    # Ned's role is removed in HaloITSM, and Ola's removed and granted again, before the close.
    sim.set_agent_roles(world.ids["ned"], [])
    sim.set_agent_roles(world.ids["ola"], [])
    sync(sim, world.path)
    sim.set_agent_roles(world.ids["ola"], [world.role])
    sync(sim, world.path)
    build_access(world.path)

    said = ok(world.path, "close", "payroll", "--by", "lead@example.com", "--force")

    assert said.splitlines() == [
        "Closed campaign 'payroll': 0 kept, 2 revoked, 1 not reviewed.",
        f"  no request: {world.grant('ned')} (Ned Newcomer: role 'Payroll Admin') is no longer "
        "held as it was reviewed (removed, or granted again, since the snapshot)",
        f"  no request: {world.grant('ola')} (Ola Owner: role 'Payroll Admin') is no longer "
        "held as it was reviewed (removed, or granted again, since the snapshot)",
    ]
    assert query(world.path, "SELECT count(*) FROM provisioning.requests") == [(0,)]


def test_a_grant_made_by_a_request_says_so_with_when_it_was_applied(sim, world):
    request_id = grant(world.path, "mia@example.com", role="Payroll Admin")
    provision(sim, world.path, provisioning=True, ticketing=True)
    [(applied_at,)] = query(
        world.path,
        "SELECT strftime(min(changed_at), '%Y-%m-%d %H:%M UTC') FROM provisioning.request_events "
        "WHERE request_id = ? AND to_status = 'applied'",
        [request_id],
    )
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")

    assert query(
        world.path,
        "SELECT agent_name, held_since_first_sync, last_change FROM reviews.items "
        "ORDER BY agent_name",
    ) == [
        ("Mia Manager", False,
         f"granted by request {request_id} (ana@example.com: on call), applied {applied_at}"),
        ("Ned Newcomer", True, "held when the warehouse first synced"),
        ("Ola Owner", True, "held when the warehouse first synced"),
        ("Pat Nomad", True, "held when the warehouse first synced"),
    ]  # fmt: skip


# What the evidence pack says of a revoke: confirmed removed only while the latest sync that read
# the agent after the revoke was applied finds the grant absent.


def revoke_ned(world: World) -> int:
    """Ned's Payroll Admin revoked in a closed campaign: the request the close filed."""
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--revoke", "--by",
       "mia@example.com")  # fmt: skip
    ok(world.path, "close", "payroll", "--by", "lead@example.com", "--force")
    [(request_id,)] = query(world.path, "SELECT request_id FROM provisioning.requests")
    return request_id


def report(world: World, folder: Path) -> tuple[str, dict[str, str], str]:
    """The report's summary line, Ned's row of report.csv and report.html."""
    said = ok(world.path, "report", "payroll", "--out", str(folder))
    with (folder / "report.csv").open(encoding="utf-8") as evidence:
        [ned] = [row for row in csv.DictReader(evidence) if row["grant_id"] == world.grant("ned")]
    return said.splitlines()[1], ned, (folder / "report.html").read_text(encoding="utf-8")


def summary(confirmed: int) -> str:
    return (
        f"3 grants: 0 kept, 1 revoked ({confirmed} confirmed removed by a later sync), "
        "2 not reviewed, 0 undecided."
    )


def last_sync(world: World) -> int:
    [(sync_id,)] = query(world.path, "SELECT max(sync_id) FROM halo.sync_runs")
    return sync_id


def test_a_revoke_never_applied_is_not_confirmed_by_a_grant_removed_by_hand(sim, world, tmp_path):
    request_id = revoke_ned(world)
    # Someone removes the role in HaloITSM; provisioning never applies the request.
    sim.set_agent_roles(world.ids["ned"], [])
    sync(sim, world.path)
    build_access(world.path)
    gone_in = last_sync(world)

    said, ned, page = report(world, tmp_path / "evidence")

    assert said == summary(confirmed=0)
    assert (ned["request_id"], ned["request_status"], ned["removed_in_sync_id"], ned["removal"]) == (
        str(request_id), "pending", str(gone_in), "not confirmed: request pending",
    )  # fmt: skip
    assert "0 of 1</b>revokes confirmed removed by a later sync" in page
    assert (
        f"not confirmed: request pending (the grant reviewed was removed in sync {gone_in}, "
        in page
    )


def test_a_revoke_is_confirmed_once_a_sync_reads_it_gone_and_no_longer_once_held_again(
    sim, world, tmp_path
):
    revoke_ned(world)
    # Applied in HaloITSM, and no sync has read Ned since.
    with halo_client(sim) as client:
        Provisioner(
            client, lambda: connect(world.path),
            ProvisioningSettings(provisioning=True, verify_interval_s=0),
        ).run()  # fmt: skip
    assert world.role not in [role["id"] for role in sim.get_agent(world.ids["ned"])["roles"]]

    said, ned, _ = report(world, tmp_path / "applied")
    assert said == summary(confirmed=0)
    assert (ned["request_status"], ned["removed_in_sync_id"], ned["removal"]) == (
        "applied", "", "not yet confirmed by a sync",
    )  # fmt: skip

    sync(sim, world.path)
    build_access(world.path)
    gone_in = last_sync(world)

    said, ned, page = report(world, tmp_path / "synced")
    assert said == summary(confirmed=1)
    assert (ned["removed_in_sync_id"], ned["removal"]) == (str(gone_in), "confirmed")
    assert "1 of 1</b>revokes confirmed removed by a later sync" in page
    assert f"confirmed removed by sync {gone_in}, " in page

    # Someone grants the role again in HaloITSM.
    sim.set_agent_roles(world.ids["ned"], [world.role])
    sync(sim, world.path)
    build_access(world.path)
    again_in = last_sync(world)

    said, ned, page = report(world, tmp_path / "again")
    assert said == summary(confirmed=0)
    assert (ned["removed_in_sync_id"], ned["removal"]) == (
        str(gone_in), f"held again since sync {again_in}",
    )  # fmt: skip
    assert "0 of 1</b>revokes confirmed removed by a later sync" in page
    assert (
        f"held again since sync {again_in} (the grant reviewed was removed in sync {gone_in}, "
        in page
    )


def test_a_sync_that_did_not_read_the_agent_after_the_revoke_does_not_confirm_it(
    sim, world, tmp_path
):
    revoke_ned(world)
    with halo_client(sim) as client:
        Provisioner(
            client, lambda: connect(world.path),
            ProvisioningSettings(provisioning=True, verify_interval_s=0),
        ).run()  # fmt: skip
    # A tenant where only details name roles, and Ned the agent read most recently: a full
    # sync with room for one detail reads another agent, and carries Ned's grant over unread.
    sim.config.ignore_role_filter, sim.config.omit_memberships = True, True
    with connect(world.path) as con:
        con.execute("UPDATE halo.agents SET roles_read_at = roles_read_at - INTERVAL 1 DAY "
                    "WHERE agent_id <> ?", [world.ids["ned"]])  # fmt: skip
    result = sync(sim, world.path, detail_reads_per_sync=1)
    build_access(world.path)

    assert result.memberships_from.startswith("agent details (1 of ")
    said, ned, _ = report(world, tmp_path / "unread")
    assert said == summary(confirmed=0)
    assert (ned["removed_in_sync_id"], ned["removal"]) == ("", "not yet confirmed by a sync")


def test_an_agent_deleted_after_the_revoke_keeps_it_confirmed(sim, world, tmp_path):
    revoke_ned(world)
    provision(sim, world.path, provisioning=True)  # applied, then the targeted sync reads Ned
    [(gone_in, kind)] = query(
        world.path, "SELECT sync_id, kind FROM halo.sync_runs ORDER BY sync_id DESC LIMIT 1"
    )
    assert kind == "targeted"
    assert report(world, tmp_path / "applied")[1]["removal"] == "confirmed"

    # A deleted agent holds nothing: the full sync that no longer lists Ned confirms it still.
    sim.delete_agent(world.ids["ned"])
    sync(sim, world.path)
    build_access(world.path)

    said, ned, _ = report(world, tmp_path / "deleted")
    assert query(
        world.path, "SELECT count(*) FROM halo.agents WHERE agent_id = ?", [world.ids["ned"]]
    ) == [(0,)]
    assert said == summary(confirmed=1)
    assert (ned["request_status"], ned["removed_in_sync_id"], ned["removal"]) == (
        "applied", str(gone_in), "confirmed",
    )  # fmt: skip


def test_a_revoke_the_close_filed_no_request_for_is_not_confirmed(sim, world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--revoke", "--by",
       "mia@example.com")  # fmt: skip
    sim.set_agent_roles(world.ids["ned"], [])
    sync(sim, world.path)
    build_access(world.path)
    ok(world.path, "close", "payroll", "--by", "lead@example.com", "--force")

    said, ned, _ = report(world, tmp_path / "evidence")

    assert said == summary(confirmed=0)
    assert (ned["request_id"], ned["removed_in_sync_id"], ned["removal"]) == (
        "", str(last_sync(world)), "not confirmed: no revoke request",
    )  # fmt: skip


def test_export_and_report_replace_what_out_names_only_with_force(world, tmp_path):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    sheet, folder = tmp_path / "sheet.csv", tmp_path / "evidence"
    ok(world.path, "export", "payroll", "--format", "csv", "--out", str(sheet))
    ok(world.path, "report", "payroll", "--out", str(folder))
    sheet.write_text("mine")
    for args, kind in (
        (["export", "payroll", "--format", "csv", "--out", str(sheet)], "file"),
        (["report", "payroll", "--out", str(folder)], "folder"),
    ):
        assert refused(world.path, *args) == (
            f"Error: {args[-1]} exists: a {kind} already written is not replaced. Give another "
            "--out, or --force to replace it.\n"
        )
        ok(world.path, *args, "--force")
    assert sheet.read_text().startswith("grant_id,")


def test_the_evidence_says_which_decisions_verify_and_which_a_lost_key_signed(
    world, tmp_path, monkeypatch
):
    ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin")
    ok(world.path, "decide", "payroll", "--grant", world.grant("ned"), "--keep",
       "--by", "mia@example.com")  # fmt: skip
    ok(world.path, "report", "payroll", "--out", str(tmp_path / "before"))
    with (tmp_path / "before" / "report.csv").open(encoding="utf-8") as evidence:
        before = {row["agent_name"]: row["signature"] for row in csv.DictReader(evidence)}
    assert before == {"Ned Newcomer": "verified", "Ola Owner": "", "Pat Nomad": ""}

    # The key is lost; a new one is made: what the old one signed can no longer be verified.
    with connect(world.path) as con:
        lost = load_keyring().active.key_id
        new = init_keyring(warehouse_id(con), tmp_path / "new" / "halo-signing.key")
    monkeypatch.setenv("HALO_SIGNING_KEY_FILE", str(new.path))
    ok(world.path, "report", "payroll", "--out", str(tmp_path / "after"))
    with (tmp_path / "after" / "report.csv").open(encoding="utf-8") as evidence:
        after = {row["agent_name"]: row["signature"] for row in csv.DictReader(evidence)}
    assert after["Ned Newcomer"] == (
        f"unverifiable: it is signed with key {lost!r}, which {new.path} does not hold (lost "
        "or from elsewhere): unverifiable"
    )
