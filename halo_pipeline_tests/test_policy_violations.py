"""access.policy_violations and a Dagster check per rule, and leavers revoked by the policy,
through the real jobs against the simulator."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import build_access, provision, query, sync
from halo_pipeline_tests.policy_support import (
    AUDIT,
    POLICY,
    cli,
    expire,
)


def test_policy_violations_hold_exactly_the_seeded_ones_and_each_check_names_them(
    sim, halo_env, run_job, policy, signing_key, monkeypatch
):
    policy()
    monkeypatch.setenv("HALO_PROVISIONING", "true")
    path = Path(halo_env["HALO_DUCKDB_PATH"])
    ids = sim.role_ids()
    sim.set_agent_roles(14, [ids["Agent"], ids["Read Only"], ids["Administrator"]])
    sync(sim, path)  # the baseline
    build_access(path)
    signing_key(path)
    sim.set_agent_roles(13, [ids["Change Manager"]])  # outside the pipeline, after it
    cli(path, "request", "grant", "--agent", "9", "--role", "Administrator", "--for", "1h", *AUDIT)
    assert cli(path, "approve", "1", "--by", "agent13@example.com", "--yes").exit_code == 0
    provision(sim, path, provisioning=True)
    with connect(path) as con:  # its hour is up
        con.execute("UPDATE provisioning.requests SET expires_at = now() - INTERVAL 1 SECOND")
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


def test_leavers_auto_revoke_files_one_revoke_per_grant_once(sim, warehouse_path, policy):
    policy(POLICY.replace("auto_revoke: false", "auto_revoke: true"))
    path = warehouse_path
    sync(sim, path)
    build_access(path)
    held = query(path, "SELECT principal_id, entitlement_id FROM access.grants WHERE agent_is_disabled ORDER BY ALL")  # fmt: skip
    assert [agent for agent, _ in held] == [6, 6, 6, 29, 29, 29, 29, 29, 40, 40, 40, 40]

    provision(sim, path, provisioning=True)
    assert query(path, "SELECT agent_id, entitlement_id FROM provisioning.requests WHERE requested_by = 'policy:leaver' AND action = 'revoke' AND status = 'applied' ORDER BY ALL") == held  # fmt: skip
    assert [sim.get_agent(a)["roles"] for a in (6, 29, 40)] == [[], [], []]
    provision(sim, path, provisioning=True)
    sync(sim, path)
    build_access(path)
    assert expire(path) == "No grant has ended and no leaver's access is due for revoking."
    assert query(path, "SELECT count(*) FROM provisioning.requests") == [(len(held),)]
    assert query(path, "SELECT count(*) FROM access.policy_violations") == [(0,)]
