"""The access policy file, approvals, durations and separation of duties, against the simulator
through the command line and the real provisioning job."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from halo_pipeline.definitions import build_definitions
from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import build_access, provision, query, sync
from halo_pipeline_tests.policy_support import AUDIT, POLICY, cli, roles_of, status


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
                "--for", "8h", "--reason", "release night",
                "--requested-by", "agent3@example.com")  # fmt: skip
    assert filed.exit_code == 0, filed.output
    assert "it waits for approval under the access policy" in filed.output
    assert run_job("provisioning_job").success
    assert (status(synced, 1), roles_of(sim, 9)) == ("awaiting_approval", [])

    # People are HaloITSM agents, compared as agents: by id, and by email whatever its case.
    refusals = {
        "AGENT3@example.com": "Seán O'Brien <agent3@example.com> (agent 3) asked for this "
        "request: nobody approves their own request.",
        "agent9@example.com": "Priya Patel <agent9@example.com> (agent 9) would gain the access: "
        "nobody approves a grant to themselves.",
        "ａgent9@example.com": "The approver 'ａgent9@example.com' has characters that stand for "
        "others (it reads 'agent9@example.com' once normalised): type the address in plain "
        "characters.",
        "ana@example.com": "The approver ana@example.com is no enabled agent in HaloITSM: whoever "
        "decides must be exactly one enabled HaloITSM agent, named by their email there.",
        "agent6@example.com": "The approver agent6@example.com is no enabled agent in HaloITSM: "
        "whoever decides must be exactly one enabled HaloITSM agent, named by their email there.",
    }
    for by, said in refusals.items():
        refused = cli(synced, "approve", "1", "--by", by, "--yes")
        assert (refused.exit_code, refused.output) == (1, f"Error: {said} Nothing was recorded.\n")
    policy(POLICY.replace("approvers: []", "approvers: [agent13@example.com]"))
    for verb in ("approve", "deny"):
        refused = cli(synced, verb, "1", "--by", "agent11@example.com", "--yes",
                      *(["--reason", "no"] if verb == "deny" else []))  # fmt: skip
        assert refused.output == (
            "Error: Aoife Lefèvre <agent11@example.com> (agent 11) is not an approver under "
            f"{synced.parent / 'access_policy.yml'} (approvers: agent13@example.com). Nothing "
            "was recorded.\n"
        )
    assert status(synced, 1) == "awaiting_approval"

    approved = cli(synced, "approve", "1", "--by", "Agent13@Example.com", "--note",
                   "release plan", "--yes")  # fmt: skip
    assert approved.exit_code == 0, approved.output
    assert approved.output.splitlines()[0] == (
        "Aoife Novák <agent13@example.com> (agent 13) would approve request 1: grant role "
        f"'Administrator' (role:{sim.role_ids()['Administrator']}:assigned) to agent 9 (Priya "
        "Patel), for 8h from when it is applied; requested by agent3@example.com: release night"
    )
    assert run_job("provisioning_job").success

    assert status(synced, 1) == "applied"
    assert roles_of(sim, 9) == ["Administrator"]
    assert query(synced, "SELECT from_status, to_status, actor, actor_agent_id, note, os_user IS NOT NULL, statement IS NOT NULL FROM provisioning.request_events WHERE request_id = 1 AND actor IS NOT NULL") == [("awaiting_approval", "pending", "agent13@example.com", 13, "release plan", True, True)]  # fmt: skip
    # Eight hours from when it was applied, not from when it was filed.
    [(expires_at, applied_at)] = query(synced, "SELECT expires_at, changed_at FROM provisioning.requests JOIN provisioning.request_events USING (request_id) WHERE from_status = 'applying' AND to_status = 'applied'")  # fmt: skip
    assert expires_at - applied_at == timedelta(hours=8)
    assert query(synced, "SELECT expires_at FROM access.grants WHERE principal_id = 9 AND resource_type = 'role'") == [(expires_at,)]  # fmt: skip


def test_deny_ends_the_request_with_its_reason(synced, sim):
    cli(synced, "request", "grant", "--agent", "9", "--role", "Change Manager", "--for", "1h",
        *AUDIT)  # fmt: skip
    denied = cli(synced, "deny", "1", "--by", "agent13@example.com", "--reason",
                 "not on the rota", "--yes")  # fmt: skip
    assert denied.exit_code == 0, denied.output
    provision(sim, synced, provisioning=True, ticketing=True)

    assert query(synced, "SELECT status, error FROM provisioning.requests") == [
        ("denied", "denied by Aoife Novák <agent13@example.com> (agent 13): not on the rota")
    ]
    assert roles_of(sim, 9) == []
    again = cli(synced, "approve", "1", "--by", "agent13@example.com", "--yes")
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


def test_a_separation_of_duties_conflict_is_refused_at_filing_and_at_planning(synced, sim):
    rule = ("Refused by the separation of duties rule 'read-only-stays-read-only': nobody holds "
            "both 'Administrator' and 'Read Only'.")  # fmt: skip
    ids = sim.role_ids()
    sim.set_agent_roles(14, [ids["Agent"], ids["Read Only"]])
    sync(sim, synced)
    build_access(synced)
    refused = cli(synced, "request", "grant", "--agent", "14", "--role", "Administrator",
                  "--for", "1h", *AUDIT)  # fmt: skip
    assert (refused.exit_code, refused.output) == (1, f"Error: {rule} Nothing was filed.\n")

    # Filed and approved; then someone gives agent 9 Read Only in HaloITSM itself.
    cli(synced, "request", "grant", "--agent", "9", "--role", "Administrator", "--for", "1h",
        *AUDIT)  # fmt: skip
    assert cli(synced, "approve", "1", "--by", "agent13@example.com", "--yes").exit_code == 0
    sim.set_agent_roles(9, [ids["Read Only"]])
    provision(sim, synced, provisioning=True, ticketing=True)

    assert query(synced, "SELECT status, error FROM provisioning.requests") == [("failed", rule)]
    assert roles_of(sim, 9) == ["Read Only"]


def test_a_sql_filed_privileged_grant_waits_for_approval_too(synced, sim):
    with connect(synced) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by, valid_for) VALUES ('grant', ?, 9, 'sql', 'ana@example.com', "
            "INTERVAL 1 HOUR)",
            [f"role:{sim.role_ids()['Administrator']}:assigned"],
        )
    provision(sim, synced, provisioning=True, ticketing=True)
    assert (status(synced, 1), roles_of(sim, 9)) == ("awaiting_approval", [])
    assert query(
        synced, "SELECT to_status, detail FROM provisioning.request_events ORDER BY event_id"
    ) == [  # fmt: skip
        ("pending", "filed with SQL"),
        ("awaiting_approval", "the access policy asks for an approval first (approve 1)"),
    ]


def test_a_grant_set_to_applying_with_sql_still_needs_its_approval(synced, sim):
    """`applying` is where a crashed run leaves a request; a row put there by hand is not let
    past the approval it never had."""
    with connect(synced) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by, valid_for, status) VALUES ('grant', ?, 9, 'sql', 'ana@example.com', "
            "INTERVAL 1 HOUR, 'applying')",
            [f"role:{sim.role_ids()['Administrator']}:assigned"],
        )
    provision(sim, synced, provisioning=True, ticketing=True)

    assert (status(synced, 1), roles_of(sim, 9)) == ("awaiting_approval", [])


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


def test_a_sql_filed_privileged_grant_without_an_end_fails_before_any_approval(synced, sim):
    with connect(synced) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by) VALUES ('grant', ?, 9, 'sql', 'ana@example.com')",
            [f"role:{sim.role_ids()['Administrator']}:assigned"],
        )
    provision(sim, synced, provisioning=True, ticketing=True)

    assert query(synced, "SELECT status, error FROM provisioning.requests") == [(
        "failed",
        "'Administrator' is a privileged role: the policy grants it for at most 8h. Ask with "
        "--for or --until.",
    )]  # fmt: skip
    assert roles_of(sim, 9) == []
