"""How the `halo-pipeline` commands open the warehouse: waiting while a run holds it, and a
refusal said in one line with what was not done."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
import duckdb

from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.warehouse import WarehouseError, configured_path, connect

T = TypeVar("T")

warehouse_option = click.option(
    "--warehouse",
    default=configured_path,
    show_default="HALO_DUCKDB_PATH or data/warehouse.duckdb",
)


def writing(warehouse: str, act: Callable[[duckdb.DuckDBPyConnection], T], undone: str) -> T:
    """Open the warehouse for writing (waiting while a run holds it) and act; a refusal is one
    line ending with what was not done (`undone`), and then nothing was written."""
    return _opened(warehouse, act, undone, read_only=False)


def reading(warehouse: str, act: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Open the warehouse read-only (waiting while a run writes it) and act; a refusal is one
    line."""
    return _opened(warehouse, act, "", read_only=True)


def _opened(
    warehouse: str, act: Callable[[duckdb.DuckDBPyConnection], T], undone: str, read_only: bool
) -> T:
    try:
        with connect(
            warehouse, read_only=read_only, wait_s=120, create=False,
            on_wait=lambda why: click.echo(why, err=True),
        ) as con:  # fmt: skip
            return act(con)
    except (RequestRefused, WarehouseError) as refused:
        raise click.ClickException(f"{refused} {undone}".rstrip()) from None
