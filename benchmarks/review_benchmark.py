"""A review campaign over every grant of a large HaloITSM, step by step, and what each cost.

    .venv/bin/python benchmarks/review_benchmark.py [--agents 10000]

The simulator's directory (about 4.9 grants per agent with its defaults) is synced and
modelled in a child process first, not timed. Then, in this process, as the commands run them
(the same functions, a warehouse connection each): a campaign over every grant with one named
reviewer, an agent who holds nothing (`start`); that reviewer's CSV (`export`); the CSV filled
in, every other grant revoked, and imported whole (`import`); the close, a revoke request per
revoke (`close`); and the evidence pack (`report`). Peak memory is this process's largest
resident set. Goals: every step under 5 s and peak memory under 400 MB on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from halo_pipeline.halo import HaloClient, HaloSettings
from halo_pipeline.requests.identities import Person
from halo_pipeline.requests.signing import init_keyring
from halo_pipeline.reviews.campaigns import start
from halo_pipeline.reviews.decisions import close, import_decisions
from halo_pipeline.reviews.exports import export
from halo_pipeline.reviews.report import write_report
from halo_pipeline.simulator import Simulator, SimulatorConfig, generate_dataset
from halo_pipeline.sql_models.project import PROJECT_MODELS_DIR, build_models, load_project
from halo_pipeline.sync import sync_halo
from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.migrations import warehouse_id

T = TypeVar("T")
REVIEWER = ("Rae Reviewer", "reviewer@example.com")
CLOSER = ("Lee Lead", "lead@example.com")


def prepare(path: Path, agents: int) -> dict[str, int]:
    """The warehouse of one sync and model build; the reviewer's and closer's agent ids."""
    sim = Simulator(generate_dataset(agents=agents), SimulatorConfig())
    ids = {email: sim.add_agent(name, email) for name, email in (REVIEWER, CLOSER)}
    config = sim.config
    settings = HaloSettings(base_url="http://halo.test", client_id=config.client_id,
                            client_secret=config.client_secret,
                            max_requests_per_5_min=1_000_000)  # fmt: skip
    with HaloClient(settings, transport=httpx.WSGITransport(app=sim.app)) as client:
        sync_halo(client, lambda: connect(path))
    with connect(path) as con:
        build_models(con, load_project(PROJECT_MODELS_DIR))
    return ids


def _prepared(path: Path, agents: int, ids: dict) -> None:
    ids.update(prepare(path, agents))


def timed(step: str, work: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = work()
    print(f"{step} {time.perf_counter() - started:.1f} s", flush=True)
    return result


def revoke_every_other(sheet: Path) -> int:
    """What the reviewer does in a spreadsheet: every other grant revoked, the rest kept."""
    with sheet.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    for n, row in enumerate(rows):
        row["decision"] = "revoke" if n % 2 else "keep"
        row["note"] = "left the team" if n % 2 else ""
    with sheet.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "warehouse.duckdb"
        # The sync's memory is not the review's: it runs in a process of its own.
        with multiprocessing.Manager() as manager:
            shared = manager.dict()
            child = multiprocessing.Process(target=_prepared, args=(path, args.agents, shared))
            child.start()
            child.join()
            if child.exitcode:
                raise SystemExit("the sync failed")
            ids = dict(shared)
        with connect(path) as con:
            ring = init_keyring(warehouse_id(con), folder / "halo-signing.key")
            [(grants,)] = con.execute("SELECT count(*) FROM access.grants").fetchall()
        reviewer = Person(ids[REVIEWER[1]], REVIEWER[0], REVIEWER[1])
        closer = Person(ids[CLOSER[1]], CLOSER[0], CLOSER[1])
        print(f"{args.agents} agents, {grants} grants", flush=True)

        def step(name: str, act: Callable) -> object:
            def work() -> object:
                with connect(path) as con:
                    return act(con)

            return timed(name, work)

        step("start", lambda con: start(con, "all", "all", None, reviewer.email))
        sheet = folder / "review.csv"
        step("export", lambda con: export(con, "all", "csv", reviewer.email, sheet))
        decided = revoke_every_other(sheet)
        step("import", lambda con: import_decisions(con, ring, "all", sheet, reviewer))
        closed = step("close", lambda con: close(con, ring, "all", closer, False))
        step("report", lambda con: write_report(con, "all", folder / "evidence", False, ring))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory {peak_mb:.0f} MB")
        print(f"({decided} decisions, {len(closed.revokes)} revoke requests)")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
