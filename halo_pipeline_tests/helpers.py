"""Small helpers the tests share."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from halo_pipeline.halo import HaloClient, HaloSettings
from halo_pipeline.halo.models import MEMBERSHIP_FLAGS, Agent, AgentRecord
from halo_pipeline.halo.snapshot import snapshot_of
from halo_pipeline.provisioning import refresh
from halo_pipeline.provisioning.context import RunSummary
from halo_pipeline.provisioning.filing import file_membership
from halo_pipeline.provisioning.runner import Provisioner
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.signing import keyring_or_none
from halo_pipeline.simulator import Simulator
from halo_pipeline.sql_models.project import PROJECT_MODELS_DIR, build_models, load_project
from halo_pipeline.sync import SyncResult, sync_halo
from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.halo_tables import record_sync_start, replace_agents


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of a read-only query against a warehouse file."""
    with connect(path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def halo_client(
    sim: Simulator,
    app: Any = None,
    sleep: Callable[[float], None] = lambda seconds: None,
    **overrides: Any,
) -> HaloClient:
    """A client talking to the simulator (or `app`, a WSGI app wrapping it) in-process, whose
    retries do not wait (`sleep` sees what they would have waited), with these settings."""
    settings = HaloSettings(
        base_url="http://halo.test",
        client_id=sim.config.client_id,
        client_secret=sim.config.client_secret,
        **overrides,
    )
    transport = httpx.WSGITransport(app=app or sim.app)
    return HaloClient(settings, transport=transport, sleep=sleep)


def expected_memberships(sim: Simulator) -> tuple[list, list]:
    """(agent_id, role GUID) and (agent_id, team_id, *flags) as HaloITSM holds them."""
    details = {agent_id: sim.get_agent(agent_id) for agent_id in sim.agent_ids()}
    roles = sorted((a, role["id"]) for a, agent in details.items() for role in agent["roles"])
    teams = sorted(
        (a, team["team_id"], *(team[flag] for flag in MEMBERSHIP_FLAGS))
        for a, agent in details.items()
        for team in agent["teams"]
        if team["in_section"]
    )
    return roles, teams


def sync(sim: Simulator, path: Path, **settings: Any) -> SyncResult:
    """One sync of the simulator into `path`, in-process, as halo_sync_job runs it."""
    with halo_client(sim, **settings) as client:
        return sync_halo(client, lambda: connect(path))


def targeted_sync(sim: Simulator, path: Path, agents: list[Agent]) -> int:
    """A targeted sync of these agents as given (read back, or read without some of their
    memberships), with the simulator's roles, teams and ticket types."""
    with halo_client(sim) as client:
        snapshot = snapshot_of(
            [AgentRecord.of(agent) for agent in agents],
            client.list_roles(), client.list_teams(), client.list_ticket_types(),
        )  # fmt: skip
    with connect(path) as con:
        sync_id = record_sync_start(
            con, dagster_run_id=None, source_url="http://halo.test", kind="targeted"
        )
        replace_agents(
            con, snapshot, agent_ids=[agent.id for agent in agents], sync_id=sync_id,
            synced_at=datetime.now(UTC), api_requests=0,
        )  # fmt: skip
    return sync_id


def synced_copy(template: Path, path: Path) -> Path:
    """`path` as a copy of `template`, a warehouse `sync` and `build_access` made once for many
    tests (a sync and a build cost a test ten times the copy), with an id of its own, as
    every new warehouse has."""
    shutil.copyfile(template, path)
    with connect(path) as con:
        con.execute("UPDATE main.meta SET warehouse_id = ?", [str(uuid.uuid4())])
    return path


def build_access(path: Path, sql_dir: Path = PROJECT_MODELS_DIR) -> None:
    """Every model of `sql_dir`, in dependency order, as halo_sync_job builds them."""
    with connect(path) as con:
        build_models(con, load_project(sql_dir))


def access_tables(path: Path) -> dict[str, list[tuple]]:
    """The sorted contents of every table and view in `access`."""
    with connect(path, read_only=True) as con:
        names = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'access'"
        ).fetchall()
        return {
            name: con.execute(f'SELECT * FROM access."{name}" ORDER BY ALL').fetchall()
            for (name,) in names
        }


def provision(sim: Simulator, path: Path, app: Any = None, **settings: Any) -> RunSummary:
    """One provisioning run against the simulator (or `app`, a WSGI app wrapping it),
    in-process, without waiting between reads or retries, then the targeted sync and model
    rebuild of the agents it touched, as provisioning_job runs them."""
    settings.setdefault("verify_interval_s", 0)
    with halo_client(sim, app) as client:
        provisioner = Provisioner(
            client, lambda: connect(path), ProvisioningSettings(**settings),
            warehouse_path=path, ring=keyring_or_none(),
        )  # fmt: skip
        try:
            return provisioner.run()
        finally:
            if provisioner.summary.refresh_due:
                touched = sorted(provisioner.summary.touched_agents)
                started = datetime.now(UTC)
                sync_halo(client, lambda: connect(path), agent_ids=touched)
                build_access(path)
                with connect(path) as con:
                    refresh.paid(con, touched, started)


def posts(sim: Simulator) -> int:
    """Writes the simulator received (token requests aside)."""
    return sum(
        count
        for (method, route), count in sim.request_counts.items()
        if method == "POST" and route != "/auth/token"
    )


def grant(
    path: Path, agent: str, role: str | None = None, team: str | None = None, action: str = "grant"
) -> int:
    with connect(path) as con:
        return file_membership(
            con,
            action,
            agent=agent,
            role=role,
            team=team,
            reason="on call",
            requested_by="ana@example.com",
        ).request_id


def ticket_tag(path: Path, request_id: int) -> str:
    """The tag a request's ticket summary starts with: this warehouse's queue id and the id."""
    [(queue_id,)] = query(path, "SELECT queue_id FROM provisioning.queue_info")
    return f"[halo-pipeline {queue_id}#{request_id}]"


MANUAL = "team:4:member"


def set_ticket_status(sim: Simulator, ticket_id: int, status_id: int) -> None:
    """What a person does in HaloITSM's UI."""
    with halo_client(sim) as client:
        client.save_ticket({"id": ticket_id, "status_id": status_id})


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("UPDATE halo.agents SET name = name")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def free_port() -> int:
    """A loopback port free now and likely still free when a server binds it seconds later.

    Not one the kernel hands out by itself (`bind(0)`, the local end of every outgoing
    connection): `dagster dev`'s webserver binds some 20 s after the pick, and on a busy
    machine a connection made meanwhile took the port (uvicorn then logs "address already in
    use" and the UI never comes up). So the pick is below the ephemeral range."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_for(what: str, check: Callable[[], bool], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(
        f"timed out waiting for {what}; dagster dev said:\n{log.read_text()[-4000:]}"
    )


PROJECT = Path(__file__).resolve().parents[1]


def project_copy(directory: Path) -> Path:
    """The project as `dg dev` sees it, in `directory`: its configuration copied, its code and
    models linked. A developer's .env stays out, so nothing reaches their HaloITSM."""
    for name in ("pyproject.toml", "workspace.yaml", "dagster.yaml", "access_policy.yml"):
        (directory / name).write_text((PROJECT / name).read_text())
    for name in ("halo_pipeline", "dbt_like_sql"):
        (directory / name).symlink_to(PROJECT / name)
    return directory


def md_rows(markdown: str) -> list[list[str]]:
    """The cells of a markdown table's body rows (the metadata previews and test reports)."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()[2:]
    ]
