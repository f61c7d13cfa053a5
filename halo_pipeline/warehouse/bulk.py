"""Many rows into one table as one statement.

DuckDB's `executemany` runs a statement per row, about a millisecond each: a review campaign
over 50,000 grants spent a minute inserting its items. Scanned as a DataFrame, the same rows go
in at once, in the caller's transaction. The columns are object-typed, so DuckDB reads each
value as Python gives it (None as NULL, lists as lists) and casts to the table's types. A few
rows (one request filed) go as one parameterised VALUES list instead: importing pandas would
cost the command that files them half a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

FEW = 100
"""Up to this many rows go as one VALUES list."""


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """`rows` (values in `columns`' order) into `table`; its other columns take their
    defaults. `table` and `columns` are the code's own names, never input."""
    if not rows:
        return
    if len(rows) <= FEW:
        row = f"({', '.join('?' * len(columns))})"
        con.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * len(rows))}",
            [value for values in rows for value in values],
        )
        return
    import pandas as pd  # noqa: PLC0415

    frame = pd.DataFrame(list(rows), columns=list(columns), dtype=object)
    con.register("incoming_rows", frame)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
    finally:
        con.unregister("incoming_rows")
