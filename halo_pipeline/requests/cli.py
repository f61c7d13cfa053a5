"""`halo-pipeline key init`: the signing key, made on purpose and never implicitly."""

from __future__ import annotations

import click

from halo_pipeline.requests.commands import warehouse_option, writing
from halo_pipeline.requests.signing import SigningKeyError, init_keyring, key_path
from halo_pipeline.warehouse.migrations import warehouse_id


@click.group("key")
def key_group() -> None:
    """The key that signs approvals, denials, review decisions and applied changes
    (HALO_SIGNING_KEY_FILE, default halo-signing.key beside the Dagster home)."""


@key_group.command("init")
@click.option(
    "--rotate", is_flag=True, help="Add a new key; the old ones then only verify what they signed."
)
@warehouse_option
def init_command(rotate: bool, warehouse: str) -> None:
    """Make the signing key of this warehouse (mode 0600, yours alone). Back it up with the
    warehouse: without it, pending approvals must be given again and the evidence reads
    'unverifiable' for what it signed."""
    wid = writing(warehouse, warehouse_id, "No key was made.")
    try:
        ring = init_keyring(wid, key_path(), rotate=rotate)
    except SigningKeyError as error:
        raise click.ClickException(str(error)) from None
    done = "Added" if rotate else "Made"
    click.echo(f"{done} signing key {ring.active.key_id} for warehouse {wid} in {ring.path}.")
    click.echo(f"Back up {ring.path} (and {ring.ledger.name} beside it) with the warehouse.")
