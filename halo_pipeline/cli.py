"""The `halo-pipeline` command."""

from __future__ import annotations

from importlib import import_module

import click

from halo_pipeline.warehouse import configured_path

LAZY = {
    "simulator": "halo_pipeline.simulator.cli:simulator_command",
    "request": "halo_pipeline.provisioning.cli:request_group",
    "approve": "halo_pipeline.policy.cli:approve_command",
    "deny": "halo_pipeline.policy.cli:deny_command",
    "policy": "halo_pipeline.policy.cli:policy_group",
    "review": "halo_pipeline.reviews.cli:review_group",
    "key": "halo_pipeline.requests.cli:key_group",
}
"""Commands whose modules load only when they run: `halo-pipeline query` need not import the
simulator, the reviews' templates or the policy (click's documented lazy group)."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY:
            module, name = LAZY[cmd_name].split(":")
            return getattr(import_module(module), name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
def main() -> None:
    """Access governance for HaloITSM on Dagster and DuckDB. The HALO_* variables are read from
    the environment and, over it, the `.env` here, as `dagster dev` reads them."""


@main.command()
@click.option(
    "--warehouse",
    show_default="HALO_DUCKDB_PATH or data/warehouse.duckdb",
    help="DuckDB file to write.",
)
def demo(warehouse: str | None) -> None:
    """Sync the bundled HaloITSM simulator into the warehouse, then file a few access
    requests and apply them with provisioning_job, a ticket for each. A `.env` is not read:
    the demo brings its own HaloITSM, and must not write into the warehouse `.env` names."""
    from halo_pipeline import environment
    from halo_pipeline.demo import run_demo

    environment.ENV_FILE = None
    run_demo(warehouse or configured_path())


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
    default=configured_path,
    show_default="HALO_DUCKDB_PATH or data/warehouse.duckdb",
)
@click.option(
    "--wait",
    default=120.0,
    show_default=True,
    help="Seconds to wait while a sync or provisioning run holds the warehouse.",
)
def query(sql: str, output_format: str, warehouse: str, wait: float) -> None:
    """Run a read-only SQL query against the warehouse and print the result. Only reading
    statements run, and nothing outside the warehouse can be read or written."""
    from halo_pipeline.query import QueryRefused, run_query
    from halo_pipeline.query_output import render
    from halo_pipeline.warehouse import WarehouseError

    try:
        columns, rows = run_query(
            warehouse, sql, wait, on_wait=lambda why: click.echo(why, err=True)
        )
    except (QueryRefused, WarehouseError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(render(columns, rows, output_format), nl=False)


@main.command()
@click.option(
    "--warehouse",
    default=configured_path,
    show_default="HALO_DUCKDB_PATH or data/warehouse.duckdb",
    help="The warehouse whose request budget (a file beside it) the reads count against, and "
    "whose past runs say whether HaloITSM refused a ticket.",
)
def doctor(warehouse: str) -> None:
    """Read a token, an agent page, an agent, roles, teams, ticket types and statuses from the
    HaloITSM the HALO_* variables name, and the request tickets and their approvals when
    HALO_REQUEST_TICKET_TYPE is set; print what it speaks and what to set. Writes nothing.
    Exits 1 when something needs setting."""
    from pathlib import Path

    from halo_pipeline.doctor import diagnose, render
    from halo_pipeline.halo import HaloClient, HaloError, HaloSettings
    from halo_pipeline.provisioning.settings import ProvisioningSettings, SettingsError
    from halo_pipeline.warehouse import budget_path

    try:
        settings = HaloSettings.load(budget_path=budget_path(warehouse))
        provisioning = ProvisioningSettings.load()
        click.echo(f"HaloITSM at {settings.base_url} (client id {settings.client_id})")
        with HaloClient(settings) as client:
            findings = diagnose(client, provisioning, Path(warehouse))
            requests = client.request_count
    except (HaloError, SettingsError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(render(findings))
    to_fix = [finding for finding in findings if finding.advice]
    click.echo(f"{requests} requests, none of them writes. ", nl=False)
    if to_fix:
        click.echo(f"{len(to_fix)} thing(s) to set or check: see the arrows above.")
        raise SystemExit(1)
    click.echo("Nothing to change: run halo_sync_job.")


@main.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--host", default="127.0.0.1", show_default=True)
def dev(port: int, host: str) -> None:
    """Start the Dagster UI and daemon (`dagster dev`), with the simulator unless HALO_BASE_URL
    is set in the environment or `.env`. Ctrl-C stops everything."""
    from halo_pipeline.local import run_dev

    run_dev(host, port)


if __name__ == "__main__":
    main()
