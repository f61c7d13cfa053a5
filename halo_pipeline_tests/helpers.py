"""Small helpers the tests share."""

from __future__ import annotations

from pathlib import Path

from halo_pipeline.warehouse import connect


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of a read-only query against a warehouse file."""
    with connect(path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
