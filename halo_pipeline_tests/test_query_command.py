"""`halo-pipeline query`: formats, DuckDB's own errors, and a warehouse another process writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from wcwidth import wcswidth

from halo_pipeline.cli import main
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import hold_write_lock


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        con.execute(
            "CREATE OR REPLACE TABLE halo.agents AS SELECT 2 AS agent_id, 'Zoë \"Z\" Müller' AS name"
        )
    return path


def run(path: Path, *args: str):
    return CliRunner().invoke(main, ["query", *args, "--warehouse", str(path)])


def test_table_csv_and_json(path):
    sql = (
        "SELECT agent_id, name, ['Agent', 'Change Manager'] AS roles, [1, 2] AS teams, "
        "NULL AS team, {'id': 4, 'name': 'Red'} AS manages FROM halo.agents"
    )

    assert run(path, sql).output == textwrap.dedent("""\
        ┌────────────┬────────────────┬───────────────────────┬─────────┬────────┬──────────────────────────┐
        │ agent_id   │ name           │ roles                 │ teams   │ team   │ manages                  │
        ├────────────┼────────────────┼───────────────────────┼─────────┼────────┼──────────────────────────┤
        │ 2          │ Zoë "Z" Müller │ Agent, Change Manager │ 1, 2    │        │ {"id": 4, "name": "Red"} │
        └────────────┴────────────────┴───────────────────────┴─────────┴────────┴──────────────────────────┘
        (1 row)
        """)  # fmt: skip
    assert run(path, sql, "--format", "csv").output == (
        "agent_id,name,roles,teams,team,manages\n"
        '2,"Zoë ""Z"" Müller","[""Agent"", ""Change Manager""]","[1, 2]",,"{""id"": 4, ""name"": ""Red""}"\n'
    )  # fmt: skip
    assert json.loads(run(path, sql, "--format", "json").output) == [
        {"agent_id": 2, "name": 'Zoë "Z" Müller', "roles": ["Agent", "Change Manager"],
         "teams": [1, 2], "team": None, "manages": {"id": 4, "name": "Red"}}
    ]  # fmt: skip


def test_wide_characters_keep_the_table_borders_aligned(path):
    sql = (
        "SELECT * FROM (VALUES ('山田 花子', 'ｱｸｾｽ'), ('Zoë', 'x'), ('Дмитрий', '管理者')) "
        "AS t(name, role)"
    )

    lines = run(path, sql).output.splitlines()[:-1]

    assert [wcswidth(line) for line in lines] == [wcswidth(lines[0])] * len(lines)
    assert lines[3] == "│ 山田 花子 │ ｱｸｾｽ   │"


def test_sql_errors_are_duckdbs_own_with_a_nonzero_exit(path):
    result = run(path, "SELECT * FROM halo.agnets")

    assert result.exit_code == 1
    assert result.output.startswith(
        'Error: Catalog Error: Table with name agnets does not exist!\nDid you mean "agents"?\n\n'
        "LINE 1: SELECT * FROM halo.agnets\n"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM halo.agents", "not DELETE."),
        ("COPY (SELECT 42) TO '{tmp}/out.csv'", "not COPY."),
        ("SELECT 1; DROP TABLE halo.agents", "not DROP."),
        ("ATTACH '{tmp}/other.duckdb' AS other", "not ATTACH."),
        ("INSTALL httpfs", "not INSTALL."),
    ],
)
def test_only_reading_statements_run(path, tmp_path, sql, message):
    before = sorted(tmp_path.iterdir())

    result = run(path, sql.format(tmp=tmp_path))

    assert (result.exit_code, result.output) == (
        1,
        "Error: halo-pipeline query runs only SELECT, WITH, SHOW, DESCRIBE, EXPLAIN and "
        f"SUMMARIZE statements, {message}\n",
    )
    assert sorted(tmp_path.iterdir()) == before  # no file written, none attached
    assert run(path, "SELECT count(*) AS n FROM halo.agents", "--format", "csv").output == "n\n1\n"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{outside}')",
        "SELECT * FROM read_text('{outside}')",
        "SELECT * FROM glob('{tmp}/*')",
        "SELECT * FROM '{outside}'",
    ],
)
def test_nothing_outside_the_warehouse_can_be_read(path, tmp_path, sql):
    outside = tmp_path / "secret.csv"
    outside.write_text("token\nhunter2\n")

    result = run(path, sql.format(outside=outside, tmp=tmp_path))

    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: halo-pipeline query reads the warehouse only: Permission Error: Cannot access "
    )
    assert "hunter2" not in result.output and result.output.count("\n") == 1


def test_a_missing_warehouse_says_how_to_make_one(tmp_path):
    result = run(tmp_path / "nothing.duckdb", "SELECT 1")

    assert result.exit_code == 1
    assert "No warehouse at " in result.output
    assert "run halo_sync_job first (for example `make demo`)" in result.output


def query_process(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "halo_pipeline.cli", "query", *args, "--warehouse", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_query_waits_while_another_process_writes(path):
    holder = hold_write_lock(path, 2)

    completed = query_process(path, "SELECT agent_id FROM halo.agents", "--format", "csv")

    holder.wait()
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "agent_id\n2\n"
    assert "The warehouse is open for writing by another process; retrying in " in (
        completed.stderr
    )


def test_query_gives_up_after_its_wait(path):
    holder = hold_write_lock(path, 10)
    try:
        completed = query_process(path, "SELECT 1", "--wait", "0.5")
    finally:
        holder.kill()
        holder.wait()

    assert completed.returncode == 1
    assert completed.stderr.splitlines()[-1] == (
        f"Error: The warehouse {path} is being written by another process; gave up after 1s. "
        "Try again when it finishes."
    )
