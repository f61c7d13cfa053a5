"""One writer at a time, by a lock the operating system drops with its holder.

A writer holds an exclusive lock on `<warehouse>.writer.lock` while its connection is open and
writes who it is beside it (`<warehouse>.writer`), so one that waits can say for whom. A process
killed with `kill -9` holds nothing: the next writer goes ahead at once, and nothing waits on a
slot that only a daemon could free.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from halo_pipeline.warehouse.errors import WarehouseBusyError

HOLDER: ContextVar[str] = ContextVar(
    "HOLDER", default=f"{Path(sys.argv[0]).name or 'python'} (pid {os.getpid()})"
)
"""Who this process is, as a waiting writer is told: the Dagster wiring names its run."""

_POLL_S = 5.0


def holder_of(path: str | Path) -> str:
    """Who holds (or last held) the writer lock of this warehouse, in words."""
    try:
        info = json.loads(Path(f"{path}.writer").read_text(encoding="utf-8"))
        since = datetime.fromisoformat(info["since"]).astimezone(UTC)
        return f"{info['holder']} (pid {info['pid']}, since {since:%H:%M:%S} UTC)"
    except (OSError, ValueError, KeyError):  # none, or one being written
        return "another process"


@contextmanager
def writer_lock(
    path: str | Path, wait_s: float, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the warehouse's writer lock, waiting at most `wait_s` seconds for it and calling
    `on_wait` with who holds it every few seconds of the wait."""
    lock = FileLock(f"{path}.writer.lock")
    started = time.monotonic()
    while True:
        left = wait_s - (time.monotonic() - started)
        try:
            lock.acquire(timeout=max(0.0, min(_POLL_S, left)))
            break
        except Timeout:
            holder = holder_of(path)
            if left <= _POLL_S:
                raise WarehouseBusyError(
                    f"The warehouse {path} is being written by {holder}; gave up after "
                    f"{time.monotonic() - started:.0f}s. Try again when it finishes."
                ) from None
            if on_wait:
                on_wait(f"Waiting for the warehouse: {holder} is writing it.")
    outermost = lock.lock_counter == 1
    try:
        if outermost:  # the outermost hold says who holds it
            Path(f"{path}.writer").write_text(
                json.dumps(
                    {
                        "holder": HOLDER.get(),
                        "pid": os.getpid(),
                        "since": datetime.now(UTC).isoformat(),
                    }
                ),
                encoding="utf-8",
            )
        yield
    finally:
        if outermost:
            Path(f"{path}.writer").unlink(missing_ok=True)
        lock.release()


@contextmanager
def applier_lock(path: str | Path | None) -> Iterator[str | None]:
    """The one place at a time for applying requests to this warehouse, whoever starts the run
    (a sensor, a schedule, `dagster job execute`, `dg launch`: headless runs bypass Dagster's
    run queue). Yields None while holding it, or who holds it (and then this run applies
    nothing); the operating system releases it with its holder, so a killed run blocks
    nothing. No path (an in-memory or MotherDuck warehouse): Dagster's `duckdb` pool alone."""
    if path is None or str(path).startswith("md:") or str(path) == ":memory:":
        yield None
        return
    lock = FileLock(f"{path}.applier.lock")
    about = Path(f"{path}.applier")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield _describe(about)
        return
    try:
        about.write_text(
            json.dumps({"holder": HOLDER.get(), "pid": os.getpid(),
                        "since": datetime.now(UTC).isoformat()}),
            encoding="utf-8",
        )  # fmt: skip
        yield None
    finally:
        about.unlink(missing_ok=True)
        lock.release()


def _describe(about: Path) -> str:
    try:
        info = json.loads(about.read_text(encoding="utf-8"))
        since = datetime.fromisoformat(info["since"]).astimezone(UTC)
        return f"{info['holder']} (pid {info['pid']}, since {since:%H:%M:%S} UTC)"
    except (OSError, ValueError, KeyError):  # none, or one being written
        return "another run"
