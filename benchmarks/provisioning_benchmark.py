"""Apply 200 access requests spread over 50 agents, with a ticket each, and print the cost.

    .venv/bin/python benchmarks/provisioning_benchmark.py [--agents 50 --per-agent 4
                                                           --latency-ms 30]

The simulator runs in its own process with 30 ms of latency per request. Every agent gets
requests that all need a change (roles granted and revoked, a team joined). The minimum is one
read, one write and one verifying read per agent, and per request the ticket's create and close
(an action), plus the token and the ticket statuses; then the targeted sync that brings the
agents into the warehouse, as provisioning_job runs it: roles, teams, ticket types and a read
per agent. The simulator has no rate limit, so the client's budget is lifted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from sync_benchmark import start_simulator

from halo_pipeline.halo import HaloClient, HaloSettings
from halo_pipeline.provisioning.filing import file_membership
from halo_pipeline.provisioning.runner import Provisioner
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.simulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from halo_pipeline.sql_models.project import build_models, load_project
from halo_pipeline.sync import sync_halo
from halo_pipeline.warehouse import connect


def file_requests(path: Path, agents: int, per_agent: int) -> int:
    """For agents 2.. : revoke a role held, grant roles not held, join a team not joined."""
    filed = 0
    with connect(path) as con:
        roles = [
            r for (r,) in con.execute("SELECT name FROM halo.roles ORDER BY role_int_id").fetchall()
        ]
        teams = [
            t
            for (t,) in con.execute(
                "SELECT team_id FROM halo.teams WHERE NOT is_inactive ORDER BY 1"
            ).fetchall()
        ]
        for agent_id in range(2, 2 + agents):
            held = {r for (r,) in con.execute(
                "SELECT r.name FROM halo.agent_roles JOIN halo.roles AS r USING (role_id) "
                "WHERE agent_id = ?",
                [agent_id],
            ).fetchall()}  # fmt: skip
            joined = {t for (t,) in con.execute(
                "SELECT team_id FROM halo.agent_teams WHERE agent_id = ?", [agent_id]
            ).fetchall()}  # fmt: skip
            asks = [("revoke", sorted(held)[0], None)] if held else []
            asks.append(("grant", None, str(next(t for t in teams if t not in joined))))
            asks += [("grant", r, None) for r in roles if r not in held][: per_agent - len(asks)]
            for action, role, team in asks:
                file_membership(
                    con, action, agent=str(agent_id), role=role, team=team, reason="benchmark",
                    requested_by="benchmark",
                )  # fmt: skip
                filed += 1
    return filed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--per-agent", type=int, default=4)
    parser.add_argument("--latency-ms", type=int, default=30)
    args = parser.parse_args()
    simulator_args = argparse.Namespace(agents=1000, teams=50, roles=20, latency_ms=args.latency_ms)
    process, url = start_simulator(simulator_args)
    try:
        settings = HaloSettings(
            base_url=url,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            max_requests_per_5_min=1_000_000,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "warehouse.duckdb"
            with HaloClient(settings) as client:
                sync_halo(client, lambda: connect(path))
            with connect(path) as con:
                build_models(con, load_project())
            requests = file_requests(path, args.agents, args.per_agent)
            provisioning = ProvisioningSettings(provisioning=True, ticketing=True)
            with HaloClient(settings) as client:
                started = time.perf_counter()
                summary = Provisioner(client, lambda: connect(path), provisioning).run()
                refresh = sync_halo(
                    client, lambda: connect(path), agent_ids=sorted(summary.touched_agents)
                )
                with connect(path) as con:
                    build_models(con, load_project())
                seconds = time.perf_counter() - started
                used = client.request_count
                by_endpoint = dict(client.http.requests_by_endpoint)
    finally:
        process.terminate()
        process.wait()

    minimum = 1 + 1 + args.agents * 3 + requests * 2 + 3 + args.agents
    print(
        f"{requests} requests over {args.agents} agents, tickets on, {args.latency_ms} ms latency"
    )
    print(f"  outcomes              {dict(Counter(summary.outcomes.values()))}")
    print(f"  HaloITSM requests     {used} (minimum {minimum})")
    print(f"  minimum               1 token + 1 statuses + {args.agents} agents x (read + write "
          f"+ verify) + {requests} requests x (ticket create + close) + targeted sync (3 lists "
          f"+ {args.agents} agents)")  # fmt: skip
    print(f"  by endpoint           {by_endpoint}")
    print(
        f"  wall time             {seconds:.1f} s ({seconds / requests * 1000:.0f} ms per request)"
    )
    print(f"  targeted sync         {refresh.sync_id} ({len(summary.touched_agents)} agents)")


if __name__ == "__main__":
    main()
