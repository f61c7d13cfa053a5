"""The governance record holds against an insider who can write the warehouse with SQL and a
careless operator: approvals are signed statements about content, honoured once; decisions are
taken from HaloITSM, not from what the warehouse says of it; a missing key stops approvals and
nothing else; a bad row fails alone; an expiry removes only what its request made. Plain Python
runs of the provisioner against the simulator, except where Dagster itself is what is shown."""

from __future__ import annotations

from datetime import UTC, timedelta

from halo_pipeline.policy.revokes import due_expiries
from halo_pipeline.requests.signing import load_keyring
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import build_access, provision, query, sync
from halo_pipeline_tests.policy_support import AUDIT, cli, roles_of, status

ADMIN = ["--role", "Administrator", "--for", "1h"]
APPROVER = "agent13@example.com"


def approve(path, request_id: int) -> None:
    done = cli(path, "approve", str(request_id), "--by", APPROVER, "--yes")
    assert done.exit_code == 0, done.output


def events(path, request_id: int) -> list[tuple[str, str]]:
    return query(path, "SELECT to_status, detail FROM provisioning.request_events "
                       "WHERE request_id = ? ORDER BY event_id", [request_id])  # fmt: skip


def test_a_sql_copied_approval_is_not_honoured_and_fails_the_check(synced, sim, run_job):
    for agent in ("9", "3"):
        assert cli(synced, "request", "grant", "--agent", agent, *ADMIN, *AUDIT).exit_code == 0
    approve(synced, 1)
    with connect(synced) as con:  # request 2 given request 1's approval, as it was recorded
        [(copy,)] = con.execute(
            "INSERT INTO provisioning.request_events (request_id, from_status, to_status, detail, "
            "actor, actor_agent_id, note, statement, signature) SELECT 2, from_status, "
            "to_status, detail, actor, actor_agent_id, note, statement, signature "
            "FROM provisioning.request_events WHERE request_id = 1 AND to_status = 'pending' "
            "AND from_status = 'awaiting_approval' RETURNING event_id"
        ).fetchall()
        con.execute("UPDATE provisioning.requests SET status = 'pending' WHERE request_id = 2")

    result = run_job("provisioning_job")

    assert result.success
    assert (status(synced, 1), status(synced, 2)) == ("applied", "awaiting_approval")
    assert (roles_of(sim, 9), roles_of(sim, 3)) == (["Administrator"], ["Agent"])
    assert events(synced, 2)[-1] == (
        "awaiting_approval",
        f"event {copy} carries a statement made for another event (approve 2)",
    )
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("unverified_approval", False)
    assert check.metadata["events"].value == [copy]


def test_an_approved_request_changed_afterwards_goes_back_for_approval(synced, sim):
    assert cli(synced, "request", "grant", "--agent", "9", *ADMIN, *AUDIT).exit_code == 0
    approve(synced, 1)
    manager = sim.role_ids()["Change Manager"]
    with connect(synced) as con:
        con.execute(
            "UPDATE provisioning.requests SET agent_id = 14, entitlement_id = ? "
            "WHERE request_id = 1",
            [f"role:{manager}:assigned"],
        )

    provision(sim, synced, provisioning=True)

    assert status(synced, 1) == "awaiting_approval"
    admin = sim.role_ids()["Administrator"]
    assert events(synced, 1)[-1] == (
        "awaiting_approval",
        f"the request changed since it was approved (event 2): agent_id was 9, is 14; "
        f"entitlement_id was 'role:{admin}:assigned', is 'role:{manager}:assigned'; a new "
        "approval is needed (approve 1)",
    )
    assert (roles_of(sim, 9), roles_of(sim, 14)) == ([], ["Agent"])


def test_an_approval_replayed_after_its_applied_event_is_deleted_is_not_honoured(synced, sim):
    assert cli(synced, "request", "grant", "--agent", "9", *ADMIN, *AUDIT).exit_code == 0
    approve(synced, 1)
    provision(sim, synced, provisioning=True)
    assert roles_of(sim, 9) == ["Administrator"]
    cli(synced, "request", "revoke", "--agent", "9", "--role", "Administrator", *AUDIT)
    provision(sim, synced, provisioning=True)
    assert roles_of(sim, 9) == []
    with connect(synced) as con:  # the grant made to look as if it never ran
        con.execute(
            "DELETE FROM provisioning.request_events WHERE request_id = 1 "
            "AND to_status IN ('applying', 'applied')"
        )
        con.execute(
            "UPDATE provisioning.requests SET status = 'pending', expires_at = NULL "
            "WHERE request_id = 1"
        )

    provision(sim, synced, provisioning=True)

    assert (status(synced, 1), roles_of(sim, 9)) == ("awaiting_approval", [])
    assert events(synced, 1)[-1] == (
        "awaiting_approval", "the approval of event 2 was used already (approve 1)"
    )  # fmt: skip


def test_roles_renamed_in_the_warehouse_do_not_make_administrator_ordinary(synced, sim):
    """Administrator and Agent swap names in halo.roles (and so in the models): filing sees an
    ordinary role, but the job decides from the roles HaloITSM has."""
    with connect(synced) as con:
        con.execute(
            "UPDATE halo.roles SET name = CASE name WHEN 'Administrator' THEN 'Agent' "
            "ELSE 'Administrator' END WHERE name IN ('Administrator', 'Agent')"
        )
    build_access(synced)
    filed = cli(synced, "request", "grant", "--agent", "9", "--role", "Agent", "--for", "1h",
                *AUDIT)  # fmt: skip
    assert filed.exit_code == 0 and "waits for approval" not in filed.output

    provision(sim, synced, provisioning=True)

    assert (status(synced, 1), roles_of(sim, 9)) == ("awaiting_approval", [])


def test_without_a_trusted_key_approvals_wait_and_syncs_and_revokes_go_on(synced, sim):
    ring = load_keyring()
    assert cli(synced, "request", "grant", "--agent", "9", *ADMIN, *AUDIT).exit_code == 0
    ring.path.chmod(0o644)
    refused = cli(synced, "approve", "1", "--by", APPROVER, "--yes")
    assert (refused.exit_code, refused.output) == (1, (
        f"Error: {ring.path} is mode 0644; a signing key must be 0600 (readable by you alone): "
        f"chmod 600 {ring.path} Nothing was recorded.\n"
    ))  # fmt: skip
    ring.path.unlink()
    refused = cli(synced, "approve", "1", "--by", APPROVER, "--yes")
    assert (refused.exit_code, refused.output) == (1, (
        f"Error: No signing key at {ring.path}: run `halo-pipeline key init` (approvals and "
        "review decisions wait for it; syncs and revokes go on). Nothing was recorded.\n"
    ))  # fmt: skip

    cli(synced, "request", "revoke", "--agent", "10", "--role", "Read Only", *AUDIT)
    provision(sim, synced, provisioning=True)
    sync(sim, synced)

    assert (status(synced, 1), status(synced, 2)) == ("awaiting_approval", "applied")
    assert roles_of(sim, 10) == ["Agent"]
    assert query(synced, "SELECT status FROM halo.sync_runs ORDER BY sync_id DESC LIMIT 1") == [
        ("loaded",)
    ]


def test_a_row_nobody_could_plan_fails_alone_and_none_is_left_applying(synced, sim):
    refused = cli(synced, "request", "grant", "--agent", "9", "--role", "Agent",
                  "--for", "999999999d", *AUDIT)  # fmt: skip
    assert refused.exit_code == 2
    assert "'999999999d' is too long: a duration is at most 10 years (3650d)" in refused.output
    agent = sim.role_ids()["Agent"]
    with connect(synced) as con:
        con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by, valid_for) VALUES ('grant', ?, 9, 'sql', 'ana@example.com', "
            "INTERVAL 999999 DAY), ('grant', ?, 13, 'sql', 'ana@example.com', NULL)",
            [f"role:{agent}:assigned"] * 2,
        )

    provision(sim, synced, provisioning=True)

    assert query(synced, "SELECT request_id, status, error FROM provisioning.requests") == [
        (1, "failed", "Its duration (valid_for 999999 days, 0:00:00) is not between 0 and 3650 "
                      "days: file it again with --for within that."),
        (2, "applied", None),
    ]  # fmt: skip
    assert (roles_of(sim, 9), roles_of(sim, 13)) == ([], ["Agent"])


def test_an_expiry_leaves_a_grant_made_again_outside_the_pipeline_alone(synced, sim):
    assert cli(synced, "request", "grant", "--agent", "9", "--role", "Agent", "--for", "1h",
               *AUDIT).exit_code == 0  # fmt: skip
    provision(sim, synced, provisioning=True)
    agent = sim.role_ids()["Agent"]
    for roles in ([], [agent]):  # removed in HaloITSM, then granted again there: two syncs
        sim.set_agent_roles(9, roles)
        sync(sim, synced)
        build_access(synced)
    [(again,)] = query(synced, "SELECT max(sync_id) FROM halo.sync_runs")
    with connect(synced) as con:  # its end has come
        con.execute("UPDATE provisioning.requests SET expires_at = now() - INTERVAL 1 MINUTE")
        [due] = due_expiries(con, load_keyring())

    provision(sim, synced, provisioning=True)

    assert due.regranted == (
        f"The grant of request 1 (role:{agent}:assigned for agent 9) ended at {due.ended}, but "
        f"it was removed and granted again outside the pipeline (the grant held now was first "
        f"seen by sync {again}): the expiry files nothing; privileged_unapproved judges the "
        "grant held now."
    )
    assert query(synced, "SELECT count(*) FROM provisioning.requests") == [(1,)]
    assert roles_of(sim, 9) == ["Agent"]


def test_a_signed_end_outlives_a_column_set_to_null(synced, sim):
    assert cli(synced, "request", "grant", "--agent", "9", "--role", "Agent", "--for", "1h",
               *AUDIT).exit_code == 0  # fmt: skip
    provision(sim, synced, provisioning=True)
    [(ends,)] = query(synced, "SELECT expires_at FROM provisioning.requests")
    with connect(synced) as con:  # made endless by hand
        con.execute("UPDATE provisioning.requests SET expires_at = NULL, valid_for = NULL")
    build_access(synced)
    assert query(synced, "SELECT count(*) FROM access.grant_expiries") == [(0,)]

    with connect(synced) as con:
        [due] = due_expiries(con, load_keyring(), now=ends + timedelta(minutes=1))
        assert due_expiries(con, load_keyring(), now=ends - timedelta(minutes=1)) == []

    assert (due.agent_id, due.request_id, due.regranted) == (9, 1, None)
    assert due.ended == f"{ends.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def test_a_rotated_key_still_verifies_what_the_old_one_signed(synced, sim):
    assert cli(synced, "request", "grant", "--agent", "9", *ADMIN, *AUDIT).exit_code == 0
    approve(synced, 1)
    old = load_keyring().active.key_id
    rotated = cli(synced, "key", "init", "--rotate")
    assert rotated.exit_code == 0, rotated.output
    ring = load_keyring()
    assert ring.active.key_id != old and [k.key_id for k in ring.keys] == [old, ring.active.key_id]
    again = cli(synced, "key", "init")
    assert again.output.startswith(f"Error: {ring.path} exists already: a key is never overwritten")

    provision(sim, synced, provisioning=True)  # the approval the old key signed still counts

    assert (status(synced, 1), roles_of(sim, 9)) == ("applied", ["Administrator"])
    [(applied,)] = query(synced, "SELECT statement FROM provisioning.request_events "
                                 "WHERE from_status = 'applying' AND to_status = 'applied'")  # fmt: skip
    assert f'"key_id":"{ring.active.key_id}"' in applied
