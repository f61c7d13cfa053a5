"""The shared-deployment configuration in deploy/: a Dagster instance stored in a real
PostgreSQL server (Debian's package, a throwaway cluster started here) runs both jobs, and
every dagster.yaml in deploy/ loads."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from dagster._cli import cli as dagster_cli

from halo_pipeline.definitions import build_definitions
from halo_pipeline_tests.helpers import free_port, grant, query

PROJECT = Path(__file__).resolve().parents[1]
POSTGRES_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A PostgreSQL cluster of its own on a free loopback port; the DAGSTER_PG_* variables."""
    if not POSTGRES_BIN:
        pytest.skip("PostgreSQL is not installed: run scripts/install-system-deps.sh")
    bin_dir = Path(POSTGRES_BIN[-1])
    # Not under pytest's tmp_path, whose parents only root may enter.
    root = Path(tempfile.mkdtemp(prefix="halo-postgres-"))
    # PostgreSQL refuses to run as root: as root, run it as Debian's `postgres` user.
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_owner, *command], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "dagster", "--auth=trust", "-E", "UTF8")
    run(
        str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
    )  # fmt: skip
    try:
        run(
            str(bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "dagster",
            "dagster",
        )
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        }
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def dagster_home(tmp_path: Path, config: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(config, home / "dagster.yaml")
    return home


@pytest.mark.parametrize(
    ("config", "launcher"),
    [
        ("deploy/dagster.yaml", "DefaultRunLauncher"),
        ("deploy/docker/dagster.yaml", "DockerRunLauncher"),
    ],
)
def test_deploy_configs_load(postgres, tmp_path, monkeypatch, config, launcher):
    home = dagster_home(tmp_path, PROJECT / config)

    for name, value in {**postgres, "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    # `dagster instance info`, as an operator types it, run in this process.
    info = CliRunner().invoke(dagster_cli, ["instance", "info"])

    assert info.exit_code == 0, info.output[-3000:]
    assert "run_storage: PostgresRunStorage" in info.output
    assert f"class: {launcher}" in info.output
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        pools = instance.get_concurrency_config().pool_config
        assert (pools.default_pool_limit, pools.pool_granularity.value) == (1, "run")


def test_both_jobs_run_on_an_instance_stored_in_postgres(
    postgres, halo_env, tmp_path, warehouse_path, sim, monkeypatch
):
    home = dagster_home(tmp_path, PROJECT / "deploy" / "dagster.yaml")
    for name, value in {**postgres, "DAGSTER_HOME": str(home), "HALO_PROVISIONING": "true"}.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions()

    def execute(job: str) -> bool:
        """The job's run on the instance the deployment's dagster.yaml describes (in this
        process: the storage is what is shown)."""
        with dg.DagsterInstance.from_config(str(home)) as instance:
            return (
                defs.resolve_job_def(job)
                .execute_in_process(instance=instance, raise_on_error=False)
                .success
            )

    assert execute("halo_sync_job")
    request = grant(warehouse_path, "9", role="Read Only")
    assert execute("provisioning_job")

    assert query(
        warehouse_path, "SELECT status FROM provisioning.requests WHERE request_id = ?", [request]
    ) == [("applied",)]
    assert [role["name"] for role in sim.get_agent(9)["roles"]] == ["Read Only"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = sorted((run.job_name, run.status.value) for run in instance.get_runs())
        # The sync, provisioning, and the targeted sync provisioning ran for agent 9.
        assert runs == [
            ("halo_sync_job", "SUCCESS"), ("halo_sync_job", "SUCCESS"),
            ("provisioning_job", "SUCCESS"),
        ]  # fmt: skip
        # The pool limit of deploy/dagster.yaml is in force on this instance.
        assert instance.event_log_storage.get_concurrency_info("duckdb").limit == 1
