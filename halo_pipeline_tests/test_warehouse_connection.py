"""How a process opens the warehouse: each block of work attaches the file to the process's
one DuckDB instance, and the file is free for other processes the moment the last block ends.
And how rows go in at once (`warehouse.bulk`)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.bulk import FEW, insert_rows

OPEN_FOR_WRITING = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"


def another_process_can_write(path: Path) -> bool:
    return subprocess.run([sys.executable, "-c", OPEN_FOR_WRITING, str(path)]).returncode == 0


def test_blocks_open_at_once_share_the_file_which_is_free_when_the_last_ends(path):
    with connect(path) as writer:
        writer.execute("UPDATE halo.agents SET name = 'Priya P.' WHERE agent_id = 9")
        with connect(path, read_only=True) as reader:
            assert reader.execute("SELECT name FROM halo.agents WHERE agent_id = 9").fetchall() == [
                ("Priya P.",)
            ]
            # Named after the file, as duckdb.connect names it.
            assert reader.execute("SELECT current_database()").fetchall() == [("warehouse",)]
        assert not another_process_can_write(path)
    assert another_process_can_write(path)
    with connect(path, read_only=True) as reader:
        assert reader.execute("SELECT name FROM halo.agents WHERE agent_id = 9").fetchall() == [
            ("Priya P.",)
        ]


def test_a_file_open_for_reading_is_not_written_in_the_same_process(path):
    with (
        connect(path, read_only=True),
        pytest.raises(duckdb.ConnectionException) as refused,
        connect(path),
    ):
        pass

    assert str(refused.value) == (
        f"{path} is open read-only in this process: it cannot be written until that "
        "connection is closed."
    )
    assert another_process_can_write(path)


def test_a_file_named_as_the_instances_own_catalog_opens_too(tmp_path):
    with connect(tmp_path / "memory.duckdb") as con:
        con.execute("CREATE TABLE main.mark AS SELECT 1 AS n")
    with connect(tmp_path / "memory.duckdb", read_only=True) as con:
        assert con.execute("SELECT n FROM main.mark").fetchall() == [(1,)]


def test_two_files_of_the_same_name_open_at_once_stay_apart(tmp_path):
    first, second = tmp_path / "a" / "warehouse.duckdb", tmp_path / "b" / "warehouse.duckdb"

    with connect(first) as one, connect(second) as other:
        one.execute("CREATE TABLE main.mark AS SELECT 'first' AS file")
        other.execute("CREATE TABLE main.mark AS SELECT 'second' AS file")

    for file, said in ((first, "first"), (second, "second")):
        with connect(file, read_only=True) as con:
            assert con.execute("SELECT file FROM main.mark").fetchall() == [(said,)]


@pytest.mark.parametrize("count", [3, FEW + 1])
def test_rows_go_in_alike_as_a_values_list_or_a_frame(count):
    """A few rows (one request filed) go as a VALUES list, more as a DataFrame: the same
    values, NULLs, lists, intervals and defaults either way."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (id INTEGER, name VARCHAR, tags VARCHAR[], lasting INTERVAL, "
        "since TIMESTAMPTZ, state VARCHAR DEFAULT 'pending')"
    )
    at = datetime(2026, 12, 3, 17, 30, tzinfo=UTC)
    rows = [(n, f"agent {n}" if n % 2 else None, ["a", "b"] if n % 3 else [],
             timedelta(hours=n) if n % 2 else None, at) for n in range(count)]  # fmt: skip

    insert_rows(con, "t", ["id", "name", "tags", "lasting", "since"], rows)

    stored = con.execute(
        "SELECT id, name, tags, lasting, since = ?, state FROM t ORDER BY id", [at]
    ).fetchall()
    assert stored == [(*row[:4], True, "pending") for row in rows]
