"""Connection discipline for the DuckDB warehouse file.

DuckDB lets one process write a file at a time, and a reader cannot open it while another
process writes. So connections are opened only around the SQL that needs them and always
closed, and opening waits (with backoff, bounded) while another process holds the lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import duckdb
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from halo_pipeline.environment import FromEnvironment
from halo_pipeline.warehouse.errors import WarehouseBusyError, WarehouseError
from halo_pipeline.warehouse.locks import holder_of, writer_lock
from halo_pipeline.warehouse.migrations import is_current, migrate, refuse_foreign
from halo_pipeline.warehouse.registry import SCHEMAS

DEFAULT_PATH = "data/warehouse.duckdb"
# DuckDB names the catalog after the file: `halo.duckdb` would make `halo.agents` ambiguous.
_RESERVED_STEMS = {*SCHEMAS, "main", "temp", "system", "information_schema", "pg_catalog"}


# DuckDB fetches and loads extensions on its own when a statement needs one (a SQLite file, a
# URL): a warehouse connection never downloads or runs code it was not shipped with.
NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

OpenWarehouse = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
"""How the plain layers get a connection: open it for one block of work, closed after."""


class WarehouseSettings(FromEnvironment):
    duckdb_path: str = DEFAULT_PATH
    """HALO_DUCKDB_PATH: the warehouse file."""


def configured_path() -> str:
    """HALO_DUCKDB_PATH, or the default when it is unset or empty."""
    return WarehouseSettings.load().duckdb_path


def budget_path(warehouse: str | Path) -> str:
    """The file of the HaloITSM request budget that every process of this installation shares:
    beside the warehouse, never inside it (readers need the warehouse free of writers)."""
    if str(warehouse).startswith("md:") or str(warehouse) == ":memory:":
        return str(Path(DEFAULT_PATH).with_name("halo-request-budget.sqlite"))
    path = Path(warehouse)
    return str(path.with_name(f"{path.stem}.halo-budget.sqlite"))


def check_path(path: str | Path) -> None:
    if str(path).startswith("md:") or str(path) == ":memory:":
        return
    stem = Path(path).stem.lower()
    if stem in _RESERVED_STEMS:
        raise WarehouseError(
            f"HALO_DUCKDB_PATH={path!s}: DuckDB names the catalog after the file, so "
            f"'{stem}.duckdb' makes '{stem}.<table>' ambiguous with the schema '{stem}'. "
            "Use another file name, such as data/warehouse.duckdb."
        )


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    wait_s: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
    config: dict[str, Any] | None = None,
    create: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse that is closed however the block ends. A writer holds the
    writer lock while it is open (`locks.writer_lock`) and first brings the warehouse's tables
    up to this release (`migrations.migrate`).

    While another process holds the file, wait for up to `wait_s` seconds (0: fail at once),
    calling `on_wait` with why, so callers can tell a person. Only writers with `create` make a
    missing file: a mistyped path is an error, not a new, empty warehouse.
    """
    check_path(path)
    local = not str(path).startswith("md:") and str(path) != ":memory:"
    if local:
        _check_file(Path(path), must_exist=read_only or not create)
    if local and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(path, wait_s, on_wait) if local and not read_only else nullcontext():
        con, release = _open(path, read_only, wait_s, on_wait, config or {})
        failed = True
        try:
            if not is_current(con, read_only):
                # Before anything is created or migrated: a DuckDB file of someone else's is
                # left exactly as it was.
                refuse_foreign(con, path)
                if not read_only:
                    migrate(con)
            yield con
            failed = False
        except duckdb.IOException as error:
            # A file cut short opens, then fails where a read runs past its end.
            raise _damaged(path, error) from None
        finally:
            try:
                release()
            except duckdb.IOException as error:
                # Closing checkpoints the log into the file, which can fail where the file
                # was cut short. The block's own error, if any, says more.
                if not failed:
                    raise _damaged(path, error) from None


def _check_file(path: Path, must_exist: bool) -> None:
    if _SHARED.header(path).startswith(b"SQLite format 3"):
        raise WarehouseError(
            f"{path} is a SQLite database, not a DuckDB warehouse: point HALO_DUCKDB_PATH at "
            "the warehouse, or at a new file such as data/warehouse.duckdb."
        )
    if path.is_dir():
        raise WarehouseError(
            f"HALO_DUCKDB_PATH={path} is a directory, not a warehouse file: point it at a file "
            "such as data/warehouse.duckdb."
        )
    if must_exist and not path.exists():
        raise WarehouseError(
            f"No warehouse at {path} yet: run halo_sync_job first (for example `make demo`)."
        )


def _open(
    path: str | Path,
    read_only: bool,
    wait_s: float,
    on_wait: Callable[[str], None] | None,
    config: dict[str, Any],
) -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]]:
    """A connection and what closes it: retried while another process has the file open for
    writing (a reader cannot open it then), and a file that is no warehouse said in one line.

    A local file without options of its own is attached to the process's shared instance
    (`_SHARED`); the rest get an instance of their own, as `duckdb.connect` makes one."""

    def before_sleep(state: RetryCallState) -> None:
        if on_wait and state.next_action:
            on_wait(
                f"The warehouse is open for writing by {holder_of(path)}; "
                f"retrying in {state.next_action.sleep:.1f}s."
            )

    def busy(state: RetryCallState) -> NoReturn:
        raise WarehouseBusyError(
            f"The warehouse {path} is being written by {holder_of(path)}; gave up after "
            f"{state.seconds_since_start or 0:.0f}s. Try again when it finishes."
        )

    retrying = Retrying(
        retry=retry_if_exception(is_lock_conflict),
        stop=stop_after_delay(wait_s),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
        before_sleep=before_sleep,
        retry_error_callback=busy,
    )

    def attempt() -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]]:
        shared = None if config else _SHARED.attach(path, read_only)
        if shared is not None:
            return shared
        con = duckdb.connect(str(path), read_only=read_only, config={**config, **NO_EXTENSIONS})
        return con, con.close

    try:
        return retrying(attempt)
    except duckdb.IOException as error:
        raise _damaged(path, error) from None


@dataclass
class _Attachment:
    instance: duckdb.DuckDBPyConnection
    alias: str
    read_only: bool
    users: int = 0


class _SharedInstance:
    """One in-memory DuckDB instance per process, to which the warehouse file is attached for
    each block of work and detached (its lock dropped, its log checkpointed into the file)
    when the last block using it ends.

    Opening a DuckDB database builds its catalog of built-in functions, about 20 ms of CPU;
    attaching a file to an instance already open takes 3-5 ms. Blocks of work are many (a
    provisioning run opens the warehouse around each step, so that other processes can write
    between), and each paid the 20 ms. Blocks open at once in one process share the
    attachment, as `duckdb.connect` shares an instance between them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instance: duckdb.DuckDBPyConnection | None = None
        self._attached: dict[Path, _Attachment] = {}
        # Never closed: one inherited by a forked child (closing it there would checkpoint
        # files that the parent still writes), or one a file failed to leave.
        self._retired: list[duckdb.DuckDBPyConnection] = []
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()  # a parent's thread may have held it at the fork
        if self._instance is not None:
            self._retired.append(self._instance)
        self._instance, self._attached = None, {}

    def attach(
        self, path: str | Path, read_only: bool
    ) -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]] | None:
        """A cursor on the attached file and what releases it; None when the file cannot be
        attached under its own name (another file of that name is attached, or the name is
        one of the instance's own catalogs, as `memory.duckdb` is)."""
        key = Path(path).resolve()
        with self._lock:
            instance = self._current()
            held = self._attached.get(key)
            if held is None:
                alias = key.stem
                taken = {"memory", "system", "temp"} | {a.alias for a in self._attached.values()}
                if alias in taken:  # the instance's own catalogs, or another file's name
                    return None
                # The file's stem names it, as `duckdb.connect` names its catalog. An alias
                # is an identifier, which SQL parameters cannot carry.
                mode = " (READ_ONLY)" if read_only else ""
                instance.execute(f"ATTACH ? AS {_identifier(alias)}{mode}", [str(path)])
                held = self._attached[key] = _Attachment(instance, alias, read_only)
            elif held.read_only and not read_only:
                raise duckdb.ConnectionException(
                    f"{path} is open read-only in this process: it cannot be written until "
                    "that connection is closed."
                )
            held.users += 1
            cursor = held.instance.cursor()
        try:
            cursor.execute(f"USE {_identifier(held.alias)}")
        except BaseException:
            self._release(key, cursor)
            raise
        return cursor, lambda: self._release(key, cursor)

    def header(self, path: Path) -> bytes:
        """The file's first bytes; none while this process has it attached. Reading them
        then would cost the process its lock on the file: the operating system drops a
        process's locks on a file when the process closes any descriptor of it."""
        with self._lock:
            if not path.is_file() or path.resolve() in self._attached:
                return b""
            try:
                with path.open("rb") as file:
                    return file.read(16)
            except OSError:  # unreadable: opening it says why
                return b""

    def _current(self) -> duckdb.DuckDBPyConnection:
        if self._instance is None:
            self._instance = duckdb.connect(":memory:", config=NO_EXTENSIONS)
        return self._instance

    def _release(self, key: Path, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.close()
        with self._lock:
            held = self._attached[key]
            held.users -= 1
            if held.users == 0:
                del self._attached[key]
                try:
                    held.instance.execute(f"DETACH {_identifier(held.alias)}")
                except duckdb.Error:
                    if held.alias in _names(held.instance) and held.instance is self._instance:
                        # Still attached after a failure: later blocks get a new instance.
                        self._retired.append(held.instance)
                        self._instance = None
                    raise


def _names(instance: duckdb.DuckDBPyConnection) -> set[str]:
    names = instance.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    return {name for (name,) in names}


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_SHARED = _SharedInstance()


def _damaged(path: str | Path, error: duckdb.IOException) -> WarehouseError:
    said = str(error)
    # A failed checkpoint (closing a file cut short) says first that it failed, then why.
    why = said.partition("Original error: ")[2] or said
    first = why.splitlines()[0].removeprefix("IO Error: ")
    return WarehouseError(
        f"{path} is not a DuckDB warehouse, or it is damaged ({first}). Point "
        "HALO_DUCKDB_PATH at the warehouse, or move this file away to start a new one."
    )
