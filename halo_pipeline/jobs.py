"""Jobs: what runs together."""

import dagster as dg

halo_sync_job = dg.define_asset_job(
    "halo_sync_job",
    selection=dg.AssetSelection.groups("halo", "access"),
    description="Sync HaloITSM agents, roles, teams and ticket types into the warehouse, "
    "rebuild the access model from them, and run every check.",
)
