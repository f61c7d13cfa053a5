"""`halo-pipeline query`: one read of the warehouse, and nothing else.

The connection is read-only. For a local file it also has DuckDB's external access turned off,
so a query cannot read or write any other file (`COPY ... TO`, `read_csv`, `ATTACH`, `INSTALL`).
A MotherDuck warehouse needs external access, so there only reading statements run; that rule
holds for every warehouse, so a query means the same wherever it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb

from halo_pipeline.warehouse import WarehouseError, connect

READING = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
"""SELECT, WITH, FROM, SHOW, DESCRIBE and SUMMARIZE are SELECT statements to DuckDB."""


class QueryRefused(ValueError):
    """The SQL is not a read of the warehouse (one line that says so), or DuckDB refused it
    (DuckDB's own message)."""


def run_query(
    warehouse: str, sql: str, wait_s: float, on_wait: Callable[[str], None]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows of `sql`, read from the warehouse."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:  # DuckDB's own message, pointing at the mistake
        raise QueryRefused(str(error)) from None
    for statement in statements:
        if statement.type not in READING:
            # The statement's own first word: DuckDB files INSTALL under LOAD.
            word = statement.query.split(maxsplit=1)[0].upper()
            raise QueryRefused(
                "halo-pipeline query runs only SELECT, WITH, SHOW, DESCRIBE, EXPLAIN and "
                f"SUMMARIZE statements, not {word}."
            )
    local = not warehouse.startswith("md:")
    config = {"enable_external_access": False} if local else {}
    try:
        with connect(
            warehouse, read_only=True, wait_s=wait_s, on_wait=on_wait, config=config
        ) as con:
            cursor = con.execute(sql)
            columns = [column[0] for column in cursor.description or ()]
            return columns, cursor.fetchall()
    except duckdb.PermissionException as error:
        raise QueryRefused(
            f"halo-pipeline query reads the warehouse only: {_first_line(error)}"
        ) from None
    except WarehouseError:
        raise
    except duckdb.Error as error:
        raise QueryRefused(str(error)) from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
