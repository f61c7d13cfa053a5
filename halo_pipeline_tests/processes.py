"""Real processes for the tests that need them: headless Dagster runs, and killing them with
SIGKILL at a chosen request, as `kill -9` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import psutil
from dagster._core.instance.ref import InstanceRef

from halo_pipeline.warehouse.locks import HOLDER, writer_lock

PROJECT = Path(__file__).resolve().parents[1]


def dagster_env(halo_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a headless run: the HALO_* variables and a DAGSTER_HOME of its own
    with the project's dagster.yaml, its storage made once here: processes that make it at the
    same moment (runs started together, the test's own look at the runs) can race in SQLite's
    schema stamps ("alembic_version has more than one head")."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    env = {**os.environ, **halo_env, "DAGSTER_HOME": str(home), **extra}
    with instance_at(env):
        pass
    return env


def execute(job: str) -> list[str]:
    """`dagster job execute`: a run without the daemon, as the README shows."""
    return [sys.executable, "-m", "dagster", "job", "execute", "-m", "halo_pipeline.definitions",
            "-j", job]  # fmt: skip


def next_run(job: str, env: dict[str, str], monkeypatch) -> dg.ExecuteInProcessResult:
    """The run that comes after a killed one, on the same instance and warehouse, in this
    process: what it does with the dead run is the code under test, not another process start
    (the killed run is the real headless process)."""
    from halo_pipeline.definitions import build_definitions

    for name, value in env.items():
        if name.startswith("HALO_") or name == "DAGSTER_HOME":
            monkeypatch.setenv(name, value)
    with instance_at(env) as instance:
        return (
            build_definitions()
            .resolve_job_def(job)
            .execute_in_process(instance=instance, raise_on_error=False)
        )


@contextmanager
def instance_at(env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"])) as instance:
        yield instance


def kill(pid: int, *, children: bool = True) -> list[int]:
    """SIGKILL the process (and, unless told otherwise, its children, as when a machine's
    out-of-memory killer takes the tree) and wait for it; the pids of the children it had."""
    process = psutil.Process(pid)
    ours = process.ppid() == os.getpid()
    kids = process.children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    if children:
        for kid in kids:
            with suppress(psutil.NoSuchProcess):  # one that ended with its parent
                kid.kill()
    # A child of this process is left for its Popen to reap: waiting here would take its status.
    psutil.wait_procs([*([] if ours else [process]), *(kids if children else [])], timeout=30)
    return [kid.pid for kid in kids]


@contextmanager
def running(command: list[str], **popen: object) -> Iterator[subprocess.Popen]:
    """A process that must not outlive the test: if it is still running when the block ends
    (an assertion failed, a timeout), it is killed with everything it started."""
    process = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    try:
        yield process
    finally:
        if process.poll() is None:
            kill(process.pid)
            process.wait()


@contextmanager
def started(
    command: list[str], *, log: Path, stop: int = signal.SIGINT, **popen: object
) -> Iterator[subprocess.Popen]:
    """A server (`halo-pipeline dev`, the simulator) in a session of its own, its output in
    `log`. However the block ends (a failure, a timeout), it is sent `stop` (Ctrl-C by
    default) and given `STOP_GRACE_S`; then it and every process it started are killed."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )  # type: ignore[call-overload]
    try:
        yield process
    finally:
        end(process, stop)


STOP_GRACE_S = 60


def end(process: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    """Signal the process, wait for it, then kill whatever it started that is still there."""
    tree: list[psutil.Process] = []
    with suppress(psutil.NoSuchProcess):
        tree = psutil.Process(process.pid).children(recursive=True)
    with suppress(ProcessLookupError):
        if sig == signal.SIGINT:
            os.killpg(process.pid, sig)  # as Ctrl-C in its terminal: the whole group
        else:
            process.send_signal(sig)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _, alive = psutil.wait_procs(tree, timeout=5)
    for left in alive:
        with suppress(psutil.NoSuchProcess):
            left.kill()


class KillOn:
    """WSGI middleware: on the `nth` `method` request to `path`, calls `kill` (which kills the
    process under test) before answering it 500. With `lands`, the request reaches the
    simulator first, so the write is made but its sender never learns. With `answer`, `kill`
    did something else (took a lock) and the request is answered as usual."""

    def __init__(
        self, app, method: str, path: str, nth: int = 1, *, lands: bool = False,
        answer: bool = False,
    ) -> None:  # fmt: skip
        self.app, self.method, self.path, self.nth = app, method, path, nth
        self.lands, self.answer = lands, answer
        self.seen = 0
        self.kill: Callable[[], object] | None = None

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) == (self.method, self.path):
            self.seen += 1
            if self.seen == self.nth and self.kill is not None:
                if self.lands:
                    list(self.app(environ, lambda *args: None))
                self.kill()
                if not self.answer:
                    start_response("500 Internal Server Error", [("Content-Length", "0")])
                    return [b""]
        return self.app(environ, start_response)


def take_writer_lock(path: Path, released: threading.Event) -> None:
    """Take the warehouse's writer lock in a thread of this process until `released`, as a
    writer named "the crash test"; return once it is held."""
    taken = threading.Event()

    def hold() -> None:
        HOLDER.set("the crash test")
        with writer_lock(path, wait_s=10):
            taken.set()
            released.wait(60)

    threading.Thread(target=hold, daemon=True).start()
    taken.wait(10)
