"""`halo-pipeline query`: formats, DuckDB's own errors, and a warehouse another process writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

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
    sql = "SELECT agent_id, name, [1, 2] AS ids FROM halo.agents"

    assert run(path, sql).output == textwrap.dedent("""\
        ┌────────────┬────────────────┬────────┐
        │ agent_id   │ name           │ ids    │
        ├────────────┼────────────────┼────────┤
        │ 2          │ Zoë "Z" Müller │ [1, 2] │
        └────────────┴────────────────┴────────┘
        (1 row)
        """)
    assert (
        run(path, sql, "--format", "csv").output
        == 'agent_id,name,ids\n2,"Zoë ""Z"" Müller","[1, 2]"\n'
    )
    assert run(path, sql, "--format", "json").output == (
        '[\n  {\n    "agent_id": 2,\n    "name": "Zoë \\"Z\\" Müller",\n    "ids": [\n      1,\n'
        '      2\n    ]\n  }\n]\n'
    )  # fmt: skip


def test_sql_errors_are_duckdbs_own_with_a_nonzero_exit(path):
    result = run(path, "SELECT * FROM halo.agnets")

    assert result.exit_code == 1
    assert result.output.startswith(
        'Error: Catalog Error: Table with name agnets does not exist!\nDid you mean "agents"?\n\n'
        "LINE 1: SELECT * FROM halo.agnets\n"
    )


def test_writes_are_refused(path):
    result = run(path, "DELETE FROM halo.agents")

    assert result.exit_code == 1
    assert "read-only" in result.output
    assert run(path, "SELECT count(*) AS n FROM halo.agents", "--format", "csv").output == "n\n1\n"


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
