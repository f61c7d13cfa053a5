"""Provisioning against the simulator: plans, writes, verification, tickets and the audit trail."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from halo_pipeline.cli import main
from halo_pipeline.provisioning.filing import file_account
from halo_pipeline.simulator import Fault, Simulator, generate_dataset
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import (
    MANUAL,
    PROJECT,
    build_access,
    grant,
    posts,
    provision,
    query,
    set_ticket_status,
    sync,
    ticket_tag,
)

ROLE = {role.name: role.id for role in generate_dataset().roles}
READ_ONLY = ROLE["Read Only"]


def status(path: Path, request_id: int) -> tuple:
    return query(
        path, "SELECT status, error FROM provisioning.requests WHERE request_id = ?", [request_id]
    )[0]


def events(path: Path, request_id: int) -> list[tuple]:
    return query(
        path,
        "SELECT from_status, to_status FROM provisioning.request_events WHERE request_id = ? ORDER BY event_id",
        [request_id],
    )


def role_names(sim: Simulator, agent_id: int) -> list[str]:
    return [role["name"] for role in sim.get_agent(agent_id)["roles"]]


def test_grant_grant_again_revoke_revoke_again_then_sync(sim, path):
    first = grant(path, "9", role="Read Only")
    provision(sim, path, provisioning=True)

    assert role_names(sim, 9) == ["Read Only"]
    assert status(path, first) == ("applied", None)
    assert events(path, first) == [
        (None, "pending"),
        ("pending", "applying"),
        ("applying", "applied"),
    ]
    assert posts(sim) == 1
    # The targeted sync shows it at once.
    assert query(
        path,
        "SELECT count(*) FROM access.grants WHERE grant_id = ?",
        [f"role:{READ_ONLY}:assigned:agent:9"],
    ) == [(1,)]

    again = grant(path, "9", role="Read Only")
    provision(sim, path, provisioning=True)

    assert status(path, again) == ("already_satisfied", None)
    assert events(path, again) == [(None, "pending"), ("pending", "already_satisfied")]
    assert posts(sim) == 1

    revoke = grant(path, "priya patel", role=READ_ONLY, action="revoke")
    provision(sim, path, provisioning=True)

    assert role_names(sim, 9) == []
    assert status(path, revoke) == ("applied", None)
    assert events(path, revoke) == [
        (None, "pending"),
        ("pending", "applying"),
        ("applying", "applied"),
    ]
    assert posts(sim) == 2
    assert query(
        path, "SELECT count(*) FROM access.grants WHERE principal_id = 9 AND resource_type = 'role'"
    ) == [(0,)]

    revoke_again = grant(path, "agent9@example.com", role="read only", action="revoke")
    provision(sim, path, provisioning=True)

    assert status(path, revoke_again) == ("already_satisfied", None)
    assert events(path, revoke_again) == [(None, "pending"), ("pending", "already_satisfied")]
    assert posts(sim) == 2

    sync(sim, path)
    build_access(path)
    assert query(
        path,
        "SELECT s.kind, c.change FROM access.grant_changes c JOIN halo.sync_runs s USING (sync_id) "
        "WHERE c.principal_id = 9 ORDER BY c.sync_id",
    ) == [("targeted", "added"), ("targeted", "removed")]
    # Each run re-read its agents into the warehouse as a targeted sync.
    assert query(path, "SELECT kind FROM halo.sync_runs WHERE status = 'succeeded' ORDER BY sync_id") == [
        ("full",), ("targeted",), ("targeted",), ("targeted",), ("targeted",), ("full",),
    ]  # fmt: skip


def test_several_requests_for_one_agent_are_one_write(sim, path):
    requests = [
        grant(path, "10", role="Administrator"),
        grant(path, "10", team="1st Line Support"),
        grant(path, "10", role="Agent", action="revoke"),
    ]

    provision(sim, path, provisioning=True)

    assert sim.request_counts[("POST", "/api/agent")] == 1
    # The read, the verification, and the targeted sync's read after the run.
    assert sim.request_counts[("GET", "/api/agent/<id>")] == 3
    assert role_names(sim, 10) == ["Read Only", "Administrator"]
    assert [team["team_id"] for team in sim.get_agent(10)["teams"]] == [1]
    assert [status(path, r)[0] for r in requests] == ["applied"] * 3
    plan = query(path, "SELECT DISTINCT plan FROM provisioning.requests")
    assert plan == [(
        f'POST /api/agent [{{"id": 10, "roles": [{{"id": "{ROLE["Read Only"]}"}}, '
        f'{{"id": "{ROLE["Administrator"]}"}}], "teams": [{{"team_id": 1}}]}}] '
        "(adds role 'Administrator'; adds team '1st Line Support'; removes role 'Agent')",
    )]  # fmt: skip


def test_dry_run_plans_and_writes_nothing(sim, path):
    request = grant(path, "9", role="Read Only")
    with connect(path) as con:
        create = file_account(
            con,
            "create_account",
            name="New Person",
            email="new@example.com",
            reason="r",
            requested_by="ana@example.com",
        ).request_id
        disable = file_account(
            con, "disable_account", agent="4", reason="r", requested_by="ana@example.com"
        ).request_id

    provision(sim, path, provisioning=False, ticketing=True)

    assert posts(sim) == 0
    assert sim.tickets == []
    assert role_names(sim, 9) == []
    assert query(path, "SELECT request_id, status, plan FROM provisioning.requests ORDER BY 1") == [
        (request, "planned", f'POST /api/agent [{{"id": 9, "roles": [{{"id": "{READ_ONLY}"}}]}}] (adds role \'Read Only\')'),
        (create, "planned", 'POST /api/agent [{"name": "New Person", "email": "new@example.com", "is_agent": true}]'),
        (disable, "planned", 'POST /api/agent [{"id": 4, "isdisabled": true}]'),
    ]  # fmt: skip

    provision(sim, path, provisioning=True)  # turning provisioning on applies what was planned

    assert [status(path, r)[0] for r in (request, create, disable)] == ["applied"] * 3
    assert role_names(sim, 9) == ["Read Only"]
    assert sim.get_agent(4)["isdisabled"] is True
    assert query(
        path, "SELECT agent_id, name FROM halo.agents WHERE email = 'new@example.com'"
    ) == [(42, "New Person")]


def test_merge_mode_revoke_is_reported_as_failed(sim, path):
    sim.config.array_writes = "merge"
    revoke = grant(path, "2", role="Administrator", action="revoke")
    also = grant(path, "2", team="2")

    provision(sim, path, provisioning=True)

    assert role_names(sim, 2) == ["Administrator", "Agent", "Change Manager"]
    assert status(path, revoke) == (
        "failed",
        "HaloITSM accepted the write but the change did not take: after 6 reads agent 2 still "
        "holds role 'Administrator'. This instance may merge posted lists instead of replacing "
        "them; make the change in HaloITSM by hand.",
    )
    assert status(path, also) == ("applied", None)  # the grant in the same write did take
    assert sim.request_counts[("GET", "/api/agent/<id>")] == 1 + 6 + 1  # read, verify, sync


MANAGER_OF_TEAM_1 = {
    "team_id": 1, "team_name": "1st Line Support", "department_id": 1.0, "in_section": True,
    "is_manager": True, "fortickets": True, "foropps": True, "forprojects": False,
    "unassigned_access": True, "otheragent_access": True, "no_config_access": False,
    "role_id": None, "role_name": None,
}  # fmt: skip


def team_rows(sim: Simulator, agent_id: int) -> dict[int, dict]:
    return {row["team_id"]: row for row in sim.get_agent(agent_id)["teams"]}


@pytest.mark.parametrize("array_writes", ["replace", "merge"])
def test_a_team_add_keeps_every_other_membership_exactly_as_it_was(sim, path, array_writes):
    """Zoë Müller manages team 1. Adding her to team 2 posts team 1 back exactly as read (a
    row posted with its team_id alone would lose is_manager and the permissions), and team 2
    as {"team_id": 2} alone, so HaloITSM gives it its defaults."""
    sim.config.array_writes = array_writes
    before = team_rows(sim, 2)
    assert before[1] == MANAGER_OF_TEAM_1
    request = grant(path, "2", team="2nd Line Support")

    provision(sim, path, provisioning=True)

    assert status(path, request) == ("applied", None)
    after = team_rows(sim, 2)
    assert (after[1], after[3]) == (before[1], before[3])
    assert after[2] | {"team_name": None} == {
        "team_id": 2, "team_name": None, "department_id": 1.0, "in_section": True,
        "is_manager": False, "fortickets": True, "foropps": False, "forprojects": False,
        "unassigned_access": False, "otheragent_access": False, "no_config_access": False,
        "role_id": None, "role_name": None,
    }  # fmt: skip
    [(plan,)] = query(
        path, "SELECT plan FROM provisioning.requests WHERE request_id = ?", [request]
    )
    posted = json.loads(plan.removeprefix("POST /api/agent ").rsplit(" (", 1)[0])
    assert posted == [{"id": 2, "teams": [MANAGER_OF_TEAM_1, before[3], {"team_id": 2}]}]
    # The warehouse keeps the flags too (the targeted sync after the run).
    assert query(path, "SELECT team_id, is_manager, otheragent_access FROM halo.agent_teams WHERE agent_id = 2 ORDER BY 1") == [
        (1, True, True), (2, False, False), (3, False, False),
    ]  # fmt: skip


def test_a_team_removal_leaves_out_that_team_alone(sim, path):
    request = grant(path, "2", team="3", action="revoke")

    provision(sim, path, provisioning=True)

    assert status(path, request) == ("applied", None)
    assert team_rows(sim, 2) == {1: MANAGER_OF_TEAM_1}


def test_a_row_that_is_not_a_membership_is_written_back_and_a_grant_replaces_it(sim, path):
    # Robert Tables (4) is in team 2 and has an in_section=false row for team 1.
    assert [(r["team_id"], r["in_section"]) for r in sim.get_agent(4)["teams"]] == [
        (2, True),
        (1, False),
    ]
    add_6 = grant(path, "4", team="6")
    provision(sim, path, provisioning=True)
    assert status(path, add_6) == ("applied", None)
    assert [(r["team_id"], r["in_section"]) for r in sim.get_agent(4)["teams"]] == [
        (2, True),
        (1, False),
        (6, True),
    ]

    add_1 = grant(path, "4", team="1")
    provision(sim, path, provisioning=True)

    assert status(path, add_1) == ("applied", None)
    assert [(r["team_id"], r["in_section"]) for r in sim.get_agent(4)["teams"]] == [
        (2, True),
        (6, True),
        (1, True),
    ]


class FlagsDropped:
    """A WSGI wrapper playing a HaloITSM that keeps only team_id of each posted membership,
    so every kept membership is reset to the defaults."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/api/agent":
            body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
            for element in body:
                if "teams" in element:
                    element["teams"] = [{"team_id": t["team_id"]} for t in element["teams"]]
            raw = json.dumps(body).encode()
            environ = {**environ, "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))}
        return self.sim.app(environ, start_response)


def test_a_write_that_resets_another_membership_fails_its_request_naming_the_damage(sim, path):
    request = grant(path, "2", team="2nd Line Support")

    provision(sim, path, app=FlagsDropped(sim), provisioning=True)

    state, error = status(path, request)
    assert state == "failed"
    assert error.startswith(
        "HaloITSM wrote agent 2 but also changed what was not asked: team 1 is_manager True -> "
        "False; team 1 foropps True -> False; team 1 unassigned_access True -> False; team 1 "
        "otheragent_access True -> False. Put those back in HaloITSM by hand; the write was "
        'POST /api/agent [{"id": 2, "teams": [{"team_id": 1, '
    )
    assert team_rows(sim, 2)[1]["is_manager"] is False  # what the person must put back


def test_every_id_as_a_float_syncs_and_provisions_the_same(sim, path):
    sim.config.float_ids = "all"
    request = grant(path, "2", team="2nd Line Support")
    revoke = grant(path, "2", role="Administrator", action="revoke")

    provision(sim, path, provisioning=True, ticketing=True)
    sync(sim, path)

    assert [status(path, r) for r in (request, revoke)] == [("applied", None)] * 2
    assert team_rows(sim, 2)[1] == MANAGER_OF_TEAM_1 | {"team_id": 1.0, "department_id": 1.0}
    assert query(path, "SELECT team_id FROM halo.agent_teams WHERE agent_id = 2 ORDER BY 1") == [
        (1,),
        (2,),
        (3,),
    ]
    assert (
        query(path, "SELECT ticket_id IS NOT NULL, ticket_closed FROM provisioning.requests")
        == [(True, True)] * 2
    )


def test_verification_waits_for_halos_read_after_write_lag(sim, path):
    sim.config.write_lag_s = 0.4
    request = grant(path, "9", role="Read Only")

    provision(sim, path, provisioning=True, verify_interval_s=0.2)

    assert status(path, request) == ("applied", None)
    assert sim.request_counts[("GET", "/api/agent/<id>")] >= 3


def test_unknown_or_ambiguous_names_are_refused_with_candidates_and_nothing_is_written(path):
    def run(*args: str):
        return CliRunner().invoke(
            main,
            [
                "request",
                *args,
                "--reason",
                "r",
                "--requested-by",
                "ana@example.com",
                "--warehouse",
                str(path),
            ],
        )

    unknown_agent = run("grant", "--agent", "999", "--role", "Agent")
    ambiguous = run("grant", "--agent", "Björn Müller", "--role", "Agent")
    unknown_role = run("grant", "--agent", "9", "--role", "Auditor")
    typo = run("revoke", "--agent", "9", "--role", "Administratr")
    unknown_team = run("grant", "--agent", "9", "--team", "Security")
    neither = run("grant", "--agent", "9")

    assert unknown_agent.exit_code == 1
    assert (
        unknown_agent.output
        == "Error: Unknown agent '999': not in the last sync. Nothing was filed.\n"
    )
    assert ambiguous.output == (
        "Error: agent 'Björn Müller' is ambiguous: it matches 34 Björn Müller <agent34@example.com>; "
        "40 Björn Müller <agent40@example.com>. Use the id. Nothing was filed.\n"
    )
    assert unknown_role.output.startswith("Error: Unknown role 'Auditor': not in the last sync.")
    assert f"Did you mean: Administrator ({ROLE['Administrator']})?" in typo.output
    assert unknown_team.output == (
        "Error: Unknown team 'Security': not in the last sync. Did you mean: "
        'Security "Red" Team (4)? Nothing was filed.\n'
    )
    assert neither.output == "Error: Name exactly one of --role and --team. Nothing was filed.\n"
    assert query(path, "SELECT count(*) FROM provisioning.requests") == [(0,)]
    assert query(path, "SELECT count(*) FROM provisioning.request_events") == [(0,)]


def test_a_sql_filed_request_with_a_bad_entitlement_is_failed_by_the_job(sim, path):
    grant(path, "9", role="Read Only")
    with connect(path) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, requested_by) "
            "VALUES ('grant', 'team:99:member', 9, 'by hand', 'ana@example.com'), "
            "('grant', 'team:4:member', 9, 'by hand', 'ana@example.com')"
        )

    provision(sim, path, provisioning=True)

    assert status(path, 2) == (
        "failed",
        "Unknown entitlement 'team:99:member': no such team. Teams: 1st Line Support (1), "
        '2nd Line Support (2), Legacy Apps (retired) (5), Security "Red" Team (4), '
        "Service Desk – Café (3), Закупки (6).",
    )
    assert events(path, 2) == [(None, "pending"), ("pending", "failed")]
    assert query(
        path,
        "SELECT detail FROM provisioning.request_events WHERE request_id = 2 ORDER BY event_id LIMIT 1",
    ) == [("filed with SQL",)]
    assert status(path, 3) == ("applied", None)
    assert [team["team_id"] for team in sim.get_agent(9)["teams"]] == [3, 4]


def test_a_request_for_an_agent_deleted_since_the_sync_fails(sim, path):
    request = grant(path, "9", role="Read Only")
    other = grant(path, "10", role="Administrator")
    sim.delete_agent(9)

    provision(sim, path, provisioning=True)

    assert status(path, request) == (
        "failed",
        "Agent 9 (Priya Patel) no longer exists in HaloITSM: it was deleted after the last sync. "
        "Nothing was changed.",
    )
    assert status(path, other) == ("applied", None)
    assert sim.request_counts[("POST", "/api/agent")] == 1


def test_each_request_gets_one_ticket_opened_then_closed_with_the_outcome(sim, path):
    applied = grant(path, "9", role="Read Only")
    satisfied = grant(path, "2", role="Administrator")
    failing = grant(path, "10", role="Administrator")
    sim.delete_agent(10)

    provision(sim, path, provisioning=True, ticketing=True)

    tickets = {t["summary"].split("]")[0] + "]": t for t in sim.tickets}
    assert sorted(tickets) == [ticket_tag(path, r) for r in (applied, satisfied)]
    ticket = tickets[ticket_tag(path, applied)]
    assert (
        ticket["summary"]
        == f"{ticket_tag(path, applied)} Grant role 'Read Only' to agent 9 (Priya Patel)"
    )
    assert ticket["tickettype_id"] == 3  # "Service Request", the default type
    assert ticket["status_id"] == 9  # Closed, by the action below
    # What was asked stays the ticket's text; the outcome is an action beside it.
    assert ticket["details"] == (
        "Access request #1, filed with halo-pipeline: grant role 'Read Only' to agent 9 "
        "(Priya Patel).\nReason: on call\nRequested by: ana@example.com\nhalo-pipeline makes the change "
        "and closes this ticket with the outcome."
    )
    actions = {a["ticket_id"]: a for a in sim.actions}
    assert {k: actions[ticket["id"]][k] for k in ("outcome", "note", "new_status", "hiddenfromuser")} == {
        "outcome": "halo-pipeline", "note": "Outcome: applied", "new_status": 9, "hiddenfromuser": False,
    }  # fmt: skip
    assert (
        actions[tickets[ticket_tag(path, satisfied)]["id"]]["note"] == "Outcome: already_satisfied"
    )
    assert query(path, "SELECT request_id, ticket_id IS NOT NULL, ticket_closed FROM provisioning.requests ORDER BY 1") == [
        (applied, True, True), (satisfied, True, True), (failing, False, False),
    ]  # fmt: skip
    assert sim.request_counts[("POST", "/api/tickets")] == 2  # two creates
    assert sim.request_counts[("POST", "/api/actions")] == 2  # two closes
    assert sim.request_counts[("GET", "/api/tickets")] == 0  # no search without a crash
    # Statuses are read as ticket statuses: names repeat in other status types.
    assert [r.query for r in sim.request_log if r.path == "/api/status"] == [{"type": "ticket"}]
    # Every write is an array of one record, as every client seen live sends them.
    writes = [(r.path, r.body) for r in sim.request_log if r.method == "POST" and r.body]
    assert sorted({path for path, _ in writes}) == ["/api/actions", "/api/agent", "/api/tickets"]
    assert all(isinstance(body, list) and len(body) == 1 for _, body in writes), writes

    provision(sim, path, provisioning=True, ticketing=True)  # nothing left to do

    assert len(sim.tickets) == 2
    assert sim.request_counts[("POST", "/api/tickets")] == 2
    assert sim.request_counts[("POST", "/api/actions")] == 2


def test_ticket_type_by_name_and_a_clear_error_for_an_unknown_one(sim, path):
    first = grant(path, "9", role="Read Only")
    provision(sim, path, provisioning=True, ticketing=True, ticket_type="Incident")
    assert sim.tickets[0]["tickettype_id"] == 1

    second = grant(path, "9", role="Agent")
    provision(sim, path, provisioning=True, ticketing=True, ticket_type="Onboarding")

    assert status(path, first)[0] == "applied"
    assert status(path, second) == (
        "failed",
        "No ticket type 'Onboarding' in HaloITSM (as of the last sync). Set HALO_TICKET_TYPE to "
        "one of: Incident (1), Service Request (3), Access Request (25).",
    )
    assert role_names(sim, 9) == ["Read Only"]  # no change without its ticket


def test_a_ticket_type_with_a_mandatory_field_needs_halo_ticket_fields(sim, path):
    """Access Request makes category_1 mandatory: without HALO_TICKET_FIELDS HaloITSM refuses
    the ticket, and the request fails with its message before anything is written."""
    refused = grant(path, "9", role="Read Only")

    provision(sim, path, provisioning=True, ticketing=True, ticket_type="Access Request")

    message = "POST /api/tickets: HaloITSM refused the data (HTTP 400, 'Category is required')."
    assert status(path, refused) == ("failed", message)
    assert query(path, "SELECT to_status, detail FROM provisioning.request_events WHERE request_id = ? ORDER BY event_id DESC LIMIT 1", [refused]) == [("failed", message)]  # fmt: skip
    assert sim.tickets == []
    assert sim.request_counts[("POST", "/api/agent")] == 0
    assert role_names(sim, 9) == []

    applied = grant(path, "9", role="Read Only")
    provision(
        sim, path, provisioning=True, ticketing=True, ticket_type="Access Request",
        ticket_fields={"category_1": "Access", "client_id": 12},
    )  # fmt: skip

    assert status(path, applied) == ("applied", None)
    assert role_names(sim, 9) == ["Read Only"]
    [ticket] = sim.tickets
    assert (ticket["tickettype_id"], ticket["category_1"], ticket["client_id"]) == (
        25,
        "Access",
        12,
    )
    assert ticket["status_id"] == 9
    assert ticket["details"].startswith(f"Access request #{applied}, filed with halo-pipeline:")
    assert "Outcome" not in ticket["details"]  # closed by an action, its text left intact
    assert [(a["ticket_id"], a["note"], a["new_status"]) for a in sim.actions] == [
        (ticket["id"], "Outcome: applied", 9)
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            '{"category_1": ',
            'HALO_TICKET_FIELDS is not valid JSON (Expecting value: line 1 column 16 (char 15)); write an object such as {"category_1": "Access", "client_id": 12}.',
        ),
        (
            '["Access"]',
            'HALO_TICKET_FIELDS must be a JSON object such as {"category_1": "Access", "client_id": 12}, not a list.',
        ),
        (
            '{"summary": "x", "status_id": 2}',
            "HALO_TICKET_FIELDS sets status_id, summary, which the pipeline sets itself; use HALO_TICKET_TYPE and HALO_TICKET_OPEN_STATUS for the type and status.",
        ),
    ],
)
def test_halo_ticket_fields_that_cannot_be_used_are_named(value, message, monkeypatch):
    from halo_pipeline.provisioning.settings import ProvisioningSettings, SettingsError

    monkeypatch.setenv("HALO_TICKET_FIELDS", value)
    with pytest.raises(SettingsError) as error:
        ProvisioningSettings.load()
    assert str(error.value) == message


def test_a_dotenv_copied_from_the_example_leaves_every_blank_setting_unset(tmp_path, monkeypatch):
    """`cp .env.example .env`, as the README says: its blank values (HALO_TICKET_FIELDS=) are
    unset, not JSON to parse, before any setting's own check."""
    from halo_pipeline import environment
    from halo_pipeline.provisioning.settings import REQUEST_FIELDS, ProvisioningSettings

    (tmp_path / ".env").write_text((PROJECT / ".env.example").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(environment, "ENV_FILE", Path(".env"))

    settings = ProvisioningSettings.load()

    assert (settings.ticket_fields, settings.request_fields, settings.approval_results) == (
        {}, REQUEST_FIELDS, None,
    )  # fmt: skip
    assert (settings.request_ticket_type, settings.ticket_type, settings.provisioning) == (
        None, None, False,
    )  # fmt: skip


def test_a_crash_after_the_write_is_finished_without_writing_again(sim, path):
    request = grant(path, "9", role="Read Only")
    provision(sim, path, provisioning=False)
    # What a run killed between the write and its record leaves: status applying, Halo changed.
    with connect(path) as con:
        con.execute("UPDATE provisioning.requests SET status = 'applying'")
    sim.set_agent_roles(9, [READ_ONLY])

    provision(sim, path, provisioning=True)

    assert status(path, request) == ("applied", None)
    assert posts(sim) == 0


def test_a_crash_after_the_ticket_was_created_finds_it_instead_of_opening_another(sim, path):
    grant(path, "9", role="Read Only")
    provision(sim, path, provisioning=True, ticketing=True)
    ticket_id = sim.tickets[0]["id"]
    # As if the run died after Halo created the ticket but before the warehouse recorded it.
    with connect(path) as con:
        con.execute(
            "UPDATE provisioning.requests SET status = 'pending', ticket_id = NULL, ticket_closed = false"
        )
    sim.set_agent_roles(9, [])

    provision(sim, path, provisioning=True, ticketing=True)

    assert [t["id"] for t in sim.tickets] == [ticket_id]
    assert query(path, "SELECT ticket_id, status FROM provisioning.requests") == [
        (ticket_id, "applied")
    ]
    assert role_names(sim, 9) == ["Read Only"]


def test_account_requests(sim, path):
    with connect(path) as con:
        create = file_account(
            con,
            "create_account",
            name="Ada Lovelace",
            email="ada@example.com",
            team="2nd Line Support",
            reason="new hire",
            requested_by="hr@example.com",
        ).request_id
        disable = file_account(
            con, "disable_account", agent="4", reason="left", requested_by="hr@example.com"
        ).request_id
        enable = file_account(
            con, "enable_account", agent="6", reason="back", requested_by="hr@example.com"
        ).request_id
        again = file_account(
            con, "disable_account", agent="7", reason="left", requested_by="hr@example.com"
        ).request_id

    provision(sim, path, provisioning=True)

    assert [status(path, r)[0] for r in (create, disable, enable, again)] == [
        "applied",
        "applied",
        "applied",
        "already_satisfied",
    ]
    ada = sim.get_agent(42)
    assert (ada["name"], ada["email"], ada["team"], [t["team_id"] for t in ada["teams"]]) == (
        "Ada Lovelace",
        "ada@example.com",
        "2nd Line Support",
        [2],
    )
    assert (sim.get_agent(4)["isdisabled"], sim.get_agent(6)["isdisabled"]) == (True, False)
    assert query(
        path, "SELECT agent_id FROM provisioning.requests WHERE request_id = ?", [create]
    ) == [(42,)]
    assert query(
        path,
        "SELECT agent_id, is_disabled FROM halo.agents WHERE agent_id IN (4, 6, 42) ORDER BY 1",
    ) == [(4, True), (6, False), (42, False)]
    with (
        connect(path) as con,
        pytest.raises(
            ValueError, match="agent 42 \\(Ada Lovelace\\) already has the email ada@example.com"
        ),
    ):
        file_account(
            con,
            "create_account",
            name="Ada",
            email="ADA@example.com",
            reason="r",
            requested_by="hr@example.com",
        )


MALFORMED = [
    # (action, entitlement_id, agent_id, reason, requested_by, account_email), why it fails
    (("promote", None, 9, "r", "ana@example.com", None),
     "Unknown action 'promote': use one of grant, revoke, create_account, disable_account, enable_account."),
    (("grant", "team:4:member", 9, "  ", "ana@example.com", None),
     "Say why: --reason cannot be blank; it goes on the ticket."),
    (("grant", "team:4:member", 9, "r", "", None),
     "Say who asks: --requested-by needs the requester's email address."),
    (("grant", "team:4:member", 9, "r", "ana", None),
     "The requester 'ana' is not an email address: An email address must have an @-sign."),
    (("grant", "team:4:member", None, "r", "ana@example.com", None),
     "The request names no agent (agent_id is empty)."),
    (("revoke", None, 9, "r", "ana@example.com", None),
     "The request names no entitlement (entitlement_id is empty)."),
    (("disable_account", None, None, "r", "ana@example.com", None),
     "The request names no agent (agent_id is empty)."),
    (("create_account", None, None, "r", "ana@example.com", "not-an-email"),
     "The new agent's email 'not-an-email' is not an email address: An email address must have an @-sign."),
    (("grant", "x" * 100_000, 9, "r", "ana@example.com", None),
     f"Unknown entitlement {'x' * 80!r}... (100000 characters): use role:<role_id>:assigned or team:<team_id>:member (see access.entitlements)."),
]  # fmt: skip


def test_each_malformed_row_fails_alone_with_its_reason_and_the_valid_ones_are_applied(sim, path):
    valid = [grant(path, "9", role="Read Only"), grant(path, "10", team="1")]
    with connect(path) as con:
        con.executemany(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by, account_email) VALUES (?, ?, ?, ?, ?, ?)",
            [row for row, _ in MALFORMED],
        )

    summary = provision(sim, path, provisioning=True)

    failed = query(
        path, "SELECT error FROM provisioning.requests WHERE status = 'failed' ORDER BY request_id"
    )
    assert failed == [(why,) for _, why in MALFORMED]
    assert [status(path, r) for r in valid] == [("applied", None)] * 2
    assert sorted(summary.counts.items()) == [("applied", 2), ("failed", len(MALFORMED))]
    assert posts(sim) == 2  # the two valid writes; nothing for the malformed rows


def test_a_second_row_with_a_taken_request_id_is_refused_by_the_database(path):
    request = grant(path, "9", role="Read Only")

    with connect(path) as con, pytest.raises(duckdb.ConstraintException) as refused:
        con.execute(
            "INSERT INTO provisioning.requests (request_id, action, entitlement_id, agent_id, "
            "reason, requested_by) VALUES (?, 'grant', 'team:4:member', 9, 'r', 'ana@example.com')",
            [request],
        )

    assert f'Duplicate key "request_id: {request}" violates primary key constraint' in str(
        refused.value
    )
    assert query(path, "SELECT count(*) FROM provisioning.requests") == [(1,)]
    # An id taken by hand past the sequence does not refuse the next person's request.
    with connect(path) as con:
        con.execute(
            "INSERT INTO provisioning.requests (request_id, action, entitlement_id, agent_id, "
            "reason, requested_by) VALUES (2, 'grant', 'team:4:member', 9, 'r', 'ana@example.com')"
        )
    assert grant(path, "10", team="1") == 3


def test_a_duplicate_open_request_is_refused(path):
    grant(path, "9", role="Read Only")

    with pytest.raises(ValueError, match="Request 1 already asks for this and is pending."):
        grant(path, "9", role="Read Only")


def test_manual_request_from_ticket_to_done_and_confirmed(sim, path):
    request = grant(path, "9", team="4")
    manual = {"provisioning": True, "manual_entitlements": frozenset({MANUAL})}

    provision(sim, path, **manual)

    [ticket] = sim.tickets
    assert status(path, request) == ("awaiting_ticket", None)
    assert ticket["status_id"] == 1
    assert (
        "Please make this change in HaloITSM, then set this ticket to Closed or Completed"
        in ticket["details"]
    )
    assert posts(sim) == 1  # the ticket, not the agent
    provision(sim, path, **manual)
    assert status(path, request) == ("awaiting_ticket", None)

    sim.set_agent_teams(9, [3, 4])  # a person makes the change
    set_ticket_status(sim, ticket["id"], 8)  # ... and completes the ticket
    provision(sim, path, **manual)
    assert status(path, request) == ("done", None)

    provision(sim, path, **manual)  # no sync since: nothing to confirm yet
    assert status(path, request) == ("done", None)

    sync(sim, path)
    build_access(path)
    provision(sim, path, **manual)
    assert status(path, request) == ("confirmed", None)
    assert events(path, request) == [
        (None, "pending"), ("pending", "pending"), ("pending", "pending"), ("pending", "awaiting_ticket"),
        ("awaiting_ticket", "done"), ("done", "confirmed"),
    ]  # fmt: skip
    assert sim.request_counts[("POST", "/api/agent")] == 0


def test_manual_request_cancelled_or_not_really_done_fails(sim, path):
    cancelled = grant(path, "9", team="4")
    not_done = grant(path, "10", team="4")
    manual = {"provisioning": True, "manual_entitlements": frozenset({MANUAL})}
    provision(sim, path, **manual)
    tickets = {t["summary"].split(" ", 2)[1].rstrip("]"): t["id"] for t in sim.tickets}

    ids = {r: ticket_tag(path, r).split(" ")[1].rstrip("]") for r in (cancelled, not_done)}
    set_ticket_status(sim, tickets[ids[cancelled]], 10)  # Cancelled
    set_ticket_status(sim, tickets[ids[not_done]], 8)  # Completed, change not made
    provision(sim, path, **manual)
    sync(sim, path)
    build_access(path)
    provision(sim, path, **manual)

    assert status(path, cancelled) == (
        "failed",
        f"Ticket {tickets[ids[cancelled]]} was set to 'Cancelled' in HaloITSM.",
    )
    error = status(path, not_done)[1]
    assert status(path, not_done)[0] == "failed"
    assert error.startswith(f"Ticket {tickets[ids[not_done]]} was marked done, but the sync of ")
    assert error.endswith("shows agent 10 still lacks team 'Security \"Red\" Team'.")


def test_a_dry_run_does_not_touch_a_ticket_an_earlier_run_opened(sim, path):
    request = grant(path, "2", role="Administrator")  # already held: satisfied at once
    provision(sim, path, provisioning=True, ticketing=True)
    with connect(path) as con:  # as an interrupted run would leave it
        con.execute("UPDATE provisioning.requests SET status = 'pending', ticket_closed = false")
    sim.reset_counts()

    provision(sim, path, provisioning=False, ticketing=True)

    assert posts(sim) == 0
    assert status(path, request) == ("already_satisfied", None)
    assert query(path, "SELECT ticket_closed FROM provisioning.requests") == [(False,)]


def test_a_write_that_landed_behind_a_5xx_is_finished_by_the_next_run(sim, path):
    request = grant(path, "9", role="Read Only")

    def write_then_fail(environ, start_response):
        """Halo applies the write; a proxy in front answers 502 to every attempt."""
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/api/agent":
            list(sim.app(environ, lambda *args: None))
            start_response("502 Bad Gateway", [("Content-Type", "text/html")])
            return [b"<html><title>502 Bad Gateway</title></html>"]
        return sim.app(environ, start_response)

    provision(sim, path, app=write_then_fail, provisioning=True)

    assert role_names(sim, 9) == ["Read Only"]
    assert query(path, "SELECT status, failed_attempts, error FROM provisioning.requests") == [
        ("applying", 1, None)
    ]
    [(detail,)] = query(
        path, "SELECT detail FROM provisioning.request_events ORDER BY event_id DESC LIMIT 1"
    )
    assert detail.startswith(
        "interrupted: POST /api/agent: HaloITSM answered HTTP 502 (an HTML page titled '502 Bad Gateway')."
    )
    assert detail.endswith("; it will be tried again")
    sim.reset_counts()

    provision(sim, path, provisioning=True)

    assert status(path, request) == ("applied", None)
    assert posts(sim) == 0


def test_an_agent_read_without_its_roles_is_never_written_back(sim, path):
    request = grant(path, "2", team="2")
    sim.inject(Fault(path="/api/agent/2", method="GET", status=200, content_type="application/json",
                     body='{"id": 2, "name": "Zoë Müller", "roles": [{"id": "x"}]}'))  # fmt: skip

    provision(sim, path, provisioning=True)

    assert posts(sim) == 0
    [(state, attempts)] = query(path, "SELECT status, failed_attempts FROM provisioning.requests")
    assert (state, attempts) == ("pending", 1)
    [(detail,)] = query(
        path, "SELECT detail FROM provisioning.request_events ORDER BY event_id DESC LIMIT 1"
    )
    assert (
        "GET /api/agent/2 answered without the agent's teams; writing the list back would remove them all"
        in detail
    )
    provision(sim, path, provisioning=True)
    assert status(path, request) == ("applied", None)


def test_requests_that_disagree_the_later_wins_and_requests_that_agree_share(sim, path):
    grant(path, "9", role="Read Only")
    with connect(path) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, requested_by) VALUES "
            f"('grant', 'team:4:member', 9, 'r', 'ana@example.com'), ('revoke', 'team:4:member', 9, 'r', 'ana@example.com'), "
            f"('grant', 'role:{ROLE['Agent']}:assigned', 9, 'r', 'ana@example.com'), ('grant', 'role:{ROLE['Agent']}:assigned', 9, 'r', 'ana@example.com')"
        )

    provision(sim, path, provisioning=True)

    assert query(
        path, "SELECT request_id, status, error FROM provisioning.requests ORDER BY 1"
    ) == [
        (1, "applied", None),
        (2, "failed", "Superseded by request 3, filed later for the same entitlement."),
        (3, "already_satisfied", None),
        (4, "applied", None),
        (5, "applied", None),
    ]
    assert role_names(sim, 9) == ["Read Only", "Agent"]
    assert sim.request_counts[("POST", "/api/agent")] == 1


def test_an_account_created_by_an_interrupted_run_is_not_created_again(sim, path):
    with connect(path) as con:
        request = file_account(
            con,
            "create_account",
            name="Ada Lovelace",
            email="ada@example.com",
            reason="r",
            requested_by="hr@example.com",
        ).request_id
        con.execute("UPDATE provisioning.requests SET status = 'applying'")
    created = sim.add_agent("Ada Lovelace", "ADA@example.com")  # the write that landed

    provision(sim, path, provisioning=True)

    assert status(path, request) == ("applied", None)
    assert query(path, "SELECT agent_id FROM provisioning.requests") == [(created,)]
    assert posts(sim) == 0


def test_a_cancelled_manual_ticket_is_left_as_the_person_set_it(sim, path):
    request = grant(path, "9", team="4")
    manual = {"provisioning": True, "ticketing": True, "manual_entitlements": frozenset({MANUAL})}
    provision(sim, path, **manual)
    [ticket] = sim.tickets
    set_ticket_status(sim, ticket["id"], 10)
    provision(sim, path, **manual)
    sim.reset_counts()

    provision(sim, path, **manual)

    assert status(path, request)[0] == "failed"
    assert sim.tickets[0]["status_id"] == 10
    assert posts(sim) == 0


def test_the_request_command_refuses_a_warehouse_that_does_not_exist(tmp_path):
    missing = tmp_path / "typo" / "warehuose.duckdb"

    result = CliRunner().invoke(
        main,
        [
            "request",
            "grant",
            "--agent",
            "9",
            "--role",
            "Agent",
            "--reason",
            "r",
            "--requested-by",
            "ana@example.com",
            "--warehouse",
            str(missing),
        ],
    )

    assert result.exit_code == 1
    assert result.output == (
        f"Error: No warehouse at {missing} yet: run halo_sync_job first (for example `make demo`). "
        "Nothing was filed.\n"
    )
    assert not missing.parent.exists()
