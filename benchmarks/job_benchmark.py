"""What Dagster costs on top of the work it wraps: `halo_sync_job` run with `dagster job execute`
against the simulator, and the same sync and model build in plain Python, each a fresh process.

    .venv/bin/python benchmarks/job_benchmark.py [--agents 250 10000] [--repeat 3]

Both sides start a new Python process and import `halo_pipeline.definitions` (the plain side
too, so the definitions' import is counted on both), sync the simulator into a new warehouse,
build every model and run every column test of schema.yml. The simulator runs in its own
process.

The Dagster runs of one agents count share one instance (DAGSTER_HOME), as a deployment's runs
do: a new instance creates and migrates its SQLite storage once, which no later run pays. That
first run, on the new instance, is timed on its own and printed as the cold-instance run; the
`repeat` runs after it give the median that is compared with the plain side. Each run, on
either side, writes a new warehouse. Prints both medians with their ratio, each run's time (the
machine may be busy: read the spread), the median CPU seconds each side used (its processes and
theirs; less moved by other work on the machine than the wall times), the cold-instance run, and
the number of steps the job ran. Target: at most 2.5x at 250 agents, in wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from halo_pipeline.simulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

PROJECT = Path(__file__).resolve().parents[1]
PLAIN = """
import halo_pipeline.definitions  # the same import the Dagster side pays
from halo_pipeline.halo import HaloClient, HaloSettings
from halo_pipeline.sql_models.project import build_models, load_project
from halo_pipeline.sync import sync_halo
from halo_pipeline.warehouse import configured_path, connect

with HaloClient(HaloSettings.load()) as client:
    sync_halo(client, lambda: connect(configured_path()))
project = load_project()
with connect(configured_path()) as con:
    build_models(con, project)
    for test in project.column_tests():
        con.execute(*test.failing_rows_sql()).fetchall()
"""


def start_simulator(agents: int) -> tuple[subprocess.Popen, str]:
    teams, roles = (12, 8) if agents <= 1000 else (200, 40)
    process = subprocess.Popen(
        [sys.executable, "-m", "halo_pipeline.cli", "simulator", "--port", "0",
         "--agents", str(agents), "--teams", str(teams), "--roles", str(roles)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.search(r"HALO_BASE_URL=(\S+)", line):
            return process, match.group(1)
    raise RuntimeError("the simulator did not start")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user and system, the process and its children) and stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed:\n{done.stderr[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, done.stderr


def measure(agents: int, repeat: int) -> None:
    simulator, url = start_simulator(agents)
    dagster_s, plain_s, dagster_cpu, plain_cpu, run_ids = [], [], [], [], []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "dagster_home"
            home.mkdir()
            (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
            env = {
                **os.environ,
                "HALO_BASE_URL": url,
                "HALO_CLIENT_ID": DEMO_CLIENT_ID,
                "HALO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
                # The simulator has no rate limit: the budget would only measure itself.
                "HALO_MAX_REQUESTS_PER_5_MIN": "1000000",
                "DAGSTER_HOME": str(home),
            }

            def dagster_run(name: str) -> tuple[float, float]:
                elapsed, cpu, log = timed(
                    [sys.executable, "-m", "dagster", "job", "execute", "-m",
                     "halo_pipeline.definitions", "-j", "halo_sync_job"],
                    {**env, "HALO_DUCKDB_PATH": str(Path(tmp) / f"{name}.duckdb")},
                )  # fmt: skip
                run_ids.append(re.search(r"halo_sync_job - ([0-9a-f-]{36}) - ", log).group(1))
                return elapsed, cpu

            cold, _ = dagster_run("cold")
            for run in range(repeat):
                elapsed, cpu = dagster_run(f"dagster{run}")
                dagster_s.append(elapsed)
                dagster_cpu.append(cpu)
                elapsed, cpu, _ = timed(
                    [sys.executable, "-c", PLAIN],
                    {**env, "HALO_DUCKDB_PATH": str(Path(tmp) / f"plain{run}.duckdb")},
                )
                plain_s.append(elapsed)
                plain_cpu.append(cpu)
            steps = succeeded_steps(home, run_ids)
    finally:
        simulator.terminate()
        simulator.wait()
    dagster, plain = statistics.median(dagster_s), statistics.median(plain_s)
    cpu = statistics.median(dagster_cpu), statistics.median(plain_cpu)
    print(f"\n{agents} agents ({repeat} runs each, medians; each run in brackets)")
    print(f"  dagster job execute -j halo_sync_job  {dagster:6.2f} s  {_runs(dagster_s)}")
    print(f"  plain Python, same work               {plain:6.2f} s  {_runs(plain_s)}")
    print(f"  ratio                                 {dagster / plain:6.2f}x")
    print(
        f"  CPU seconds, dagster and plain        {cpu[0]:6.2f} s, {cpu[1]:.2f} s  "
        f"({cpu[0] / cpu[1]:.2f}x)"
    )
    print(
        f"  cold instance: the first run          {cold:6.2f} s  "
        f"({cold / plain:.2f}x; new DAGSTER_HOME, storage created)"
    )
    print(f"  steps per run                         {sorted(steps)}")


def succeeded_steps(home: Path, run_ids: list[str]) -> set[int]:
    """The steps each run finished, from the instance's event log. Not counted in the runs'
    console output: Dagster mirrors it through `tail -F`, which may lose the last lines."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {
            len(instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS))
            for run_id in run_ids
        }


def _runs(seconds: list[float]) -> str:
    return "[" + " ".join(f"{s:.2f}" for s in seconds) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[250, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for agents in args.agents:
        measure(agents, args.repeat)


if __name__ == "__main__":
    main()
