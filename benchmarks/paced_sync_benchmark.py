"""The request budget as the clock: syncs against a simulator that enforces Halo's rate limit.

    .venv/bin/python benchmarks/paced_sync_benchmark.py [--agents 2000 --teams 500 --roles 40
                                                         --window-s 10]

The simulator limits requests as the one public report describes Halo doing: 300 per rolling
window, past that a 429 with no Retry-After. The client spends its default budget, 270 per
window. The window is shortened from five minutes to `--window-s` on both sides, so that a run
takes seconds instead of hours while the budget, not the CPU, sets the pace: a sync of N
requests cannot end sooner than ceil(N/270 - 1) windows (the floor), since 270 go at once and
each later 270 wait a window. For each case it prints the requests N (the token's included), the
429s met (goal: 0), the wall time and the floor (goal: within 10% of it). Cases: Halo's
documented rows (teams in the rows; roles per role, after the request proving the `role`
filter), and rows without memberships (members per role and per team), which at 500 teams
spend about two windows.
"""

from __future__ import annotations

import argparse
import math
import time

from sync_benchmark import start_simulator

from halo_pipeline.halo import HaloClient, HaloSettings, fetch_snapshot
from halo_pipeline.simulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

HALO_LIMIT, BUDGET = 300, 270
CASES = {
    "documented": ("Halo's documented rows: teams in the rows, roles per role", ()),
    "omitted": ("rows without memberships: members per role and per team",
                ("--omit-memberships",)),
}  # fmt: skip


def run_case(args: argparse.Namespace, label: str, *switches: str) -> None:
    limit = ("--rate-limit", str(HALO_LIMIT), "--rate-window-s", str(args.window_s))
    process, url = start_simulator(args, *limit, *switches)
    try:
        settings = HaloSettings(
            base_url=url,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            max_requests_per_5_min=BUDGET,
            budget_window_s=args.window_s,
        )
        with HaloClient(settings) as client:
            started = time.perf_counter()
            snapshot = fetch_snapshot(client)
            wall_s = time.perf_counter() - started
            requests, met = client.request_count, len(client.http.rate_limited)
    finally:
        process.terminate()
        process.wait()

    windows = max(0, math.ceil(requests / BUDGET - 1))
    floor_s = windows * args.window_s
    print(f"\n{label}")
    print(f"  agents read     {len(snapshot.agents)}")
    print(f"  requests        {requests}")
    print(f"  429s met        {met}")
    print(f"  wall time       {wall_s:6.2f} s")
    over = f" ({wall_s / floor_s - 1:+.0%})" if floor_s else ""
    print(f"  floor           {floor_s:6.2f} s ({windows} windows of {args.window_s:g} s){over}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2_000)
    parser.add_argument("--teams", type=int, default=500)
    parser.add_argument("--roles", type=int, default=40)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument(
        "--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES), help="[default: all]"
    )
    args = parser.parse_args()
    args.latency_ms = 0
    print(
        f"{args.agents} agents, {args.teams} teams, {args.roles} roles; Halo's limit "
        f"{HALO_LIMIT} and the budget {BUDGET} per {args.window_s:g} s window (5 minutes, scaled)"
    )
    for case in args.cases:
        label, switches = CASES[case]
        run_case(args, label, *switches)


if __name__ == "__main__":
    main()
