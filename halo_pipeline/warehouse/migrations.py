"""Versioned migrations: every change to a table is a numbered SQL file in `migrations/`.

The first writer that opens a warehouse made by an older release applies the ones it lacks,
each in its own transaction with its row in `main.schema_migrations`, so an upgrade keeps
every row (history included) and a failed one leaves the file as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from importlib.resources import files

import duckdb

from halo_pipeline.warehouse.errors import WarehouseError
from halo_pipeline.warehouse.transactions import transaction

RELEASE = version("halo-pipeline")
"""The release writing the warehouse: main.meta says which last upgraded it."""
_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    found = []
    for entry in files("halo_pipeline.warehouse").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(
                Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8"))
            )
    return tuple(sorted(found, key=lambda migration: migration.version))


def latest_version() -> int:
    return migrations()[-1].version


MARKERS = ("main.meta", "main.schema_migrations", "provisioning.queue_info")
"""Tables only this project makes: a file holding one is a warehouse of ours. `meta` marks it
from this release on, `schema_migrations` those made since migrations were versioned, and the
queue's `queue_info` those of release 0.1.0, before either."""


def is_current(con: duckdb.DuckDBPyConnection, read_only: bool) -> bool:
    """One short query for what nearly every connection finds: a warehouse of ours (its
    markers answer) that this release has nothing to migrate in. Otherwise the connection goes
    the long way, `refuse_foreign` then `migrate`, which a connection pays for in time as much
    as for opening the file."""
    try:
        [(applied, release)] = con.execute(
            "SELECT (SELECT max(version) FROM main.schema_migrations), "
            "(SELECT release FROM main.meta)"
        ).fetchall()
    except duckdb.CatalogException:  # a marker is missing: new, foreign or older
        return False
    return read_only or (applied == latest_version() and release == RELEASE)


def refuse_foreign(con: duckdb.DuckDBPyConnection, path: object) -> None:
    """Refuse a DuckDB file this project did not make: one that holds tables, views, schemas
    or sequences but no marker. An empty or new file is ours to initialise."""
    [(marked, objects, example)] = con.execute(
        """
        WITH mine AS (
            SELECT schema_name AS name, NULL AS tab FROM duckdb_schemas()
            WHERE database_name = current_database() AND NOT internal
              AND schema_name <> 'main'
            UNION ALL
            SELECT schema_name, table_name FROM duckdb_tables()
            WHERE database_name = current_database()
            UNION ALL
            SELECT schema_name, view_name FROM duckdb_views()
            WHERE database_name = current_database() AND NOT internal
            UNION ALL
            SELECT schema_name, sequence_name FROM duckdb_sequences()
            WHERE database_name = current_database()
        )
        SELECT count(*) FILTER (WHERE list_contains(?, name || '.' || tab)),
               count(*),
               min(name || coalesce('.' || tab, ''))
        FROM mine
        """,
        [list(MARKERS)],
    ).fetchall()
    if objects and not marked:
        raise WarehouseError(
            f"{path} is a DuckDB file this project did not make (it holds {example} and no "
            "halo-pipeline marker); nothing was changed in it. Point HALO_DUCKDB_PATH at the "
            "warehouse, or at a new file such as data/warehouse.duckdb."
        )


def migrate(con: duckdb.DuckDBPyConnection) -> list[Migration]:
    """Apply the migrations this warehouse lacks, in order; the ones applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS main.schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    [(current,)] = con.execute("SELECT max(version) FROM main.schema_migrations").fetchall()
    applied = []
    for migration in migrations():
        if current is not None and migration.version <= current:
            continue
        with transaction(con):
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO main.schema_migrations VALUES (?, ?, now())",
                [migration.version, migration.name],
            )
        applied.append(migration)
    [(release,)] = con.execute("SELECT release FROM main.meta").fetchall()
    if release != RELEASE:
        con.execute("UPDATE main.meta SET release = ?", [RELEASE])
    return applied


def warehouse_id(con: duckdb.DuckDBPyConnection) -> str:
    """This warehouse's own id (main.meta), which every signed statement names."""
    [(found,)] = con.execute("SELECT warehouse_id FROM main.meta").fetchall()
    return str(found)
