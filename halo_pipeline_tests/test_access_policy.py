"""The access policy, against the simulator through the command line and the real jobs:
approvals, time-bound grants, separation of duties, leavers, and the violations model with a
check per rule."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from halo_pipeline.cli import main
from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs.policy import grant_expiry_sensor
from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline_tests.helpers import query

POLICY = """\
privileged_roles: ["Administrator", "Change Manager"]
approval:
  required_for: privileged
  approvers: []
max_grant_duration:
  privileged: 8h
separation_of_duties:
  - name: read-only-stays-read-only
    roles: ["Read Only", "Administrator"]
leavers:
  disabled_agents_hold_nothing: true
  auto_revoke: false
severity:
  privileged_unapproved: warn
"""
AUDIT = ["--reason", "release night", "--requested-by", "ana@example.com"]


@pytest.fixture
def policy(tmp_path, monkeypatch):
    def write(text: str = POLICY) -> Path:
        path = tmp_path / "access_policy.yml"
        path.write_text(text)
        monkeypatch.setenv("HALO_ACCESS_POLICY", str(path))
        return path

    return write


@pytest.fixture
def synced(sim, halo_env, run_job, policy, monkeypatch) -> Path:
    """The simulator synced under POLICY, provisioning and ticketing on."""
    policy()
    monkeypatch.setenv("HALO_PROVISIONING", "true")
    monkeypatch.setenv("HALO_TICKETING", "true")
    assert run_job("halo_sync_job").success
    return Path(halo_env["HALO_DUCKDB_PATH"])


def cli(path: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--warehouse", str(path)])


def roles_of(sim, agent_id: int) -> list[str]:
    names = {guid: name for name, guid in sim.role_ids().items()}
    return sorted(names[role["id"]] for role in sim.get_agent(agent_id)["roles"])


def status(path: Path, request_id: int) -> str:
    [(found,)] = query(path, "SELECT status FROM provisioning.requests WHERE request_id = ?",
                       [request_id])  # fmt: skip
    return found


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("approval:\n  required_for: sometimes\n", 2,
         "approval.required_for: Input should be 'none', 'privileged' or 'all'"),
        ("max_grant_duration:\n  privileged: 8 hours\n", 2,
         "max_grant_duration.privileged: '8 hours' is not a duration: write a whole number and "
         "s, m, h or d, e.g. 8h"),
        ("separation_of_duties:\n  - name: pair\n    roles: [Agent]\n", 3,
         "separation_of_duties.0.roles: Tuple should have at least 2 items after validation, "
         "not 1"),
        ("# a comment\nprivileged_rolez: [Agent]\n", 2, "unknown setting 'privileged_rolez'"),
        ("severity:\n  privileged_unaproved: warn\n", 2,
         "severity names no rule 'privileged_unaproved': rules are privileged_unapproved, "
         "privileged_expired, disabled_with_access"),
        ("leavers: [auto_revoke]\n", 1,
         "leavers: Input should be a valid dictionary or instance of _Leavers"),
    ],
    ids=["required-for", "duration", "one-role", "unknown-key", "severity", "not-a-mapping"],
)  # fmt: skip
def test_a_malformed_policy_is_named_with_its_file_and_line(policy, text, line, problem):
    path = policy(text)

    with pytest.raises(PolicyError) as error:
        load_policy()

    assert str(error.value) == f"{path}:{line}: {problem}"


def test_a_malformed_policy_stops_the_definitions_and_policy_check(policy, tmp_path):
    path = policy("approval:\n  required_for: sometimes\n")
    said = f"{path}:2: approval.required_for: Input should be 'none', 'privileged' or 'all'"

    with pytest.raises(PolicyError) as error:
        build_definitions()
    assert str(error.value) == f"The access policy cannot be loaded:\n{said}"
    checked = cli(tmp_path / "warehouse.duckdb", "policy", "check")
    assert (checked.exit_code, checked.output) == (1, f"Error: {said}\n")
    # What `dg dev` and the Dagster UI show for the code location: the sentence, first.
    loaded = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m",
         "halo_pipeline.definitions"],
        cwd=tmp_path, env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert loaded.returncode == 1
    assert f"PolicyError: The access policy cannot be loaded:\n{said}\n" in loaded.stdout


def test_policy_check_names_roles_the_warehouse_does_not_have(synced, policy):
    checked = cli(synced, "policy", "check")
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[1:4] == [
        "  privileged roles ... Administrator, Change Manager",
        "  approval ........... required for privileged",
        "  privileged grants .. at most 8h",
    ]

    path = policy(POLICY.replace('"Read Only"', '"Approver"'))
    checked = cli(synced, "policy", "check")
    assert checked.exit_code == 1
    assert checked.output == (
        f"Error: {path}: separation_of_duties 'read-only-stays-read-only' names 'Approver', "
        "which is no role in the last sync (roles: Administrator, Agent, Change Manager, "
        "Integration, Read Only)\n"
    )


def test_a_privileged_grant_waits_for_an_approval_by_someone_else(synced, sim, run_job, policy):
    filed = cli(synced, "request", "grant", "--agent", "9", "--role", "Administrator",
                "--for", "8h", *AUDIT)  # fmt: skip
    assert filed.exit_code == 0, filed.output
    assert "it waits for approval under the access policy" in filed.output
    assert run_job("provisioning_job").success
    assert (status(synced, 1), roles_of(sim, 9)) == ("awaiting_approval", [])

    refusals = {
        "ana@example.com": "ana@example.com asked for this request: nobody approves their own "
        "request.",
        "agent9@example.com": "agent9@example.com would gain the access: nobody approves a "
        "grant to themselves.",
    }
    for by, said in refusals.items():
        refused = cli(synced, "approve", "1", "--by", by)
        assert (refused.exit_code, refused.output) == (1, f"Error: {said} Nothing was recorded.\n")
    policy(POLICY.replace("approvers: []", "approvers: [cab@example.com]"))
    refused = cli(synced, "approve", "1", "--by", "ben@example.com")
    assert refused.output.startswith("Error: ben@example.com is not an approver under ")
    assert status(synced, 1) == "awaiting_approval"

    approved = cli(synced, "approve", "1", "--by", "CAB@example.com", "--note", "release plan")
    assert approved.exit_code == 0, approved.output
    assert run_job("provisioning_job").success

    assert status(synced, 1) == "applied"
    assert roles_of(sim, 9) == ["Administrator"]
    assert query(synced, "SELECT from_status, to_status, actor, note, os_user IS NOT NULL FROM provisioning.request_events WHERE request_id = 1 AND actor IS NOT NULL") == [("awaiting_approval", "pending", "cab@example.com", "release plan", True)]  # fmt: skip
    # Eight hours from when it was applied, not from when it was filed.
    [(expires_at, applied_at)] = query(synced, "SELECT expires_at, changed_at FROM provisioning.requests JOIN provisioning.request_events USING (request_id) WHERE from_status = 'applying' AND to_status = 'applied'")  # fmt: skip
    assert expires_at - applied_at == timedelta(hours=8)
    assert query(synced, "SELECT expires_at FROM access.grants WHERE principal_id = 9 AND resource_type = 'role'") == [(expires_at,)]  # fmt: skip


def test_deny_ends_the_request_with_its_reason(synced, sim, run_job):
    cli(synced, "request", "grant", "--agent", "9", "--role", "Change Manager", "--for", "1h",
        *AUDIT)  # fmt: skip
    denied = cli(synced, "deny", "1", "--by", "ben@example.com", "--reason", "not on the rota")
    assert denied.exit_code == 0, denied.output
    assert run_job("provisioning_job").success

    assert query(synced, "SELECT status, error FROM provisioning.requests") == [
        ("denied", "denied by ben@example.com: not on the rota")
    ]
    assert roles_of(sim, 9) == []
    again = cli(synced, "approve", "1", "--by", "ben@example.com")
    assert again.output == (
        "Error: Request 1 is denied: only a request awaiting approval is approved or denied. "
        "Nothing was recorded.\n"
    )


def test_privileged_grants_must_end_within_the_limit(synced):
    for args, said in [
        ([], "'Administrator' is a privileged role: the policy grants it for at most 8h. Ask "
             "with --for or --until."),
        (["--for", "2d"], "'Administrator' is a privileged role: the policy grants it for at "
                          "most 8h, not 2d."),
    ]:  # fmt: skip
        refused = cli(synced, "request", "grant", "--agent", "9", "--role", "Administrator",
                      *args, *AUDIT)  # fmt: skip
        assert (refused.exit_code, refused.output) == (1, f"Error: {said} Nothing was filed.\n")


def test_a_separation_of_duties_conflict_is_refused_at_filing_and_at_planning(synced, sim, run_job):
    rule = ("Refused by the separation of duties rule 'read-only-stays-read-only': nobody holds "
            "both 'Administrator' and 'Read Only'.")  # fmt: skip
    ids = sim.role_ids()
    sim.set_agent_roles(14, [ids["Agent"], ids["Read Only"]])
    assert run_job("halo_sync_job").success
    refused = cli(synced, "request", "grant", "--agent", "14", "--role", "Administrator",
                  "--for", "1h", *AUDIT)  # fmt: skip
    assert (refused.exit_code, refused.output) == (1, f"Error: {rule} Nothing was filed.\n")

    # Filed and approved; then someone gives agent 9 Read Only in HaloITSM itself.
    cli(synced, "request", "grant", "--agent", "9", "--role", "Administrator", "--for", "1h",
        *AUDIT)  # fmt: skip
    cli(synced, "approve", "1", "--by", "ben@example.com")
    sim.set_agent_roles(9, [ids["Read Only"]])
    assert run_job("provisioning_job").success

    assert query(synced, "SELECT status, error FROM provisioning.requests") == [("failed", rule)]
    assert roles_of(sim, 9) == ["Read Only"]


def test_a_sql_filed_privileged_grant_waits_for_approval_too(synced, sim, run_job):
    from halo_pipeline.warehouse import connect

    with connect(synced) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by, valid_for) VALUES ('grant', ?, 9, 'sql', 'ana@example.com', "
            "INTERVAL 1 HOUR)",
            [f"role:{sim.role_ids()['Administrator']}:assigned"],
        )
    assert run_job("provisioning_job").success
    assert (status(synced, 1), roles_of(sim, 9)) == ("awaiting_approval", [])
    assert query(
        synced, "SELECT to_status, detail FROM provisioning.request_events ORDER BY event_id"
    ) == [  # fmt: skip
        ("pending", "filed with SQL"),
        ("awaiting_approval", "the access policy asks for an approval first (approve 1)"),
    ]


def expire(context_path: Path) -> str:
    """One tick of grant_expiry_sensor."""
    with dg.build_sensor_context(
        resources={"warehouse": DuckDBWarehouse(database=str(context_path))}
    ) as context:
        return grant_expiry_sensor(context).skip_message


def wait_until_past(path: Path, sql: str) -> None:
    [(moment,)] = query(path, sql)
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.1)


def test_a_time_bound_grant_is_revoked_once_when_it_ends(synced, sim, run_job):
    filed = cli(synced, "request", "grant", "--agent", "9", "--role", "Read Only", "--for",
                "2s", *AUDIT)  # fmt: skip
    assert "for 2s from when it is applied" in filed.output
    # Agent 2 holds Agent already: its time-bound grant changes nothing, and ends nothing.
    cli(synced, "request", "grant", "--agent", "2", "--role", "Agent", "--for", "2s", *AUDIT)
    assert run_job("provisioning_job").success
    assert query(synced, "SELECT request_id, status FROM provisioning.requests ORDER BY 1") == [
        (1, "applied"), (2, "already_satisfied"),
    ]  # fmt: skip
    assert roles_of(sim, 9) == ["Read Only"]

    wait_until_past(synced, "SELECT expires_at FROM access.grant_expiries")
    assert expire(synced) == "Filed revoke requests [3] (expired) and [] (leavers)."
    assert expire(synced) == "No grant has ended and no leaver's access is due for revoking."
    assert run_job("provisioning_job").success

    assert query(synced, "SELECT request_id, action, agent_id, requested_by, linked_request_id, status FROM provisioning.requests WHERE request_id > 2") == [(3, "revoke", 9, "policy:expiry", 1, "applied")]  # fmt: skip
    assert roles_of(sim, 9) == []
    assert "Agent" in roles_of(sim, 2)
    assert run_job("provisioning_job").success
    assert query(synced, "SELECT count(*) FROM provisioning.requests") == [(3,)]


def test_the_next_provisioning_run_files_and_applies_an_expiry_itself(synced, sim, run_job):
    cli(synced, "request", "grant", "--agent", "9", "--team", "1", "--for", "1s", *AUDIT)
    assert run_job("provisioning_job").success
    time.sleep(1.2)
    assert run_job("provisioning_job").success

    assert query(
        synced,
        "SELECT request_id, action, requested_by, linked_request_id, status FROM provisioning.requests ORDER BY 1",
    ) == [  # fmt: skip
        (1, "grant", "ana@example.com", None, "applied"),
        (2, "revoke", "policy:expiry", 1, "applied"),
    ]
    assert expire(synced) == "No grant has ended and no leaver's access is due for revoking."


def test_policy_violations_hold_exactly_the_seeded_ones_and_each_check_names_them(
    sim, halo_env, run_job, policy, monkeypatch
):
    policy()
    monkeypatch.setenv("HALO_PROVISIONING", "true")
    path = Path(halo_env["HALO_DUCKDB_PATH"])
    ids = sim.role_ids()
    sim.set_agent_roles(14, [ids["Agent"], ids["Read Only"], ids["Administrator"]])
    assert run_job("halo_sync_job").success  # the baseline
    sim.set_agent_roles(13, [ids["Change Manager"]])  # outside the pipeline, after it
    cli(path, "request", "grant", "--agent", "9", "--role", "Administrator", "--for", "1s", *AUDIT)
    cli(path, "approve", "1", "--by", "ben@example.com")
    assert run_job("provisioning_job").success
    time.sleep(1.2)
    result = run_job("halo_sync_job")  # the expiry is filed by the sensor, not run here

    rows = query(path, "SELECT rule, severity, agent_id, detail FROM access.policy_violations ORDER BY rule, agent_id")  # fmt: skip
    assert [row[:3] for row in rows] == [
        ("disabled_with_access", "error", 6),
        ("disabled_with_access", "error", 29),
        ("disabled_with_access", "error", 40),
        ("privileged_expired", "error", 9),
        ("privileged_unapproved", "warn", 13),
        ("read-only-stays-read-only", "error", 14),
    ]
    assert (
        rows[0][3] == "disabled, still holds role Agent, role Change Manager, team 1st Line Support"
    )
    assert rows[4][3].startswith("holds Change Manager, first seen ")
    assert rows[5][3] == "holds Administrator and Read Only"
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()
              if e.asset_key == dg.AssetKey(["access", "policy_violations"])}  # fmt: skip
    assert {name: (c.passed, c.severity.value, c.metadata["agents"].value)
            for name, c in checks.items() if name != "column_tests"} == {
        "disabled_with_access": (False, "ERROR", [6, 29, 40]),
        "privileged_expired": (False, "ERROR", [9]),
        "privileged_unapproved": (False, "WARN", [13]),
        "read_only_stays_read_only": (False, "ERROR", [14]),
    }  # fmt: skip


def test_leavers_auto_revoke_files_one_revoke_per_grant_once(
    sim, halo_env, run_job, policy, monkeypatch
):
    policy(POLICY.replace("auto_revoke: false", "auto_revoke: true"))
    monkeypatch.setenv("HALO_PROVISIONING", "true")
    path = Path(halo_env["HALO_DUCKDB_PATH"])
    assert run_job("halo_sync_job").success
    held = query(path, "SELECT principal_id, entitlement_id FROM access.grants WHERE agent_is_disabled ORDER BY ALL")  # fmt: skip
    assert [agent for agent, _ in held] == [6, 6, 6, 29, 29, 29, 29, 29, 40, 40, 40, 40]

    assert run_job("provisioning_job").success
    assert query(path, "SELECT agent_id, entitlement_id FROM provisioning.requests WHERE requested_by = 'policy:leaver' AND action = 'revoke' AND status = 'applied' ORDER BY ALL") == held  # fmt: skip
    assert [sim.get_agent(a)["roles"] for a in (6, 29, 40)] == [[], [], []]
    assert run_job("provisioning_job").success
    assert run_job("halo_sync_job").success
    assert expire(path) == "No grant has ended and no leaver's access is due for revoking."
    assert query(path, "SELECT count(*) FROM provisioning.requests") == [(len(held),)]
    assert query(path, "SELECT count(*) FROM access.policy_violations") == [(0,)]


def test_the_readme_shows_the_shipped_policy():
    """The README's example is the file the project ships, setting for setting."""
    project = Path(__file__).resolve().parents[1]
    section = (project / "README.md").read_text().split("## Access policy", 1)[1]
    shown = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    shipped = load_policy(project / "access_policy.yml")

    assert yaml.safe_load(shown) == yaml.safe_load((project / "access_policy.yml").read_text())
    assert shipped.rules == (
        "read-only-stays-read-only", "privileged_unapproved", "privileged_expired",
        "disabled_with_access",
    )  # fmt: skip


def test_a_sql_filed_privileged_grant_without_an_end_fails_before_any_approval(
    synced, sim, run_job
):
    from halo_pipeline.warehouse import connect

    with connect(synced) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by) VALUES ('grant', ?, 9, 'sql', 'ana@example.com')",
            [f"role:{sim.role_ids()['Administrator']}:assigned"],
        )
    assert run_job("provisioning_job").success

    assert query(synced, "SELECT status, error FROM provisioning.requests") == [(
        "failed",
        "'Administrator' is a privileged role: the policy grants it for at most 8h. Ask with "
        "--for or --until.",
    )]  # fmt: skip
    assert roles_of(sim, 9) == []
