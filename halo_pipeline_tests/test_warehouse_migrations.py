"""Versioned migrations: a new warehouse gets every one; one made by release 0.1.0 (the text
export in fixtures/warehouse_0_1_0, see its README) is upgraded in place by the next sync,
its history intact."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from halo_pipeline.policy.approvals import unverified
from halo_pipeline.simulator import Simulator, SimulatorConfig, generate_dataset
from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.migrations import latest_version, migrations
from halo_pipeline_tests.helpers import build_access, provision, query, sync
from halo_pipeline_tests.policy_support import cli

RELEASE_0_1_0 = Path(__file__).parent / "fixtures" / "warehouse_0_1_0"
_PERIODS = "agent_id, agent_name, first_sync_id, removed_in_sync_id"
HISTORY = (
    f"SELECT {_PERIODS}, role_id, role_name FROM halo.agent_role_history UNION ALL BY NAME "
    f"SELECT {_PERIODS}, team_id, team_name FROM halo.agent_team_history ORDER BY ALL"
)


def old_warehouse(path: Path) -> Path:
    """The 0.1.0 warehouse, rebuilt from its export: tables, sequences and rows as it left them."""
    con = duckdb.connect(str(path))
    try:
        con.execute(f"IMPORT DATABASE '{RELEASE_0_1_0}'")
    finally:
        con.close()
    return path


def the_same_halo(sim: Simulator) -> None:
    """What the 0.1.0 warehouse last saw: agent 4 moved into team 1, agent 9 given Change
    Manager by provisioning."""
    sim.set_agent_teams(4, [1, 2])
    [manager] = [
        r for r in generate_dataset(agents=12, teams=4, roles=4).roles if r.name == "Change Manager"
    ]
    sim.set_agent_roles(9, [manager.id])


def test_migrations_are_numbered_in_order_from_one():
    assert [m.version for m in migrations()] == list(range(1, latest_version() + 1))
    assert [m.name for m in migrations()][:2] == ["baseline", "halo_openapi_shapes"]


def test_a_new_warehouse_gets_every_migration_once(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with connect(path):
        pass
    with connect(path):  # a second writer finds nothing to do
        pass
    assert query(path, "SELECT version, name FROM main.schema_migrations ORDER BY 1") == [
        (m.version, m.name) for m in migrations()
    ]
    columns = query(
        path,
        "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'halo' AND table_name = 'agent_teams' ORDER BY ordinal_position",
    )
    assert columns == [
        ("agent_id", "NO"), ("team_id", "NO"), ("sync_id", "NO"), ("synced_at", "NO"),
        ("is_manager", "YES"), ("fortickets", "YES"), ("foropps", "YES"), ("forprojects", "YES"),
        ("unassigned_access", "YES"), ("otheragent_access", "YES"), ("no_config_access", "YES"),
    ]  # fmt: skip


def test_the_next_sync_upgrades_a_0_1_0_warehouse_in_place_with_its_history(tmp_path):
    path = old_warehouse(tmp_path / "warehouse.duckdb")
    history_before = query(path, HISTORY)
    runs_before = query(path, "SELECT sync_id, kind, status, agents FROM halo.sync_runs ORDER BY 1")
    requests_before = query(path, "SELECT request_id, status, plan FROM provisioning.requests")
    changes_before = query(path, "SELECT * FROM access.grant_changes ORDER BY ALL")
    assert query(path, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'") == [(0,)]  # fmt: skip
    assert len(history_before) == 27 and len(changes_before) == 2

    sim = Simulator(generate_dataset(agents=12, teams=4, roles=4), SimulatorConfig())
    the_same_halo(sim)
    result = sync(sim, path)
    build_access(path)

    assert query(path, "SELECT version FROM main.schema_migrations ORDER BY 1") == [
        (m.version,) for m in migrations()
    ]
    # Nothing changed in HaloITSM since 0.1.0's last sync: history gains no period.
    assert query(path, HISTORY) == history_before
    # Every period was seen by full syncs, which read every agent: none opened on a first read,
    # and each change happened after the full sync before the one that saw it.
    assert query(path, """
        SELECT DISTINCT h.on_or_before, h.added_after IS NOT DISTINCT FROM (
            SELECT max(synced_at) FROM halo.sync_runs AS s
            WHERE s.kind = 'full' AND s.status = 'succeeded' AND s.sync_id < h.first_sync_id)
        FROM halo.agent_role_history AS h""") == [(False, True)]  # fmt: skip
    assert query(
        path, "SELECT count(*) FROM halo.agent_role_history WHERE added_after IS NOT NULL"
    ) != [(0,)]
    changes = "SELECT * EXCLUDE (previous_read_at) FROM access.grant_changes ORDER BY ALL"
    assert query(path, changes) == changes_before
    # Each change says after which read it happened: the full sync before the one that saw it.
    assert query(path, "SELECT count(*) FROM access.grant_changes WHERE previous_read_at IS NULL OR previous_read_at >= changed_at") == [(0,)]  # fmt: skip
    assert query(path, "SELECT sync_id, kind, status, agents FROM halo.sync_runs ORDER BY 1") == [
        *runs_before,
        (result.sync_id, "full", "succeeded", 12),
    ]
    assert result.sync_id == runs_before[-1][0] + 1  # the sequence went on where it was
    assert (
        query(path, "SELECT request_id, status, plan FROM provisioning.requests") == requests_before
    )
    # Requests from before the access policy have no end and no link; the policy tables exist.
    assert query(path, "SELECT count(*), count(expires_at), count(linked_request_id) FROM provisioning.requests") == [(len(requests_before), 0, 0)]  # fmt: skip
    assert query(path, "SELECT count(*) FROM policy.rules") == [(0,)]
    # Nor to a ticket a person opened, nor to a reviewer's ticket: their tables start empty.
    assert query(path, "SELECT count(*) FROM provisioning.request_tickets") == [(0,)]
    assert query(path, "SELECT count(*) FROM reviews.reviewer_tickets") == [(0,)]
    # Nor to a review; a campaign starts on the upgraded warehouse, held since its old history.
    assert query(path, "SELECT count(review_item_id) FROM provisioning.requests") == [(0,)]
    started = cli(path, "review", "start", "upgraded", "--scope", "all", "--reviewer",
                  "lead@example.com")  # fmt: skip
    assert started.exit_code == 0, started.output
    assert query(path, "SELECT min(held_since) = (SELECT min(synced_at) FROM halo.sync_runs), "
                       "count(*) = (SELECT count(*) FROM access.grants) FROM reviews.items") == [(True, True)]  # fmt: skip
    # What this release stores that 0.1.0 could not: unknown is NULL, memberships keep flags.
    assert query(path, "SELECT count(*), count(is_admin) FROM halo.agents") == [(12, 0)]
    assert query(path, "SELECT is_manager, otheragent_access FROM halo.agent_teams WHERE agent_id = 2 AND team_id = 1") == [(True, True)]  # fmt: skip


def test_a_failing_migration_leaves_the_warehouse_as_it_was(tmp_path, monkeypatch):
    path = old_warehouse(tmp_path / "warehouse.duckdb")
    from halo_pipeline.warehouse import migrations as module

    broken = [*module.migrations()]
    broken[1] = module.Migration(
        2, "broken", broken[1].sql + "\nALTER TABLE halo.nowhere ADD COLUMN x INT;"
    )
    monkeypatch.setattr(module, "migrations", lambda: tuple(broken))
    with pytest.raises(duckdb.CatalogException, match="nowhere"), connect(path):
        pass

    assert query(path, "SELECT version FROM main.schema_migrations") == [(1,)]
    assert query(path, "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'halo' AND table_name = 'agents' AND column_name = 'is_admin'") == [("NO",)]  # fmt: skip


def test_duplicate_request_ids_of_an_old_warehouse_are_renumbered_then_refused(tmp_path):
    path = old_warehouse(tmp_path / "warehouse.duckdb")
    [(taken, highest)] = query(
        path, "SELECT min(request_id), max(request_id) FROM provisioning.requests"
    )
    con = duckdb.connect(str(path))  # 0.1.0 let SQL insert a second row with a taken id
    con.execute(
        "INSERT INTO provisioning.requests (request_id, action, entitlement_id, agent_id, reason, "
        "requested_by) VALUES (?, 'grant', 'team:1:member', 9, 'by hand', 'ana@example.com')",
        [taken],
    )
    con.close()
    before = query(path, "SELECT count(*) FROM provisioning.requests")

    with connect(path) as con:  # the upgrade
        pass

    assert query(path, "SELECT count(*) FROM provisioning.requests") == before  # every row kept
    assert query(
        path, "SELECT request_id, reason FROM provisioning.requests WHERE reason = 'by hand'"
    ) == [(highest + 1, "by hand")]
    assert query(
        path,
        "SELECT from_status, to_status, detail FROM provisioning.request_events WHERE request_id = ?",
        [highest + 1],
    ) == [
        (
            "pending",
            "pending",
            f"request_id {taken} was held by another request too: renumbered {highest + 1}",
        )
    ]
    with connect(path) as con, pytest.raises(duckdb.ConstraintException):
        con.execute(
            "INSERT INTO provisioning.requests (request_id, action, entitlement_id, agent_id, "
            "reason, requested_by) VALUES (?, 'grant', 'team:1:member', 9, 'r', 'ana@example.com')",
            [taken],
        )


PREVIOUS = Path(__file__).parent / "fixtures" / "warehouse_b5fe3f6"


def test_the_release_before_signing_upgrades_and_nothing_unsigned_is_blessed(
    tmp_path, monkeypatch, signing_key
):
    """The warehouse of the release before approvals were signed (fixtures/warehouse_b5fe3f6):
    its approvals and decisions stay as history; nothing it holds unsigned counts now."""
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"IMPORT DATABASE '{PREVIOUS}'")
    # Request 1's 8-hour grant was applied when the fixture was made, and would have ended
    # (and been revoked here) from eight hours later on: applied moments ago, it still runs.
    con.execute("UPDATE provisioning.requests SET expires_at = now() + INTERVAL 8 HOUR "
                "WHERE request_id = 1")  # fmt: skip
    con.close()
    before = query(path, "SELECT * FROM provisioning.request_events ORDER BY event_id")
    policy = tmp_path / "access_policy.yml"
    policy.write_text('privileged_roles: ["Administrator", "Change Manager"]\n'
                      "approval: {required_for: privileged}\n"
                      "max_grant_duration: {privileged: 8h}\n")  # fmt: skip
    monkeypatch.setenv("HALO_ACCESS_POLICY", str(policy))
    sim = Simulator(generate_dataset(agents=12, teams=4, roles=4), SimulatorConfig())
    admin = sim.role_ids()["Administrator"]
    sim.set_agent_roles(9, [admin])  # what request 1 applied
    with sim.serve() as url:
        for name, value in (("HALO_BASE_URL", url), ("HALO_CLIENT_ID", sim.config.client_id),
                            ("HALO_CLIENT_SECRET", sim.config.client_secret)):  # fmt: skip
            monkeypatch.setenv(name, value)
        ring = signing_key(path)  # the first writer upgrades it
        # Every agent's roles were last read by the sync that wrote its row.
        assert query(path, "SELECT count(*) FILTER (WHERE roles_known AND roles_read_at = synced_at "
                           "AND roles_read_sync_id = sync_id), count(*) FROM halo.agents") == [(12, 12)]  # fmt: skip

        assert query(path, "SELECT max(version) FROM main.schema_migrations") == [
            (latest_version(),)
        ]
        assert query(path, "SELECT signed_from_event_id FROM main.meta") == [(8,)]
        # History as it was: every event kept, the old approvals among them.
        old = [row for row in query(path, "SELECT * EXCLUDE (statement, signature, "
                                          "actor_agent_id) FROM provisioning.request_events "
                                          "ORDER BY event_id")]  # fmt: skip
        assert old == before

        provision(sim, path, provisioning=True)

        assert query(path, "SELECT request_id, status FROM provisioning.requests ORDER BY 1") == [
            (1, "applied"), (2, "awaiting_approval"), (3, "applied"),
        ]  # fmt: skip
        assert query(
            path,
            "SELECT detail FROM provisioning.request_events WHERE request_id = 2 "
            "ORDER BY event_id DESC LIMIT 1",
        ) == [
            (  # fmt: skip
                "the approval of event 6 does not count: it is not signed (recorded before "
                "statements were signed, or written into the warehouse by hand) (approve 2)",
            )
        ]
        # The request a dead run left applying was checked against HaloITSM and finished.
        assert [r["name"] for r in sim.get_agent(5)["roles"]] == ["Agent", "Read Only"]
        assert sim.get_agent(13)["roles"] == []
        with connect(path) as con:
            assert unverified(con, ring) == []  # history is not reported as forged

        # The open campaign's unsigned decision must be taken again before it closes.
        refused = cli(path, "review", "close", "q4-admins", "--by", "agent3@example.com")
        assert refused.exit_code == 1
        assert "its decision (keep by agent3@example.com) it is not signed" in refused.output
        for agent in (2, 9):
            [(grant,)] = query(path, "SELECT grant_id FROM reviews.items WHERE agent_id = ?",
                               [agent])  # fmt: skip
            decided = cli(path, "review", "decide", "q4-admins", "--grant", grant, "--keep",
                          "--by", "agent3@example.com")  # fmt: skip
            assert decided.exit_code == 0, decided.output
        closed = cli(path, "review", "close", "q4-admins", "--by", "agent3@example.com")
        assert closed.exit_code == 0, closed.output
