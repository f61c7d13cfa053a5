"""The `halo-pipeline` command."""

from __future__ import annotations

import os
from pathlib import Path

import click

from halo_pipeline.simulator.cli import simulator_command

# Dagster's console logger defaults to DEBUG, which buries the demo's own output.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@click.group()
def main() -> None:
    """Access governance for HaloITSM on Dagster and DuckDB."""


main.add_command(simulator_command)


@main.command()
@click.option(
    "--warehouse",
    default=lambda: os.environ.get("HALO_DUCKDB_PATH", "data/warehouse.duckdb"),
    show_default="HALO_DUCKDB_PATH or data/warehouse.duckdb",
    help="DuckDB file to write.",
)
def demo(warehouse: str) -> None:
    """Sync the bundled HaloITSM simulator into the warehouse with halo_sync_job."""
    from dagster import DagsterInstance

    from halo_pipeline.local import prepare_dagster_home, simulated_halo
    from halo_pipeline.warehouse import connect

    home = prepare_dagster_home()
    with simulated_halo() as (_, env):
        os.environ.update(env, HALO_DUCKDB_PATH=warehouse)
        click.echo(f"HaloITSM simulator at {env['HALO_BASE_URL']}; Dagster home {home}")
        # Imported only now: the definitions read HALO_* when they are built.
        from halo_pipeline.definitions import defs

        result = defs.get_job_def("halo_sync_job").execute_in_process(
            instance=DagsterInstance.get(), raise_on_error=False, run_config=QUIET
        )
    if not result.success:
        raise click.ClickException("halo_sync_job failed; its log is above.")
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
    click.echo(f"\nSync {sync_id} wrote {Path(warehouse)} using {requests} API requests:")
    for table, count in counts.items():
        click.echo(f"  {table:<36} {count:>6} rows")
    click.echo('\nAsk it questions: halo-pipeline query "SELECT * FROM access.admin_agents"')
    click.echo("\nSee the assets, their lineage and this run in the Dagster UI: make dev")


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--warehouse",
    default=lambda: os.environ.get("HALO_DUCKDB_PATH", "data/warehouse.duckdb"),
    show_default="HALO_DUCKDB_PATH or data/warehouse.duckdb",
)
@click.option(
    "--wait",
    default=120.0,
    show_default=True,
    help="Seconds to wait while a sync or provisioning run holds the warehouse.",
)
def query(sql: str, output_format: str, warehouse: str, wait: float) -> None:
    """Run a read-only SQL query against the warehouse and print the result."""
    import duckdb

    from halo_pipeline.query_output import render
    from halo_pipeline.warehouse import WarehouseError, connect

    def waiting(seconds: float) -> None:
        click.echo(
            f"The warehouse is busy (a sync or provisioning run is writing); "
            f"retrying in {seconds:.1f}s",
            err=True,
        )

    try:
        with connect(warehouse, read_only=True, wait_s=wait, on_wait=waiting) as con:
            cursor = con.execute(sql)
            columns = [column[0] for column in cursor.description or ()]
            rows = cursor.fetchall()
    except WarehouseError as error:
        raise click.ClickException(str(error)) from None
    except duckdb.Error as error:
        raise click.ClickException(str(error)) from None
    click.echo(render(columns, rows, output_format), nl=False)


@main.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--host", default="127.0.0.1", show_default=True)
def dev(port: int, host: str) -> None:
    """Start the Dagster UI and daemon (`dagster dev`), with the simulator unless HALO_BASE_URL
    is set in the environment or `.env`. Ctrl-C stops everything."""
    import subprocess
    import sys
    from contextlib import nullcontext

    from halo_pipeline.local import prepare_dagster_home, real_halo_configured, simulated_halo

    home = prepare_dagster_home()
    use_simulator = not real_halo_configured()
    with simulated_halo() if use_simulator else nullcontext((None, {})) as (_, env):
        if use_simulator:
            click.echo(
                f"HaloITSM simulator at {env['HALO_BASE_URL']} "
                "(set HALO_BASE_URL to use a real instance)"
            )
        click.echo(f"Dagster UI at http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it.")
        command = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            host,
            "-p",
            str(port),
        ]
        process = subprocess.Popen(command, env={**os.environ, **env})
        try:
            process.wait()
        except KeyboardInterrupt:
            # dagster dev got the same Ctrl-C and shuts its webserver and daemon down itself.
            process.wait()


if __name__ == "__main__":
    main()
