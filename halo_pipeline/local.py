"""Running the pipeline on one machine against the bundled simulator: `make demo`, `make dev`.

The simulator plays a HaloITSM instance on a loopback port; the `HALO_*` variables point at it
and the Dagster instance lives in `.dagster_home/` inside the project, so the runs of
`make demo` show up in the UI that `make dev` opens.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import click

from halo_pipeline.simulator import Simulator, SimulatorConfig, generate_dataset

DAGSTER_HOME = Path(".dagster_home")
DEMO_AGENTS, DEMO_TEAMS, DEMO_ROLES = 250, 12, 8
CONNECTION_VARIABLES = (
    "HALO_BASE_URL", "HALO_AUTH_URL", "HALO_TENANT", "HALO_CLIENT_ID", "HALO_CLIENT_SECRET",
    "HALO_SCOPE",
)  # fmt: skip
# Dagster's console logger defaults to DEBUG, which buries the demo's own output.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def prepare_dagster_home(project_dir: Path = Path()) -> Path:
    """The Dagster instance directory: `$DAGSTER_HOME` if set, else `.dagster_home/` in the
    project. The project's own directory always gets the project's dagster.yaml; one the user
    chose gets it only if it has none, so their instance settings are never overwritten."""
    chosen = os.environ.get("DAGSTER_HOME")
    home = Path(chosen or project_dir / DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    project_yaml = project_dir / "dagster.yaml"
    if project_yaml.exists() and not (chosen and (home / "dagster.yaml").exists()):
        shutil.copyfile(project_yaml, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@contextmanager
def simulated_halo(port: int = 0) -> Iterator[tuple[Simulator, dict[str, str]]]:
    """A running simulator and the `HALO_*` variables that point at it."""
    config = SimulatorConfig()
    simulator = Simulator(
        generate_dataset(agents=DEMO_AGENTS, teams=DEMO_TEAMS, roles=DEMO_ROLES), config
    )
    with simulator.serve("127.0.0.1", port) as url:
        # Every connection variable, the optional ones blank, so none set for a real
        # HaloITSM (an auth URL, a tenant) sends the simulator's credentials elsewhere.
        yield (
            simulator,
            {
                **dict.fromkeys(CONNECTION_VARIABLES, ""),
                "HALO_BASE_URL": url,
                "HALO_CLIENT_ID": config.client_id,
                "HALO_CLIENT_SECRET": config.client_secret,
            },
        )


def real_halo_configured(project_dir: Path = Path()) -> bool:
    """True when HALO_BASE_URL is set in the environment or in the project's `.env`.

    Without it `make dev` uses the simulator, and refuses a `.env` that sets other connection
    variables: `dagster dev` applies `.env` over its environment, so they would reach the
    code location in place of the simulator's.
    """
    from dotenv import dotenv_values

    dotenv = dotenv_values(project_dir / ".env")
    if os.environ.get("HALO_BASE_URL") or dotenv.get("HALO_BASE_URL"):
        return True
    clashing = [name for name in CONNECTION_VARIABLES if name in dotenv]
    if clashing:
        raise click.ClickException(
            f".env sets {', '.join(clashing)} but not HALO_BASE_URL. Set HALO_BASE_URL there to "
            "use your HaloITSM, or remove those lines to use the simulator."
        )
    return False


def run_demo(warehouse: str) -> None:
    """What `make demo` does: sync the simulator, file requests, provision them with tickets."""
    from dagster import DagsterInstance

    home = prepare_dagster_home()
    with simulated_halo() as (_, env):
        os.environ.update(
            env, HALO_DUCKDB_PATH=warehouse, HALO_PROVISIONING="true", HALO_TICKETING="true"
        )
        click.echo(f"HaloITSM simulator at {env['HALO_BASE_URL']}; Dagster home {home}")
        # Imported only now: the definitions read HALO_* when they are built.
        from halo_pipeline.definitions import defs

        instance = DagsterInstance.get()
        sync = defs.resolve_job_def("halo_sync_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET
        )
        if not sync.success:
            raise click.ClickException("halo_sync_job failed; its log is above.")
        _print_tables(warehouse)
        filed = _file_demo_requests(warehouse)
        provisioning = defs.resolve_job_def("provisioning_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET
        )
        if not provisioning.success:
            raise click.ClickException("provisioning_job failed; its log is above.")
    _print_outcomes(warehouse, filed)
    click.echo('\nAsk it questions: halo-pipeline query "SELECT * FROM access.admin_agents"')
    click.echo("See the assets, their lineage and these runs in the Dagster UI: make dev")


def _print_tables(warehouse: str) -> None:
    from halo_pipeline.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        [(sync_id, requests)] = con.execute(
            "SELECT sync_id, api_requests FROM halo.sync_runs "
            "WHERE status = 'succeeded' ORDER BY sync_id DESC LIMIT 1"
        ).fetchall()
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('halo', 'access') ORDER BY table_schema DESC, table_name"
        ).fetchall()
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for (t,) in tables}
    click.echo(f"\nSync {sync_id} wrote {warehouse} using {requests} API requests:")
    for table, count in counts.items():
        click.echo(f"  {table:<36} {count:>6} rows")


def _file_demo_requests(warehouse: str) -> list[int]:
    """A grant, a revoke, a team add, one the CLI refuses and one bad one filed with SQL."""
    from halo_pipeline.provisioning.filing import file_membership
    from halo_pipeline.provisioning.rules import RequestRefused
    from halo_pipeline.warehouse import connect

    asks = [
        ("grant", "agent9@example.com", "Change Manager", None),
        ("revoke", "2", "Administrator", None),
        ("grant", "10", None, "2nd Line Support"),
        ("grant", "nobody@example.com", "Agent", None),
    ]
    click.echo("\nFiling access requests (as `halo-pipeline request` does):")
    filed = []
    with connect(warehouse) as con:
        for action, agent, role, team in asks:
            try:
                request = file_membership(
                    con, action, agent=agent, role=role, team=team,
                    reason="make demo", requested_by="demo@example.com",
                )  # fmt: skip
            except RequestRefused as refused:
                click.echo(f"  refused: {refused}")
                continue
            click.echo(f"  request {request.request_id}: {request.description}")
            filed.append(request.request_id)
        [(bad,)] = con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by) VALUES ('grant', 'team:999:member', 9, 'make demo', 'demo@example.com') "
            "RETURNING request_id"
        ).fetchall()
        click.echo(f"  request {bad}: filed with SQL for a team that does not exist")
    return [*filed, bad]


def _print_outcomes(warehouse: str, request_ids: list[int]) -> None:
    from halo_pipeline.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT request_id, status, ticket_id, coalesce(error, '') FROM provisioning.requests "
            "WHERE list_contains(?, request_id) ORDER BY request_id",
            [request_ids],
        ).fetchall()
    click.echo("\nprovisioning_job (HALO_PROVISIONING=true, HALO_TICKETING=true):")
    for request_id, status, ticket_id, error in rows:
        ticket = f"ticket {ticket_id}" if ticket_id else "no ticket"
        click.echo(f"  request {request_id}: {status:<17} {ticket:<12} {error}".rstrip())


def run_dev(host: str, port: int) -> None:
    """What `make dev` does: `dg dev` (Dagster's webserver and daemon, for the `dg` project in
    pyproject.toml) with the simulator (unless a real HaloITSM is configured) and the project's
    Dagster instance, until Ctrl-C or SIGTERM."""
    home = prepare_dagster_home()
    use_simulator = not real_halo_configured()
    with simulated_halo() if use_simulator else nullcontext((None, {})) as (_, env):
        if use_simulator:
            click.echo(
                f"HaloITSM simulator at {env['HALO_BASE_URL']} "
                "(set HALO_BASE_URL to use a real instance)"
            )
        click.echo(f"Dagster UI at http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it.")
        # The dg beside this interpreter: the project's environment, activated or not.
        dg = Path(sys.executable).with_name("dg")
        command = [str(dg), "dev", "-h", host, "-p", str(port)]
        process = subprocess.Popen(command, env={**os.environ, **env})
        # `kill` or a service manager signals this process alone: pass it on as the Ctrl-C
        # that makes dg dev stop its webserver and daemon.
        signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGINT))
        try:
            process.wait()
        except KeyboardInterrupt:
            # A Ctrl-C in the terminal reached dg dev too; let it finish shutting down.
            process.wait()
