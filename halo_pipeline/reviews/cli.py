"""`halo-pipeline review ...`: access review campaigns, from snapshot to evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import click

from halo_pipeline.halo import HaloClient, HaloError, HaloSettings
from halo_pipeline.query_output import render as render_rows
from halo_pipeline.requests.commands import (
    reading,
    signer,
    warehouse_option,
    writing,
)
from halo_pipeline.requests.identities import Person, person
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.requests.signing import KeyRing, keyring_or_none
from halo_pipeline.requests.ticketing import TicketSettings
from halo_pipeline.reviews.campaigns import progress, start
from halo_pipeline.reviews.decisions import KEEP, REVOKE, close, decide, import_decisions
from halo_pipeline.reviews.exports import export
from halo_pipeline.reviews.notices import Served, serve
from halo_pipeline.reviews.report import write_report
from halo_pipeline.shell import typed
from halo_pipeline.warehouse import budget_path, connect
from halo_pipeline.warehouse.locks import applier_lock

T = TypeVar("T")
name_argument = click.argument("name")
by_option = click.option("--by", required=True, help="Your email address in HaloITSM.")
force_option = click.option("--force", is_flag=True, help="Replace what --out names.")


@click.group("review")
def review_group() -> None:
    """Access reviews: snapshot the grants in a scope, have their reviewers keep or revoke
    each, file the revokes, and keep the evidence."""


@review_group.command("start")
@name_argument
@click.option(
    "--scope",
    required=True,
    help="privileged (the access policy's privileged roles), all, role:<name or id> or "
    "team:<name or id>.",
)
@click.option("--due", type=click.DateTime(["%Y-%m-%d"]), help="Due date, YYYY-MM-DD.")
@click.option("--reviewer", help="One reviewer for every grant (else the managers).")
@click.option(
    "--notify",
    is_flag=True,
    help="Open a HaloITSM ticket for each reviewer (who must be an agent), assigned to them, "
    "with their review sheet attached.",
)
@warehouse_option
def start_command(
    name: str, scope: str, due: datetime | None, reviewer: str | None, notify: bool,
    warehouse: str,
) -> None:  # fmt: skip
    """Snapshot the grants in SCOPE, as of the last sync, into a new campaign NAME. Each grant
    goes to --reviewer, else to the enabled managers of the team (for a team) or of the agent's
    default team (for a role), else to the access policy's approvers; never to the agent."""
    started = writing(
        warehouse,
        lambda con: start(con, name, scope, due.date() if due else None, reviewer, notify),
        "No campaign was started.",
    )
    campaign = started.campaign
    click.echo(
        f"Started campaign {campaign.name!r}: {started.items} grants of {campaign.scope_label}, "
        f"as of sync {campaign.sync_id} ({campaign.synced_at.astimezone(UTC):%Y-%m-%d %H:%M} "
        f"UTC), for {started.reviewers} reviewer(s)"
        + (f", due {campaign.due_date}." if campaign.due_date else ".")
    )
    for source, count in sorted(started.by_source.items()):
        click.echo(f"  {count} reviewed by {source}")
    if campaign.due_date and campaign.due_date < datetime.now(UTC).date():
        click.echo(f"Warning: its due date {campaign.due_date} has passed.", err=True)
    if started.roles_unread:
        named = ", ".join(f"{agent_id} ({name})" for agent_id, name in started.roles_unread[:5])
        more = len(started.roles_unread) - 5
        click.echo(
            f"Warning: the roles of {len(started.roles_unread)} agent(s) were never read from "
            f"HaloITSM, so any of theirs in scope are not in this campaign: {named}"
            + (f" and {more} more" if more > 0 else "")
            + ". The next full sync reads them.",
            err=True,
        )
    if notify:
        _notify(warehouse)
        return
    click.echo(
        "Give each reviewer their page: "
        f"{typed('halo-pipeline')} review export {campaign.name} --format html --out FOLDER"
    )


def _notify(warehouse: str) -> None:
    """The reviewers' tickets, now; what a failure leaves, provisioning_job's next run opens."""
    settings = TicketSettings.load()
    with applier_lock(warehouse) as holder:
        if holder is not None:
            click.echo(f"{holder} is applying requests; that run opens the reviewers' tickets.")
            return
        opened = partial(connect, warehouse, wait_s=120, create=False)
        if not settings.writes_tickets:
            served = serve(None, opened, settings, log=lambda line: None)
            click.echo("HALO_PROVISIONING and HALO_TICKETING are not both true: a dry run.")
            for line in served.said:
                click.echo(f"  {line}")
            return
        try:
            halo = HaloSettings.load(budget_path=budget_path(warehouse))
            with HaloClient(halo) as client:
                served = serve(client, opened, settings, log=lambda line: None)
        except HaloError as error:
            served = Served(failed=[str(error)])
        for line in served.said:
            click.echo(f"  {line}")
        if served.failed:
            raise click.ClickException(
                "The campaign started, but not every reviewer's ticket was opened: "
                f"{'; '.join(served.failed)} provisioning_job's next run opens the rest."
            )


@review_group.command("export")
@name_argument
@click.option("--format", "form", type=click.Choice(["csv", "html"]), required=True)
@click.option("--reviewer", help="Only this reviewer's grants.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="The CSV file or the reviewer's page; without --reviewer, a folder of pages for HTML.",
)
@force_option
@warehouse_option
def export_command(
    name: str, form: str, reviewer: str | None, out: Path, force: bool, warehouse: str
) -> None:
    """Write a campaign's grants for its reviewers: a CSV whose decision (keep or revoke) and
    note columns they fill in, or self-contained HTML pages, one per reviewer."""
    written = reading(warehouse, lambda con: export(con, name, form, reviewer, out, force))
    if len(written) == 1:
        click.echo(f"Wrote {written[0]}.")
    else:
        click.echo(f"Wrote {len(written) - 1} reviewer pages and {written[0]}.")


@review_group.command("decide")
@name_argument
@click.option("--grant", "grant_id", required=True, help="The grant id, as the export has it.")
@click.option("--keep", is_flag=True, help="The agent still needs it.")
@click.option("--revoke", is_flag=True, help="Remove it when the campaign closes.")
@by_option
@click.option("--note", help="Why, for the record.")
@warehouse_option
def decide_command(
    name: str, grant_id: str, keep: bool, revoke: bool, by: str, note: str | None,
    warehouse: str,
) -> None:  # fmt: skip
    """Record your decision on one grant of campaign NAME; a later one replaces it until the
    campaign closes."""
    if keep == revoke:
        raise click.UsageError("Say --keep or --revoke, one of them.")
    decision = KEEP if keep else REVOKE
    ring, reviewer = _signer(warehouse, by)
    recorded = writing(
        warehouse, lambda con: decide(con, ring, name, grant_id, decision, reviewer, note), ""
    )
    click.echo(f"{'Recorded' if recorded else 'Already recorded'}: {decision} {grant_id}.")


@review_group.command("import")
@name_argument
@click.argument("file", type=click.Path(path_type=Path))
@by_option
@warehouse_option
def import_command(name: str, file: Path, by: str, warehouse: str) -> None:
    """Record the decisions of a filled-in CSV export. The whole file is checked first; any
    problem, and nothing is recorded."""
    ring, reviewer = _signer(warehouse, by)
    imported = writing(warehouse, lambda con: import_decisions(con, ring, name, file, reviewer), "")
    click.echo(
        f"Recorded {imported.recorded} decision(s) from {file}; {imported.unchanged} unchanged, "
        f"{imported.undecided} still undecided."
    )


@review_group.command("close")
@name_argument
@by_option
@click.option("--force", is_flag=True, help="Record undecided grants as not_reviewed.")
@warehouse_option
def close_command(name: str, by: str, force: bool, warehouse: str) -> None:
    """Close campaign NAME: its decisions become final and each revoke a revoke request
    (no approval needed) that provisioning_job applies, with its ticket."""
    ring, closer = _signer(warehouse, by)
    closed = writing(warehouse, lambda con: close(con, ring, name, closer, force), "")
    click.echo(
        f"Closed campaign {closed.campaign.name!r}: {closed.kept} kept, "
        f"{len(closed.revokes) + len(closed.gone)} revoked, {closed.not_reviewed} not reviewed."
    )
    for item, request_id in closed.revokes:
        click.echo(
            f"  request {request_id}: revoke {item.resource_type} {item.entitlement_name!r} "
            f"from {item.agent_name} (agent {item.agent_id})"
        )
    for item in closed.gone:
        click.echo(
            f"  no request: {item.label} is no longer held as it was reviewed (removed, or "
            "granted again, since the snapshot)"
        )
    if closed.revokes:
        click.echo(
            "provisioning_request_sensor starts provisioning_job for them; then "
            f"{typed('halo-pipeline')} review report {closed.campaign.name} --out FOLDER"
        )
    if closed.tickets:
        click.echo(
            f"provisioning_job answers and closes the {closed.tickets} reviewer ticket(s) in "
            "HaloITSM with the outcome."
        )


@review_group.command("report")
@name_argument
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False))
@force_option
@warehouse_option
def report_command(name: str, out: Path, force: bool, warehouse: str) -> None:
    """Write the evidence pack of campaign NAME into a folder: report.html and report.csv with
    the scope, snapshot, every decision, the revoke requests and what a later sync confirmed."""
    ring = keyring_or_none()
    written, summary = reading(warehouse, lambda con: write_report(con, name, out, force, ring))
    click.echo(f"Wrote {' and '.join(str(path) for path in written)}.")
    click.echo(
        f"{summary.items} grants: {summary.kept} kept, {summary.revoked} revoked "
        f"({summary.confirmed} confirmed removed by a later sync), {summary.not_reviewed} not "
        f"reviewed, {summary.undecided} undecided."
    )


@review_group.command("status")
@warehouse_option
def status_command(warehouse: str) -> None:
    """Every campaign's progress."""
    columns, rows = reading(warehouse, progress)
    if not rows:
        click.echo("No campaign yet: `review start` begins one.")
        return
    click.echo(render_rows(columns, rows, "table"), nl=False)


def _signer(warehouse: str, by: str) -> tuple[KeyRing, Person]:
    """The signing key and who decides: one enabled HaloITSM agent, read from HaloITSM by the
    email typed. A file that is not our warehouse is refused before either is looked for."""
    with signer(warehouse) as (ring, halo):
        try:
            return ring, person(halo, by, "The reviewer")
        except RequestRefused as refused:
            raise click.ClickException(f"{refused} Nothing was recorded.") from None
