"""One request budget for every process of an installation: a SQLite file beside the warehouse
that the schedule's runs, the sensor's runs and the command line all draw on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from halo_pipeline.simulator import Simulator
from halo_pipeline.warehouse import budget_path

# Each process: a token and five role lists, six requests, as fast as its budget lets it.
SIX_REQUESTS = """
import sys
from halo_pipeline.halo import HaloClient, HaloSettings
settings = HaloSettings(
    base_url=sys.argv[1], client_id=sys.argv[2], client_secret=sys.argv[3],
    max_requests_per_5_min=6, budget_window_s=2.0, budget_path=sys.argv[4] or None,
)
with HaloClient(settings) as client:
    for _ in range(5):
        client.list_roles()
"""


def run_two_processes(sim: Simulator, url: str, budgets: list[str]) -> float:
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SIX_REQUESTS,
                url,
                sim.config.client_id,
                sim.config.client_secret,
                budget,
            ],
        )  # fmt: skip
        for budget in budgets
    ]
    try:
        assert [process.wait(timeout=60) for process in processes] == [0, 0]
    finally:
        for process in processes:
            process.kill()  # a no-op for one that ended
    return time.monotonic() - started


def test_processes_sharing_the_budget_file_stay_inside_it_together(sim, tmp_path):
    shared = budget_path(tmp_path / "warehouse.duckdb")
    assert shared == str(tmp_path / "warehouse.halo-budget.sqlite")
    with sim.serve() as url:
        together = run_two_processes(sim, url, [shared, shared])
        sim.reset_counts()
        apart = run_two_processes(sim, url, ["", ""])

    # Twelve requests on a budget of six per two seconds: the second six wait for the window.
    assert together >= 2.0
    # Each process alone fits its six in its own budget at once (start-up aside).
    assert apart < together
    assert Path(shared).exists()
