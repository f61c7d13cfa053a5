"""`halo-pipeline request ...`: file access requests, checked against the last sync."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import click
import duckdb

from halo_pipeline.policy.document import parse_duration
from halo_pipeline.provisioning.filing import Filed, file_account, file_membership
from halo_pipeline.requests.commands import warehouse_option, writing
from halo_pipeline.shell import halo_configured, typed

Filing = Callable[[duckdb.DuckDBPyConnection], Filed]

reason_option = click.option("--reason", required=True, help="Why; it goes on the ticket.")
requested_by_option = click.option("--requested-by", required=True, help="Who asks.")
agent_option = click.option("--agent", required=True, help="Agent id, email or exact name.")


@click.group("request")
def request_group() -> None:
    """File an access request for provisioning_job. Unknown or ambiguous agents, roles and
    teams are refused with the candidates, and nothing is written."""


def file(warehouse: str, filing: Filing) -> None:
    """File one request, and say what happens next."""
    filed = writing(warehouse, filing, "Nothing was filed.")
    click.echo(f"Filed request {filed.request_id}: {filed.description}.")
    if filed.warning:
        click.echo(f"Warning: {filed.warning}", err=True)
    if filed.awaiting_approval:
        click.echo(
            "Someone other than the requester and the agent approves it: "
            f"{typed('halo-pipeline')} approve {filed.request_id} --by EMAIL [--note TEXT]"
        )
        return
    if halo_configured():
        click.echo(
            "provisioning_request_sensor starts provisioning_job for it; to run it now: "
            f"{typed('dagster')} job execute -m halo_pipeline.definitions -j provisioning_job"
        )
    else:
        click.echo(
            "No HaloITSM is set here (HALO_BASE_URL): `make dev` runs the simulator, and its "
            "provisioning_request_sensor starts provisioning_job for it."
        )


def _duration(_: click.Context, __: click.Parameter, value: str | None) -> timedelta | None:
    try:
        return None if value is None else parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _until(_: click.Context, __: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time: write e.g. 2026-12-01T17:00Z") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= datetime.now(UTC):
        raise click.BadParameter(f"{value} has passed.")
    return when.astimezone(UTC)


def membership_command(action: str) -> click.Command:
    def command(
        agent: str, role: str | None, team: str | None, reason: str, requested_by: str,
        warehouse: str, valid_for: timedelta | None = None, until: datetime | None = None,
    ) -> None:  # fmt: skip
        if valid_for and until:
            raise click.UsageError("Give --for or --until, not both.")
        file(warehouse, lambda con: file_membership(
            con, action, agent=agent, role=role, team=team, reason=reason,
            requested_by=requested_by, ends=valid_for or until,
        ))  # fmt: skip

    if action == "grant":  # only a grant ends
        command = click.option(
            "--until",
            callback=_until,
            help="When the grant ends: 2026-12-01T17:00Z (UTC if no zone).",
        )(command)
        command = click.option(
            "--for", "valid_for", callback=_duration,
            help="How long the grant lasts once applied: 30s, 15m, 8h, 2d.",
        )(command)  # fmt: skip
    for option in (
        warehouse_option, requested_by_option, reason_option,
        click.option("--team", help="Team id or name."),
        click.option("--role", help="Role GUID, integer id or name."),
        agent_option,
    ):  # fmt: skip
        command = option(command)
    return request_group.command(
        action, help=f"{action.capitalize()} a role or a team membership."
    )(command)


def account_command(action: str, help_text: str) -> click.Command:
    @request_group.command(action.replace("_", "-"), help=help_text)
    @agent_option
    @reason_option
    @requested_by_option
    @warehouse_option
    def command(agent: str, reason: str, requested_by: str, warehouse: str) -> None:
        file(warehouse, lambda con: file_account(
            con, action, agent=agent, reason=reason, requested_by=requested_by
        ))  # fmt: skip

    return command


membership_command("grant")
membership_command("revoke")
account_command("disable_account", "Disable an agent account.")
account_command("enable_account", "Enable a disabled agent account.")


@request_group.command("create-account")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--team", help="The new agent's team: id or name.")
@reason_option
@requested_by_option
@warehouse_option
def create_account(
    name: str, email: str, team: str | None, reason: str, requested_by: str, warehouse: str
) -> None:
    """Create an agent account."""
    file(warehouse, lambda con: file_account(
        con, "create_account", name=name, email=email, team=team, reason=reason,
        requested_by=requested_by,
    ))  # fmt: skip
