"""`halo-pipeline simulator`: serve a simulated HaloITSM until Ctrl-C."""

import threading

import click

from halo_pipeline.simulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimulatorConfig
from halo_pipeline.simulator.dataset import generate_dataset
from halo_pipeline.simulator.simulator import Simulator


@click.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, help="0 picks a free port.")
@click.option("--seed", default=7, show_default=True, help="Seed of the generated directory.")
@click.option("--agents", default=40, show_default=True)
@click.option("--teams", default=6, show_default=True)
@click.option("--roles", default=5, show_default=True)
@click.option("--latency-ms", default=0, show_default=True, help="Delay added to every request.")
@click.option("--rate-limit", type=int, help="Requests allowed per rolling window. [default: off]")
@click.option(
    "--rate-window-s",
    default=300.0,
    show_default=True,
    help="Length of the rolling rate-limit window, in seconds.",
)
@click.option(
    "--retry-after/--no-retry-after",
    default=False,
    show_default=True,
    help="Send Retry-After with 429 answers.",
)
@click.option(
    "--error-rate",
    default=0.0,
    show_default=True,
    help="Share of API requests answered with a 500 or 503.",
)
@click.option("--token-lifetime", default=3600, show_default=True, help="Seconds.")
@click.option(
    "--agent-paging",
    type=click.Choice(["results", "agents", "bare", "legacy"]),
    default="results",
    show_default=True,
    help="Paged agent lists as {results: [...]}, as {agents: [...]}, as a bare array, "
    "or not paged at all.",
)
@click.option("--no-record-count", is_flag=True, help="Leave record_count out of agent pages.")
@click.option("--max-page-size", default=100, show_default=True)
@click.option(
    "--past-last-page",
    type=click.Choice(["empty", "last"]),
    default="empty",
    show_default=True,
    help="Answer agent pages past the end empty, or with the last page again.",
)
@click.option(
    "--agent-rows",
    type=click.Choice(["openapi", "detailed"]),
    default="openapi",
    show_default=True,
    help="Agent list rows as Halo's OpenAPI model (role_list only), or also with is_admin, "
    "department and roles.",
)
@click.option(
    "--omit-memberships", is_flag=True, help="Agent list rows without roles, teams or role_list."
)
@click.option("--ignore-role-filter", is_flag=True, help="Answer every agent to ?role=.")
@click.option("--ignore-team-filter", is_flag=True, help="Answer every agent to ?team_id=.")
@click.option(
    "--role-list",
    type=click.Choice(["exact", "first"]),
    default="exact",
    show_default=True,
    help="What an agent's role_list names: every role it holds, or only the first.",
)
@click.option(
    "--array-writes",
    type=click.Choice(["replace", "merge"]),
    default="replace",
    show_default=True,
    help="Whether posted roles/teams replace or add to an agent's.",
)
@click.option(
    "--float-ids",
    type=click.Choice(["none", "some", "all"]),
    default="some",
    show_default=True,
    help="Render integral ids as floats (18.0): none, role id_int and department_id, or all ids.",
)
@click.option(
    "--write-lag",
    default=0.0,
    show_default=True,
    help="Seconds before a written agent reads back changed.",
)
@click.option("--client-id", default=DEMO_CLIENT_ID, show_default=True)
@click.option("--client-secret", help="[default: a demo secret, printed at start]")
@click.option("--tenant", help="Require this tenant on token requests. [default: none]")
def simulator_command(
    host: str,
    port: int,
    seed: int,
    agents: int,
    teams: int,
    roles: int,
    latency_ms: int,
    rate_limit: int | None,
    rate_window_s: float,
    retry_after: bool,
    error_rate: float,
    token_lifetime: int,
    agent_paging: str,
    no_record_count: bool,
    max_page_size: int,
    past_last_page: str,
    agent_rows: str,
    omit_memberships: bool,
    ignore_role_filter: bool,
    ignore_team_filter: bool,
    role_list: str,
    array_writes: str,
    float_ids: str,
    write_lag: float,
    client_id: str,
    client_secret: str | None,
    tenant: str | None,
) -> None:
    """Serve a simulated HaloITSM (OAuth, agents, roles, teams, tickets) until Ctrl-C."""
    config = SimulatorConfig(
        client_id=client_id,
        client_secret=client_secret or DEMO_CLIENT_SECRET,
        tenant=tenant,
        token_lifetime_s=token_lifetime,
        latency_s=latency_ms / 1000,
        rate_limit_per_5_min=rate_limit,
        rate_window_s=rate_window_s,
        send_retry_after=retry_after,
        error_rate=error_rate,
        agent_paging=agent_paging,  # type: ignore[arg-type]  # click.Choice has checked it
        include_record_count=not no_record_count,
        max_page_size=max_page_size,
        past_last_page=past_last_page,  # type: ignore[arg-type]
        agent_rows=agent_rows,  # type: ignore[arg-type]
        omit_memberships=omit_memberships,
        ignore_role_filter=ignore_role_filter,
        ignore_team_filter=ignore_team_filter,
        role_list=role_list,  # type: ignore[arg-type]
        array_writes=array_writes,  # type: ignore[arg-type]
        float_ids=float_ids,  # type: ignore[arg-type]
        write_lag_s=write_lag,
    )
    dataset = generate_dataset(seed=seed, agents=agents, teams=teams, roles=roles)
    with Simulator(dataset, config).serve(host, port, access_log=True) as url:
        click.echo(f"HaloITSM simulator: {agents} agents, {roles} roles, {teams} teams at {url}")
        click.echo("Point the pipeline at it with:")
        click.echo(f"  HALO_BASE_URL={url}")
        click.echo(f"  HALO_CLIENT_ID={client_id}")
        # Only the public demo secret is shown; a secret given on the command line stays unprinted.
        click.echo(f"  HALO_CLIENT_SECRET={'(as given)' if client_secret else DEMO_CLIENT_SECRET}")
        if tenant:
            click.echo(f"  HALO_TENANT={tenant}")
        click.echo("Press Ctrl-C to stop.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("Stopped.")
