"""Jobs: what runs together."""

import dagster as dg

halo_sync_job = dg.define_asset_job(
    "halo_sync_job",
    selection=dg.AssetSelection.groups("halo"),
    description="Sync HaloITSM agents, roles, teams and ticket types into the warehouse, "
    "then run their checks.",
)
