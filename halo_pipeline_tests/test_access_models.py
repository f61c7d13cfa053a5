"""The access model of dbt_like_sql/: entitlements, grants, history and review views."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from halo_pipeline.definitions import build_definitions
from halo_pipeline.halo.models import Agent
from halo_pipeline.simulator import Simulator, generate_dataset
from halo_pipeline.sql_models.project import PROJECT_MODELS_DIR, SqlModelError, load_project
from halo_pipeline.sql_models.schema_tests import SchemaFileError
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import (
    access_tables,
    build_access,
    halo_client,
    md_rows,
    query,
    sync,
    targeted_sync,
)

ROLE = {role.name: role.id for role in generate_dataset().roles}
# Members of team 4 ('Security "Red" Team') in the default dataset.
TEAM_4_MEMBERS = [13, 15, 16, 19, 21, 30, 34, 35, 36, 37, 40]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def test_entitlements_and_grants_for_the_default_dataset(sim, path):
    sync(sim, path)
    build_access(path)

    assert query(path, "SELECT entitlement_id, resource_type, slug FROM access.entitlements ORDER BY 1") == sorted(
        [(f"role:{guid}:assigned", "role", "assigned") for guid in ROLE.values()]
        + [(f"team:{team}:member", "team", "member") for team in range(1, 7)]
    )  # fmt: skip
    assert query(
        path, "SELECT resource_type, count(*) FROM access.grants GROUP BY 1 ORDER BY 1"
    ) == [
        ("role", 76),
        ("team", 64),
    ]
    assert query(
        path, "SELECT grant_id, resource_name FROM access.grants WHERE principal_id = 2 ORDER BY 1"
    ) == sorted([
        (f"role:{ROLE['Administrator']}:assigned:agent:2", "Administrator"),
        (f"role:{ROLE['Agent']}:assigned:agent:2", "Agent"),
        (f"role:{ROLE['Change Manager']}:assigned:agent:2", "Change Manager"),
        ("team:1:member:agent:2", "1st Line Support"),
        ("team:3:member:agent:2", "Service Desk – Café"),
    ])  # fmt: skip
    # The inactive team 5 has its entitlement, and Seán O'Brien's membership of it is a grant.
    assert query(path, "SELECT principal_id FROM access.grants WHERE entitlement_id = 'team:5:member' AND principal_id = 3") == [(3,)]  # fmt: skip
    assert query(path, "SELECT resource_type, status, count(*) FROM access.resources GROUP BY ALL ORDER BY ALL") == [
        ("agent", "disabled", 4),
        ("agent", "enabled", 36),
        ("role", "enabled", 5),
        ("team", "enabled", 5),
        ("team", "inactive", 1),
    ]  # fmt: skip


def test_review_views(sim, path):
    sync(sim, path)
    build_access(path)

    assert query(path, "SELECT agent_id, role_name FROM access.admin_agents") == [
        (2, "Administrator")
    ]
    assert query(path, "SELECT agent_id, roles, teams FROM access.disabled_agents_with_access ORDER BY 1") == [
        (6, ["Agent", "Change Manager"], ["1st Line Support"]),
        (29, ["Change Manager"], ["2nd Line Support", "Legacy Apps (retired)", "Service Desk – Café", "Закупки"]),
        (40, [], ["1st Line Support", "2nd Line Support", "Legacy Apps (retired)", 'Security "Red" Team']),
    ]  # fmt: skip
    assert query(path, "SELECT agent_id FROM access.agents_without_roles ORDER BY 1") == [
        (7,), (9,), (13,), (19,), (34,), (40,)
    ]  # fmt: skip
    assert query(path, "SELECT agent_id, roles, teams FROM access.agent_access WHERE agent_id IN (7, 10) ORDER BY 1") == [
        (7, [], []),
        (10, ["Agent", "Read Only"], []),
    ]  # fmt: skip
    assert query(path, "SELECT * FROM access.unused_entitlements") == []
    auditor = sim.add_role("Auditor")
    sync(sim, path)
    build_access(path)
    assert query(path, "SELECT entitlement_id, resource_name FROM access.unused_entitlements") == [
        (f"role:{auditor}:assigned", "Auditor")
    ]


def changes(path: Path) -> list[tuple]:
    return query(path, "SELECT sync_id, change, grant_id FROM access.grant_changes ORDER BY ALL")


def test_history_follows_a_sequence_of_syncs(sim: Simulator, path: Path):
    sync(sim, path)  # 1: the baseline
    auditor = sim.add_role("Auditor")
    sim.set_agent_roles(9, [auditor])
    sync(sim, path)  # 2: a new role, granted to Priya Patel
    sim.set_agent_teams(5, [2])
    sync(sim, path)  # 3: Дмитрий Иванов leaves team 6
    sim.disable_agent(10)
    sync(sim, path)  # 4: Liam Smith disabled: his grants stay
    sim.delete_team(4)
    sync(sim, path)  # 5: team 4 deleted: every membership of it ends
    build_access(path)

    assert changes(path) == sorted(
        [(2, "added", f"role:{auditor}:assigned:agent:9"), (3, "removed", "team:6:member:agent:5")]
        + [(5, "removed", f"team:4:member:agent:{agent}") for agent in TEAM_4_MEMBERS]
    )
    history = (
        "SELECT first_seen_sync_id, last_seen_sync_id, removed_in_sync_id, is_current, "
        "resource_name, agent_name FROM access.grant_history WHERE grant_id = ?"
    )
    assert query(path, history, [f"role:{auditor}:assigned:agent:9"]) == [
        (2, 5, None, True, "Auditor", "Priya Patel")
    ]
    assert query(path, history, ["team:6:member:agent:5"]) == [
        (1, 2, 3, False, "Закупки", "Дмитрий Иванов")
    ]
    # The deleted team keeps its name in history.
    assert query(path, history, ["team:4:member:agent:13"]) == [
        (1, 4, 5, False, 'Security "Red" Team', "Aoife Novák")
    ]
    assert query(path, history, ["team:1:member:agent:2"]) == [
        (1, 5, None, True, "1st Line Support", "Zoë Müller")
    ]
    # One row per grant period: the 140 grants of the baseline plus the one added since.
    assert query(path, "SELECT count(*) FROM access.grant_history") == [(141,)]
    assert query(path, "SELECT count(*) FROM access.grants") == [(140 + 1 - 1 - 11,)]
    assert query(path, "SELECT agent_id FROM access.disabled_agents_with_access WHERE agent_id = 10") == [(10,)]  # fmt: skip
    assert query(path, "SELECT count(*) FROM access.entitlements WHERE entitlement_id = 'team:4:member'") == [(0,)]  # fmt: skip
    # "Who held what after sync 2": team 6 still had Дмитрий, team 4 still existed.
    at_sync_2 = query(
        path,
        "SELECT grant_id FROM access.grant_history WHERE first_seen_sync_id <= 2 "
        "AND (removed_in_sync_id IS NULL OR removed_in_sync_id > 2) AND principal_id = 5 ORDER BY 1",
    )
    assert at_sync_2 == [(f"role:{ROLE['Agent']}:assigned:agent:5",), ("team:2:member:agent:5",), ("team:6:member:agent:5",)]  # fmt: skip


def test_a_membership_that_comes_back_opens_a_new_period(sim, path):
    sync(sim, path)
    sim.set_agent_teams(5, [2])
    sync(sim, path)
    sim.set_agent_teams(5, [6, 2])
    sync(sim, path)
    build_access(path)

    assert query(
        path,
        "SELECT first_seen_sync_id, removed_in_sync_id FROM access.grant_history "
        "WHERE grant_id = 'team:6:member:agent:5' ORDER BY 1",
    ) == [(1, 2), (3, None)]
    assert changes(path) == [(2, "removed", "team:6:member:agent:5"), (3, "added", "team:6:member:agent:5")]  # fmt: skip


def test_syncs_without_changes_add_no_history(sim, path):
    for _ in range(3):
        sync(sim, path)
    build_access(path)

    assert query(path, "SELECT count(*), min(first_seen_sync_id), max(last_seen_sync_id) FROM access.grant_history") == [(140, 1, 3)]  # fmt: skip
    assert changes(path) == []


def test_rerunning_the_models_changes_nothing(sim, path):
    sync(sim, path)
    sim.set_agent_teams(5, [2])
    sync(sim, path)
    build_access(path)
    before = access_tables(path)

    build_access(path)

    assert access_tables(path) == before
    assert len(before["grant_changes"]) == 1


def test_changing_a_model_from_view_to_table_and_back(sim, path, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(PROJECT_MODELS_DIR, models)
    sync(sim, path)
    build_access(path, models)
    admin = models / "admin_agents.sql"
    admin.write_text("{{ config(materialized='table') }}\n" + admin.read_text())

    build_access(path, models)

    kinds = "SELECT table_type FROM information_schema.tables WHERE table_name = 'admin_agents'"
    assert query(path, kinds) == [("BASE TABLE",)]
    admin.write_text(admin.read_text().replace("{{ config(materialized='table') }}\n", ""))
    build_access(path, models)
    assert query(path, kinds) == [("VIEW",)]


def copy_models(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    shutil.copytree(PROJECT_MODELS_DIR, models)
    return models


def test_a_new_sql_file_becomes_an_asset_with_its_deps(tmp_path):
    models = copy_models(tmp_path)
    (models / "team_sizes.sql").write_text(
        "-- Members per team.\n"
        "SELECT t.name, count(g.grant_id) AS members\n"
        "FROM {{ source('halo', 'teams') }} AS t\n"
        "LEFT JOIN {{ ref('grants') }} AS g ON g.entitlement_id = 'team:' || t.team_id || ':member'\n"
        "GROUP BY 1\n"
    )

    graph = build_definitions(models).resolve_asset_graph()

    node = graph.get(dg.AssetKey(["access", "team_sizes"]))
    assert node.parent_keys == {dg.AssetKey(["access", "grants"]), dg.AssetKey(["halo", "teams"])}
    assert node.group_name == "access"
    assert node.description == "Members per team."


def test_the_new_model_materializes(halo_env, run_job, warehouse_path, tmp_path, sim):
    models = copy_models(tmp_path)
    (models / "team_sizes.sql").write_text(
        "SELECT t.team_id, count(g.grant_id) AS members FROM {{ source('halo', 'teams') }} AS t "
        "LEFT JOIN {{ ref('grants') }} AS g ON g.entitlement_id = 'team:' || t.team_id || ':member' "
        "GROUP BY 1"
    )

    result = run_job("halo_sync_job", sql_dir=models)

    assert result.success
    members = [
        team["team_id"]
        for a in range(2, 42)
        for team in sim.get_agent(a)["teams"]
        if team["in_section"]  # agent 4's row for team 1 is not a membership
    ]
    assert query(warehouse_path, "SELECT * FROM access.team_sizes ORDER BY 1") == [
        (team, members.count(team)) for team in range(1, 7)
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"broken.sql": "SELECT * FROM {{ ref('no_such_model') }}"},
            "broken.sql: ref('no_such_model') names no model; the models are admin_agents, ",
        ),
        (
            {"broken.sql": "SELECT * FROM {{ source('halo', 'tickets') }}"},
            "broken.sql: source('halo', 'tickets') is not a table the pipeline writes (",
        ),
        (
            {
                "a_model.sql": "SELECT * FROM {{ ref('b_model') }}",
                "b_model.sql": "SELECT * FROM {{ ref('a_model') }}",
            },
            "the models refer to each other in a cycle: ",
        ),
        (
            {"broken.sql": "{{ config(materialized='incremental') }} SELECT 1"},
            "broken.sql: materialized='incremental'; use one of view, table",
        ),
        (
            {"broken.sql": "SELECT {{ ref('grants') }"},
            "broken.sql:1: unexpected '}'",
        ),
        ({"Bad-Name.sql": "SELECT 1"}, "Bad-Name.sql: a model's file name becomes its table name"),
    ],
)
def test_bad_models_fail_at_load_naming_the_file(tmp_path, files, message):
    models = copy_models(tmp_path)
    for name, text in files.items():
        (models / name).write_text(text)

    with pytest.raises(SqlModelError) as error:
        build_definitions(models)

    assert message in str(error.value)
    assert str(models) in str(error.value)


def test_a_cycle_names_both_files(tmp_path):
    models = copy_models(tmp_path)
    (models / "a_model.sql").write_text("SELECT * FROM {{ ref('b_model') }}")
    (models / "b_model.sql").write_text("SELECT * FROM {{ ref('a_model') }}")

    with pytest.raises(SqlModelError) as error:
        load_project(models)

    assert str(error.value).endswith(
        ("a_model.sql -> b_model.sql -> a_model.sql", "b_model.sql -> a_model.sql -> b_model.sql")
    )


def test_schema_yml_naming_an_unknown_model_fails_at_load(tmp_path):
    models = copy_models(tmp_path)
    schema = models / "schema.yml"
    schema.write_text(schema.read_text() + "  - name: no_such_model\n    columns:\n      - name: x\n        tests: [unique]\n")  # fmt: skip

    with pytest.raises(SchemaFileError) as error:
        build_definitions(models)

    assert "a test refers to access.no_such_model, which is neither a model in models/" in str(
        error.value
    )


def test_failing_schema_tests_fail_their_checks_inside_the_step_that_built_them(
    halo_env, run_job, tmp_path
):
    models = copy_models(tmp_path)
    schema = models / "schema.yml"
    schema.write_text(
        schema.read_text()
        .replace(
            "  - name: grants\n    columns:\n",
            "  - name: grants\n    columns:\n      - name: resource_type\n"
            "        tests:\n          - accepted_values: {values: [role]}\n",
        )
        .replace(
            "          - name: default_team\n",
            "          - name: default_team\n"
            "            tests:\n              - accepted_values: {values: [Закупки]}\n",
        )
    )

    result = run_job("halo_sync_job", sql_dir=models)

    assert result.success  # a failing check says so; it does not fail the run
    failed = {
        e.asset_key.to_user_string(): e
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }
    assert sorted(failed) == ["access/grants", "halo/agents"]
    assert failed["halo/agents"].metadata["failed_tests"].value == "accepted_values_default_team"
    grants = failed["access/grants"]
    assert grants.metadata["failed_tests"].value == "accepted_values_resource_type"
    assert grants.severity == dg.AssetCheckSeverity.ERROR
    # Five other default teams in the dataset; grants of teams counted in the sample.
    assert ["accepted_values_default_team", "5", "error"] in md_rows(
        failed["halo/agents"].metadata["tests"].value
    )
    sample = grants.metadata["sample accepted_values_resource_type"].value
    assert sample.splitlines()[-1].split() == ["|", "team", "|", "64", "|"]
    steps = {
        e.step_key for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert steps == {"halo_tables", "access_policy", "access_models"}


def test_lineage_runs_from_halo_agents_to_access_grants():
    graph = build_definitions().resolve_asset_graph()
    grants = dg.AssetKey(["access", "grants"])

    assert dg.AssetKey(["halo", "agents"]) in graph.get(grants).parent_keys
    upstream = dg.AssetSelection.assets(grants).upstream().resolve(graph)
    # A time-bound grant's end comes from the request queue, which is checked against the sync.
    assert upstream == {
        grants,
        dg.AssetKey(["access", "entitlements"]),
        dg.AssetKey(["access", "grant_expiries"]),
        dg.AssetKey(["provisioning", "requests"]),
        *(dg.AssetKey(["halo", t]) for t in ("agents", "roles", "teams", "agent_roles",
                                             "agent_teams", "ticket_types")),
    }  # fmt: skip
    history = dg.AssetSelection.assets(dg.AssetKey(["access", "grant_changes"])).upstream()
    assert dg.AssetKey(["halo", "agent_team_history"]) in history.resolve(graph)


def test_model_assets_hold_the_duckdb_pool_and_report_rows(halo_env, run_job):
    defs = build_definitions()
    grants = defs.resolve_assets_def(dg.AssetKey(["access", "grants"]))
    assert grants.op.pool == "duckdb"
    assert grants.specs_by_key[dg.AssetKey(["access", "grants"])].kinds == {"duckdb", "sql"}

    result = run_job("halo_sync_job")

    metadata = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert metadata["access/grants"]["dagster/row_count"].value == 140
    assert metadata["access/entitlements"]["dagster/row_count"].value == 11
    assert "grant_id" in metadata["access/grants"]["preview"].value
    columns = metadata["access/grants"]["dagster/column_schema"].value.columns
    assert [(c.name, c.type, c.description) for c in columns][:3] == [
        ("grant_id", "VARCHAR", "<entitlement_id>:agent:<agent_id>."),
        ("entitlement_id", "VARCHAR", "What is held."),
        ("resource_type", "VARCHAR", None),
    ]
    # Previews as a person reads them: NULL empty, lists comma-separated.
    agents_preview = md_rows(metadata["halo/agents"]["preview"].value)
    assert agents_preview[0][:8] == [
        "2", "Zoë Müller", "Zoë", "Müller", "agent2@example.com", "False", "False", ""
    ]  # fmt: skip
    access_preview = md_rows(metadata["access/agent_access"]["preview"].value)
    [(read_at,)] = query(
        halo_env["HALO_DUCKDB_PATH"], "SELECT DISTINCT roles_read_at FROM halo.agents"
    )
    assert access_preview[0][5:] == [
        "Administrator, Agent, Change Manager",
        "1st Line Support, Service Desk – Café",
        str(read_at),  # the roles' age: every agent read by the sync this run made
    ]
    # From schema.yml, for the synced tables as for the models.
    agents = metadata["halo/agents"]["dagster/column_schema"].value.columns
    assert agents[0].description == (
        "HaloITSM's agent id (`GET /api/agent`); the Unassigned placeholder (1) is left out."
    )


def test_connection_is_closed_when_a_model_fails(sim, path, tmp_path):
    models = copy_models(tmp_path)
    (models / "broken_at_runtime.sql").write_text(
        "{{ config(materialized='table') }} SELECT * FROM {{ source('halo', 'agents') }} WHERE 1 = 'x'"
    )
    sync(sim, path)

    with pytest.raises(Exception, match="Conversion Error"):
        build_access(path, models)

    with connect(path, wait_s=0) as con:  # no lock left behind
        assert con.execute("SELECT 1").fetchall() == [(1,)]


def test_a_targeted_sync_is_credited_only_with_the_agents_it_read(sim, path):
    sync(sim, path)  # 1: full
    sim.set_agent_roles(5, [])  # agent 5 loses its role in HaloITSM, unseen until a full sync
    sim.set_agent_roles(9, [ROLE["Read Only"]])
    with halo_client(sim) as client:
        targeted_sync(
            sim, path, [client.get_agent(9)]
        )  # 2: reads agent 9 only, as provisioning does
    sync(sim, path)  # 3: full
    build_access(path)

    history = "SELECT first_seen_sync_id, last_seen_sync_id, removed_in_sync_id FROM access.grant_history WHERE grant_id = ?"
    # Agent 5's role was last seen by sync 1: sync 2 never read agent 5.
    assert query(path, history, [f"role:{ROLE['Agent']}:assigned:agent:5"]) == [(1, 1, 3)]
    # Agent 9's new role was first seen by the targeted sync that read it.
    assert query(path, history, [f"role:{ROLE['Read Only']}:assigned:agent:9"]) == [(2, 3, None)]
    # Everyone else's grants: seen by the full syncs.
    assert query(path, history, ["team:1:member:agent:2"]) == [(1, 3, None)]


def test_a_targeted_sync_keeps_memberships_an_agent_was_read_without(sim, path):
    sync(sim, path)
    targeted_sync(sim, path, [Agent(id=2, name="Zoë Müller", roles=(), teams=None)])
    build_access(path)

    assert query(path, "SELECT team_id FROM halo.agent_teams WHERE agent_id = 2 ORDER BY 1") == [
        (1,),
        (3,),
    ]
    assert query(path, "SELECT count(*) FROM halo.agent_roles WHERE agent_id = 2") == [(0,)]
    assert query(path, "SELECT change, resource_type FROM access.grant_changes WHERE principal_id = 2 ORDER BY ALL") == [
        ("removed", "role"), ("removed", "role"), ("removed", "role"),
    ]  # fmt: skip


def test_an_agent_read_without_its_roles_keeps_when_they_were_last_read(sim, path):
    sync(sim, path)  # 1
    [(first_read,)] = query(path, "SELECT roles_read_at FROM halo.agents WHERE agent_id = 2")
    targeted = targeted_sync(sim, path, [
        Agent(id=2, name="Zoë Müller", roles=None, teams=None),
        Agent(id=9, name="Priya Patel", roles=(), teams=()),
        Agent(id=777, name="Ada Lovelace", roles=None, teams=()),  # new, its roles not read
    ])  # fmt: skip
    build_access(path)

    assert query(path, "SELECT agent_id, sync_id, roles_known, roles_read_at = ?, roles_read_sync_id "
                       "FROM halo.agents WHERE agent_id IN (2, 9, 777) ORDER BY 1", [first_read]) == [
        (2, targeted, True, True, 1), (9, targeted, True, False, targeted),
        (777, targeted, False, None, None),
    ]  # fmt: skip
    assert query(path, "SELECT agent_id, roles_read_at = ? FROM access.agent_access "
                       "WHERE agent_id IN (2, 777) ORDER BY 1", [first_read]) == [(2, True), (777, None)]  # fmt: skip


def test_a_models_folder_without_models_fails_at_load(tmp_path):
    with pytest.raises(SqlModelError) as error:
        build_definitions(tmp_path)

    assert str(error.value) == (
        f"No SQL models in {tmp_path}: set HALO_SQL_MODELS_DIR to the project's dbt_like_sql folder."
    )


def test_entitlement_and_grant_ids_are_built_by_one_macro(tmp_path):
    from halo_pipeline.sql_models.project import entitlement_id, grant_id

    assert entitlement_id("role", "r.role_id") == "'role:' || r.role_id || ':assigned'"
    assert entitlement_id("team", "team_id") == "'team:' || team_id || ':member'"
    assert (
        grant_id("e.entitlement_id", "a.agent_id") == "e.entitlement_id || ':agent:' || a.agent_id"
    )
    (tmp_path / "bad.sql").write_text("SELECT {{ entitlement_id('group', 'group_id') }}")
    with pytest.raises(SqlModelError) as error:
        load_project(tmp_path)
    assert (
        str(error.value)
        == f"{tmp_path / 'bad.sql'}: entitlement ids exist for role, team, not 'group'"
    )
    # Every model that names an entitlement or grant builds it with the macro.
    for model in load_project().models:
        text = model.path.read_text()
        assert "':assigned'" not in text and "':member'" not in text and "':agent:'" not in text
