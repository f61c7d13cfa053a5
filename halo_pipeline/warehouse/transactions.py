"""The one way this project writes several statements as a unit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Commit when the block ends, roll back when it raises (also on Ctrl-C)."""
    con.begin()
    try:
        yield con
        con.commit()
    except BaseException:
        con.rollback()
        raise
