"""`halo-pipeline approve`, `deny` and `policy check`."""

from __future__ import annotations

import click
import duckdb

from halo_pipeline.policy.decisions import approve, deny
from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline.policy.gate import say_duration
from halo_pipeline.policy.resolved import resolve, synced_roles
from halo_pipeline.requests.commands import (
    confirmation,
    signer,
    warehouse_option,
    writing,
    yes_option,
)
from halo_pipeline.warehouse import WarehouseError, connect

by_option = click.option("--by", required=True, help="The approver's email address.")


@click.command("approve")
@click.argument("request_id", type=int)
@by_option
@click.option("--note", help="Why, for the record.")
@yes_option
@warehouse_option
def approve_command(request_id: int, by: str, note: str | None, yes: bool, warehouse: str) -> None:
    """Approve a request that waits for approval under the access policy: shows what it signs,
    then signs it. The approver is a HaloITSM agent (their email there); nobody approves their
    own request or a grant to themselves."""
    with signer(warehouse) as (ring, halo):
        writing(
            warehouse,
            lambda con: approve(con, halo, ring, request_id, by, note, confirmation(yes)),
            "Nothing was recorded.",
        )
    click.echo(
        f"Approved request {request_id}: it is pending, and provisioning_request_sensor starts "
        "provisioning_job for it."
    )


@click.command("deny")
@click.argument("request_id", type=int)
@by_option
@click.option("--reason", required=True, help="Why; it is recorded with the request.")
@yes_option
@warehouse_option
def deny_command(request_id: int, by: str, reason: str, yes: bool, warehouse: str) -> None:
    """Deny a request that waits for approval: it ends, with the reason. Whoever may approve it
    may deny it."""
    with signer(warehouse) as (ring, halo):
        writing(
            warehouse,
            lambda con: deny(con, halo, ring, request_id, by, reason, confirmation(yes)),
            "Nothing was recorded.",
        )
    click.echo(f"Denied request {request_id}.")


@click.group("policy")
def policy_group() -> None:
    """The access policy (access_policy.yml, or HALO_ACCESS_POLICY)."""


@policy_group.command("check")
@warehouse_option
def check_command(warehouse: str) -> None:
    """Read the policy file and check every role it names against the last sync."""
    try:
        policy = load_policy()
        with connect(warehouse, read_only=True, wait_s=30) as con:
            resolved = resolve(policy, synced_roles(con))
    except (PolicyError, WarehouseError) as error:
        raise click.ClickException(f"{error}") from None
    except duckdb.CatalogException:
        raise click.ClickException(
            f"{warehouse} has no sync yet: run halo_sync_job, then check the policy."
        ) from None
    click.echo(f"{policy.path}: the policy reads, and every role it names is in the last sync.")
    click.echo(f"  privileged roles ... {_names(resolved.names, resolved.privileged)}")
    click.echo(f"  approval ........... required for {policy.approval_required_for}"
               + (f", by {', '.join(policy.approvers)}" if policy.approvers else ""))  # fmt: skip
    longest = policy.max_privileged_duration
    click.echo(
        f"  privileged grants .. {'at most ' + say_duration(longest) if longest else 'no limit'}"
    )
    for name, roles in resolved.separation_of_duties:
        click.echo(f"  rule {name} ... nobody holds two of {_names(resolved.names, roles)}")
    click.echo(
        f"  leavers ............ disabled agents hold nothing: "
        f"{'checked' if policy.disabled_agents_hold_nothing else 'not checked'}; "
        f"auto revoke {'on' if policy.auto_revoke_leavers else 'off'}"
    )


def _names(names: dict[str, str], roles: frozenset[str]) -> str:
    return ", ".join(sorted(names[role] for role in roles)) or "none"
