"""Build the access models for 10,000 agents, then measure history after 100 syncs.

    .venv/bin/python benchmarks/models_benchmark.py [--agents 10000 --syncs 100 --churn 0.01]

Part 1 syncs a simulated directory of 10,000 agents (about 3 roles and 2 teams each) and times
building every model in dbt_like_sql/. Part 2 runs 100 more syncs through the real loader, each
changing 1% of grants (half removed, half added), and compares access.grant_history with the
initial grants plus the changes. Targets: all models under 5 s; history within 2x.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from halo_pipeline.halo import HaloClient, HaloSettings, fetch_snapshot
from halo_pipeline.halo.snapshot import HaloSnapshot
from halo_pipeline.simulator import Simulator, generate_dataset
from halo_pipeline.sql_models.project import build_model, load_project
from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.halo_tables import record_sync_start, replace_halo_tables


def load(path: Path, snapshot: HaloSnapshot) -> float:
    started = time.perf_counter()
    with connect(path) as con:
        sync_id = record_sync_start(con, dagster_run_id=None, source_url="benchmark")
        replace_halo_tables(
            con, snapshot, sync_id=sync_id, synced_at=datetime.now(UTC), api_requests=0
        )
    return time.perf_counter() - started


def build_all(path: Path) -> tuple[float, dict[str, float]]:
    project = load_project()
    timings = {}
    with connect(path) as con:
        for model in project.models:
            started = time.perf_counter()
            build_model(con, model)
            timings[model.name] = time.perf_counter() - started
    return sum(timings.values()), timings


def churn(snapshot: HaloSnapshot, share: float, rng: random.Random) -> tuple[HaloSnapshot, int]:
    """The snapshot with `share` of its grants changed: half removed, as many new ones added."""
    # Memberships carry their flags after (agent_id, team_id): a new one has them unknown.
    roles, teams = set(snapshot.agent_roles), {row[:2]: row for row in snapshot.agent_teams}
    changes = int((len(roles) + len(teams)) * share)
    removed_roles = set(rng.sample(sorted(roles), changes // 2 * 6 // 10))
    removed_teams = set(rng.sample(sorted(teams), changes // 2 - len(removed_roles)))
    flags = (None,) * (len(snapshot.agent_teams[0]) - 2) if snapshot.agent_teams else ()
    agent_ids = [agent.id for agent in snapshot.agents]
    added_roles: set[tuple[int, str]] = set()
    added_teams: set[tuple[int, int]] = set()
    while len(added_roles) + len(added_teams) < changes - changes // 2:
        agent = rng.choice(agent_ids)
        if rng.random() < 0.6:
            grant = (agent, rng.choice(snapshot.roles).id)
            if grant not in roles:
                added_roles.add(grant)
        else:
            team_grant = (agent, rng.choice(snapshot.teams).id)
            if team_grant not in teams:
                added_teams.add(team_grant)
    new = dataclasses.replace(
        snapshot,
        agent_roles=sorted((roles - removed_roles) | added_roles),
        agent_teams=sorted(
            [row for key, row in teams.items() if key not in removed_teams]
            + [(*key, *flags) for key in added_teams]
        ),
    )
    return new, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--roles", type=int, default=40)
    parser.add_argument("--syncs", type=int, default=100)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()

    sim = Simulator(generate_dataset(agents=args.agents, teams=args.teams, roles=args.roles))
    settings = HaloSettings(
        base_url="http://halo.test", client_id=sim.config.client_id,
        client_secret=sim.config.client_secret,
    )  # fmt: skip
    with HaloClient(settings, transport=sim.transport()) as client:
        snapshot = fetch_snapshot(client)
    initial = len(snapshot.agent_roles) + len(snapshot.agent_teams)
    print(
        f"{len(snapshot.agents)} agents, {len(snapshot.roles)} roles, {len(snapshot.teams)} teams; "
        f"{len(snapshot.agent_roles)} role grants ({len(snapshot.agent_roles) / args.agents:.2f} "
        f"per agent), {len(snapshot.agent_teams)} team grants "
        f"({len(snapshot.agent_teams) / args.agents:.2f} per agent)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        load(path, snapshot)
        total, timings = build_all(path)
        print(f"\nall {len(timings)} models built in {total:.2f} s (target < 5 s)")
        for name, seconds in sorted(timings.items(), key=lambda item: -item[1]):
            print(f"  {name:<30} {seconds:6.3f} s")

        rng = random.Random(1)
        changes, load_seconds = 0, 0.0
        for _ in range(args.syncs):
            snapshot, changed = churn(snapshot, args.churn, rng)
            changes += changed
            load_seconds += load(path, snapshot)
        total, _ = build_all(path)
        with connect(path, read_only=True) as con:
            [(history, current, changed_rows)] = con.execute(
                "SELECT (SELECT count(*) FROM access.grant_history), "
                "(SELECT count(*) FROM access.grants), "
                "(SELECT count(*) FROM access.grant_changes)"
            ).fetchall()
        size_mb = path.stat().st_size / 2**20
    print(f"\n{args.syncs} more syncs, {args.churn:.0%} of grants changing per sync")
    print(f"  load per sync (replace + history)   {load_seconds / args.syncs:6.3f} s")
    print(f"  grant changes applied               {changes}")
    print(f"  access.grant_changes rows           {changed_rows}")
    print(f"  access.grant_history rows           {history}")
    print(f"  initial grants + changes            {initial + changes}")
    print(
        f"  ratio                               {history / (initial + changes):.2f} (target <= 2)"
    )
    print(f"  current grants                      {current}")
    print(f"  models rebuilt in                   {total:.2f} s")
    print(f"  warehouse file                      {size_mb:.1f} MB")


if __name__ == "__main__":
    main()
