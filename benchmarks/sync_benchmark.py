"""Sync 10,000 agents / 200 teams / 40 roles from the simulator and print what it cost.

    .venv/bin/python benchmarks/sync_benchmark.py [--agents 10000 --teams 200 --roles 40
                                                   --latency-ms 30]

The simulator runs in its own process (as a real HaloITSM would), so the peak memory printed
is the pipeline's: the client, the snapshot and the DuckDB load. Three cases: Halo's documented
list rows (teams in the rows, roles read per role after one request proving the role filter),
rows that also carry roles, and rows without either (memberships per role and per team).
Targets: the minimum requests when rows carry everything, minimum + 1 + roles with Halo's
rows, minimum + 1 + roles + teams without memberships; fetch + load under 10 s. The simulator
has no rate limit here, so the client's budget is lifted: the figures are the pipeline's.
"""

from __future__ import annotations

import argparse
import math
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from halo_pipeline.halo import HaloClient, HaloSettings, fetch_snapshot
from halo_pipeline.simulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.halo_tables import record_sync_start, replace_halo_tables

CASES = {
    "documented": ("Halo's documented agent rows: teams in the rows, roles per role", ()),
    "detailed": ("agent rows carry roles and teams", ("--agent-rows", "detailed")),
    "omitted": (
        "agent rows omit roles and teams (memberships per role and per team)",
        ("--omit-memberships",),
    ),
}


def start_simulator(args: argparse.Namespace, *extra: str) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable, "-m", "halo_pipeline.cli", "simulator", "--port", "0",
        "--agents", str(args.agents), "--teams", str(args.teams), "--roles", str(args.roles),
        "--latency-ms", str(args.latency_ms), *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(r"HALO_BASE_URL=(\S+)", line)
        if match:
            return process, match.group(1)
    raise RuntimeError("the simulator did not start")


def run_case(args: argparse.Namespace, label: str, *switches: str) -> None:
    process, url = start_simulator(args, *switches)
    try:
        settings = HaloSettings(
            base_url=url,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            max_requests_per_5_min=1_000_000,
        )
        with HaloClient(settings) as client:
            started = time.perf_counter()
            snapshot = fetch_snapshot(client)
            fetch_s = time.perf_counter() - started
            requests = client.request_count
            by_endpoint = dict(client.http.requests_by_endpoint)
    finally:
        process.terminate()
        process.wait()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        started = time.perf_counter()
        with connect(path) as con:
            sync_id = record_sync_start(con, dagster_run_id=None, source_url=url)
            counts = replace_halo_tables(
                con, snapshot, sync_id=sync_id, synced_at=datetime.now(UTC), api_requests=requests
            )
        load_s = time.perf_counter() - started

    minimum = 1 + math.ceil(args.agents / 100) + 3
    print(f"\n{label}")
    print(f"  rows            {counts}")
    print(f"  requests        {requests} (minimum {minimum}; + proof + roles "
          f"{minimum + 1 + args.roles}; + proof + roles + teams "
          f"{minimum + 1 + args.roles + args.teams})")  # fmt: skip
    print(f"  by endpoint     {by_endpoint}")
    print(f"  fetch           {fetch_s:6.2f} s")
    print(f"  load (DuckDB)   {load_s:6.2f} s")
    print(f"  fetch + load    {fetch_s + load_s:6.2f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory     {peak_mb:6.0f} MB (this process so far: client, snapshot, DuckDB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--roles", type=int, default=40)
    parser.add_argument("--latency-ms", type=int, default=30)
    parser.add_argument(
        "--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES), help="[default: all]"
    )
    args = parser.parse_args()
    print(
        f"{args.agents} agents, {args.teams} teams, {args.roles} roles; "
        f"{args.latency_ms} ms latency per request; simulator in its own process"
    )
    for case in args.cases:
        label, switches = CASES[case]
        run_case(args, label, *switches)


if __name__ == "__main__":
    main()
