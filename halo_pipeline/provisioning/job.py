"""provisioning_job: apply every pending request, then show the result in the warehouse."""

import dagster as dg

from halo_pipeline.assets.metadata import table_metadata
from halo_pipeline.provisioning.runner import Provisioner
from halo_pipeline.resources import DuckDBWarehouse, HaloResource, ProvisioningResource
from halo_pipeline.sql_models.project import load_project

TARGETED_SYNC_TABLES = (
    "agents", "agent_roles", "agent_teams", "agent_role_history", "agent_team_history", "sync_runs",
)  # fmt: skip

REQUESTS = dg.AssetKey(["provisioning", "requests"])
REQUEST_EVENTS = dg.AssetKey(["provisioning", "request_events"])

provisioning_tables = [
    dg.AssetSpec(
        REQUESTS,
        description="The provisioning queue: one row per access request, filed with "
        "`halo-pipeline request` or SQL, and its outcome. Written by provisioning_job.",
        group_name="provisioning",
        kinds={"duckdb"},
        metadata={"dagster/table_name": "provisioning.requests"},
    ),
    dg.AssetSpec(
        REQUEST_EVENTS,
        description="Every change of a request's state, with time and detail: the audit trail.",
        group_name="provisioning",
        kinds={"duckdb"},
        metadata={"dagster/table_name": "provisioning.request_events"},
    ),
]


@dg.op(pool="duckdb", out=dg.Out(dg.Nothing))
def apply_access_requests(
    context: dg.OpExecutionContext,
    halo: HaloResource,
    warehouse: DuckDBWarehouse,
    provisioning: ProvisioningResource,
) -> None:
    """Plans every waiting request from HaloITSM as it is now; with HALO_PROVISIONING=true
    applies and verifies it, with a HaloITSM ticket per request when HALO_TICKETING=true.
    The agents it read are then written into the `halo` tables as a targeted sync and the
    access model is rebuilt."""
    with halo.get_client(logger=context.log) as client:
        summary = Provisioner(
            client,
            warehouse.get_connection,
            provisioning.settings(),
            run_id=context.run.run_id,
            logger=context.log,
        ).run()
        requests = client.request_count
    context.log.info(f"outcomes {dict(summary.counts)} using {requests} HaloITSM requests")

    changed = [REQUESTS, REQUEST_EVENTS]
    if summary.sync_id is not None:  # the targeted sync rewrote these
        changed += [dg.AssetKey(["halo", table]) for table in TARGETED_SYNC_TABLES]
        changed += [dg.AssetKey(["access", model.name]) for model in load_project().models]
    with warehouse.get_connection(read_only=True) as con:
        for key in changed:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=key,
                    metadata={
                        **table_metadata(con, ".".join(key.path)),
                        "outcomes": dict(summary.counts),
                        "halo_requests": requests,
                    },
                )
            )


@dg.job(
    description="Apply every pending access request to HaloITSM (or plan it, in a dry run).",
    executor_def=dg.in_process_executor,
)
def provisioning_job() -> None:
    apply_access_requests()
