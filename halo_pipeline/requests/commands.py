"""How the `halo-pipeline` commands open the warehouse: waiting while a run holds it, and a
refusal said in one line with what was not done."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import click
import duckdb

from halo_pipeline.halo import HaloError, HaloSettings
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.requests.signing import KeyRing, SigningKeyError, load_keyring
from halo_pipeline.warehouse import WarehouseError, budget_path, configured_path, connect

if TYPE_CHECKING:
    from halo_pipeline.halo import HaloClient

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


def signing_key() -> KeyRing:
    """The signing key, or the one-line error that says what to run."""
    try:
        return load_keyring()
    except SigningKeyError as error:
        raise click.ClickException(f"{error} Nothing was recorded.") from None


@contextmanager
def halo_directory(warehouse: str) -> Iterator[HaloClient]:
    """HaloITSM as the HALO_* variables name it, for reading who people are; its requests
    count against the budget every process beside this warehouse shares."""
    from halo_pipeline.halo import HaloClient  # with httpx: only commands that ask HaloITSM

    try:
        with HaloClient(HaloSettings.load(budget_path=budget_path(warehouse))) as client:
            yield client
    except HaloError as error:
        raise click.ClickException(f"{error} Nothing was recorded.") from None


@contextmanager
def signer(warehouse: str) -> Iterator[tuple[KeyRing, HaloClient]]:
    """The signing key, and HaloITSM to read who decides: a file that is not our warehouse is
    refused before either is looked for."""
    reading(warehouse, lambda con: None)
    ring = signing_key()
    with halo_directory(warehouse) as halo:
        yield ring, halo


def confirmation(yes: bool) -> Callable[[str], bool]:
    """Show what would be signed; sign it when the person says so (or `--yes` said so)."""

    def confirm(shown: str) -> bool:
        click.echo(shown)
        return yes or click.confirm("Sign this?", default=False)

    return confirm


yes_option = click.option(
    "--yes", is_flag=True, help="Sign without asking, after printing what is signed (scripts)."
)


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
