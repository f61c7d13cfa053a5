"""The `provisioning` stage: the request queue applied to HaloITSM, and the sensor that starts it.

After the changes, the agents they touched are brought into the warehouse by running
`halo_sync_job` in targeted mode: the same asset definitions, checks included, as every sync,
as a run of its own, whether this run was started headless or by the daemon.
"""

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial

import dagster as dg
import duckdb
from pydantic import Field

from halo_pipeline.defs import runs
from halo_pipeline.defs.failures import said_plainly
from halo_pipeline.defs.reporting import OWNERS, markdown, table_metadata
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.defs.runs import PROVISIONING_JOB, SYNC_JOB
from halo_pipeline.defs.ticks import skips_when_busy
from halo_pipeline.halo import (
    HaloClient,
    HaloError,
    HaloMalformedResponseError,
    HaloNotFoundError,
)
from halo_pipeline.policy.approvals import unverified
from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline.provisioning import refresh, watch
from halo_pipeline.provisioning.runner import Provisioner
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.work import load_work
from halo_pipeline.requests.queue import Request, Status
from halo_pipeline.requests.signing import keyring_or_none
from halo_pipeline.requests.ticketing import TicketStatuses
from halo_pipeline.reviews import notices
from halo_pipeline.sql_models.project import SqlProject
from halo_pipeline.warehouse.locks import applier_lock
from halo_pipeline.warehouse.registry import SNAPSHOT_TABLES

QUEUE = (dg.AssetKey(["provisioning", "requests"]), dg.AssetKey(["provisioning", "request_events"]))

UNVERIFIED = "unverified_approval"

provisioning_job = dg.define_asset_job(
    PROVISIONING_JOB,
    selection=dg.AssetSelection.assets(*QUEUE),
    description="Apply every pending access request to HaloITSM (or plan it, in a dry run).",
)


class ProvisioningResource(dg.ConfigurableResource):
    """What provisioning may do: write to HaloITSM or only plan, and how to ticket. A field
    left unset is read from its HALO_* variable when the run starts (see .env.example)."""

    provisioning: bool | None = Field(default=None, description="HALO_PROVISIONING: writes.")
    ticketing: bool | None = Field(default=None, description="HALO_TICKETING: a ticket each.")
    ticket_type: str | None = Field(default=None, description="HALO_TICKET_TYPE: id or name.")
    ticket_fields: str | None = Field(default=None, description="HALO_TICKET_FIELDS: JSON.")
    manual_entitlements: str | None = Field(default=None, description="HALO_MANUAL_ENTITLEMENTS")

    def settings(self) -> ProvisioningSettings:
        return ProvisioningSettings.load(
            provisioning=self.provisioning,
            ticketing=self.ticketing,
            ticket_type=self.ticket_type,
            ticket_fields=self.ticket_fields,
            manual_entitlements=self.manual_entitlements,
        )


def provisioning_definitions(
    project: SqlProject, sync_job: Callable[[], dg.JobDefinition]
) -> dg.Definitions:
    """The queue's asset, with provisioning_job and its sensor. `sync_job` gives halo_sync_job
    as the code location resolved it: after its changes a run runs that job, targeted, in its
    own process (the definitions are handed down, never imported from here)."""

    @dg.multi_asset(
        name="access_requests",
        specs=[
            dg.AssetSpec(
                QUEUE[0],
                # What the queue is checked against: the catalog of the last sync.
                deps=[dg.AssetKey(["halo", table]) for table in SNAPSHOT_TABLES],
                description=project.table_description(*QUEUE[0].path),
                group_name="provisioning",
                kinds={"duckdb", "python"},
                owners=OWNERS,
                metadata={"dagster/table_name": "provisioning.requests"},
            ),
            dg.AssetSpec(
                QUEUE[1],
                description=project.table_description(*QUEUE[1].path),
                group_name="provisioning",
                kinds={"duckdb"},
                owners=OWNERS,
                metadata={"dagster/table_name": "provisioning.request_events"},
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                UNVERIFIED,
                asset=QUEUE[1],
                description="Every approval, denial and applied event recorded since signing "
                "began verifies under the signing key. One that does not (written into the "
                "warehouse by hand, copied, or changed) is never honoured; this names it.",
            )
        ],
        can_subset=False,
        pool="duckdb",
    )
    @said_plainly
    def access_requests(
        context: dg.AssetExecutionContext,
        halo: HaloResource,
        warehouse: DuckDBWarehouse,
        provisioning: ProvisioningResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Plans every waiting request from HaloITSM as it is now; with HALO_PROVISIONING=true
        applies and verifies it, with a HaloITSM ticket per request when HALO_TICKETING=true. The
        agents it touched are then synced by a targeted `halo_sync_job` run. One run applies
        requests to a warehouse at a time: another finds it taken and writes nothing."""
        runs.claim(context)
        with warehouse.get_connection() as con:
            runs.reap(context.instance, con, context.log)
        ring = keyring_or_none(context.log)
        settings = provisioning.settings()
        with halo.get_client(logger=context.log) as client:
            provisioner = Provisioner(
                client,
                warehouse.get_connection,
                settings,
                run_id=context.run.run_id,
                logger=context.log,
                warehouse_path=warehouse.path,
                ring=ring,
            )
            try:
                provisioner.run()
                _reviewer_tickets(context, client, warehouse, settings)
            finally:
                # Even when the run stops early, what it changed reaches the warehouse.
                touched = sorted(provisioner.summary.touched_agents)
                if provisioner.summary.refresh_due:
                    _refresh(context, warehouse, touched, sync_job)
            requests = client.request_count
        outcomes = dict(provisioner.summary.counts)
        context.log.info(f"outcomes {outcomes} using {requests} HaloITSM requests")
        with warehouse.get_connection(read_only=True) as con:
            for table in ("requests", "request_events"):
                yield dg.MaterializeResult(
                    asset_key=["provisioning", table],
                    metadata={
                        **table_metadata(
                            con,
                            f"provisioning.{table}",
                            project.column_descriptions("provisioning", table),
                        ),
                        "outcomes": outcomes,
                        "halo_requests": requests,
                        "refreshed_agents": touched,
                        "skipped": provisioner.summary.skipped or "",
                    },
                )
            found = unverified(con, ring)
        yield dg.AssetCheckResult(
            asset_key=QUEUE[1],
            check_name=UNVERIFIED,
            passed=not found,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "unverified": len(found),
                "events": [u.event_id for u in found],
                "rows": markdown(
                    [(u.event_id, u.request_id, u.to_status, u.why) for u in found],
                    [("event_id",), ("request_id",), ("to_status",), ("why",)],
                ),
            },
        )

    return dg.Definitions(
        assets=[access_requests],
        jobs=[provisioning_job],
        sensors=[provisioning_request_sensor, ticket_intake_sensor],
        resources={"provisioning": ProvisioningResource()},
    )


def _reviewer_tickets(
    context: dg.AssetExecutionContext,
    client: HaloClient,
    warehouse: DuckDBWarehouse,
    settings: ProvisioningSettings,
) -> None:
    """Review campaigns' tickets owed to their reviewers: opened, finished or closed with the
    outcome, by the one run applying to this warehouse."""
    with applier_lock(warehouse.path) as holder:
        if holder is None:
            served = notices.serve(client, warehouse.get_connection, settings, context.log.info)
            for failed in served.failed:
                context.log.warning(f"left for the next run: {failed}")


def _refresh(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    agent_ids: list[int],
    sync_job: Callable[[], dg.JobDefinition],
) -> None:
    """The targeted sync and the model rebuild, as `halo_sync_job` runs them, in this process.
    Once both are done the agents are no longer owed a refresh."""
    context.log.info(f"running {SYNC_JOB} for agents {agent_ids}")
    started = datetime.now(UTC)
    result = sync_job().execute_in_process(
        instance=context.instance,
        run_config={
            "ops": {"halo_tables": {"config": {"agent_ids": agent_ids}}},
            # Its log reads like this run's: a quiet console stays quiet.
            **{k: v for k, v in context.run.run_config.items() if k == "loggers"},
        },
        tags={"halo/after_provisioning_run": context.run.run_id},
        raise_on_error=False,
    )
    if not result.success:
        raise dg.Failure(
            f"The changes were made, but the targeted {SYNC_JOB} run {result.run_id} that "
            "brings them into the warehouse failed; the next sync will show them.",
            allow_retries=False,
        )
    with warehouse.get_connection() as con:
        refresh.paid(con, agent_ids, started)
    context.log.info(f"{SYNC_JOB} run {result.run_id} refreshed agents {agent_ids}")


@dg.sensor(
    job_name=PROVISIONING_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
@skips_when_busy
def provisioning_request_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: DuckDBWarehouse,
    halo: HaloResource,
    provisioning: ProvisioningResource,
) -> dg.SensorResult | dg.SkipReason:
    """Looks at the provisioning queue with a short read-only connection and starts
    provisioning_job when a request is pending, a manual ticket has been finished in
    HaloITSM, a sync has run that can confirm a manual change, or a review campaign's
    reviewers are owed their tickets (opened, or closed with the outcome). The run key is
    derived from the requests and their states, so the same requests never start two runs."""
    settings = provisioning.settings()
    try:
        # No waiting: a busy warehouse means a sync or a provisioning run is writing.
        with warehouse.get_connection(read_only=True, wait_s=0) as con:
            work = load_work(con, settings)
            owed_tickets = notices.owed(con)
    except duckdb.CatalogException:
        return dg.SkipReason("No provisioning request has been filed yet.")

    if not any(request.status == Status.AWAITING_TICKET for request in work.todo):
        due = work.due(lambda request: False)
    else:
        try:
            with halo.get_client(logger=context.log) as client:
                due = work.due(partial(_ticket_finished, TicketStatuses(client), settings))
        except HaloError as error:
            return dg.SkipReason(f"Could not reach HaloITSM to read manual tickets: {error}")
    if not due:
        refresh = _owed_refresh(context, work.owed)
        if isinstance(refresh, dg.SensorResult) or not (owed_tickets and settings.writes_tickets):
            return refresh  # a run that pays the refresh serves the reviewers' tickets too
        said = "|".join(f"{o.campaign.campaign_id}:{o.reviewer}:{o.ticket_id}:"
                        f"{o.campaign.closed_at}" for o in owed_tickets)  # fmt: skip
        # Asked again every ASK_AGAIN_S while owed: a run that could not serve them (HaloITSM
        # refused, or another run held the warehouse) is not the last word.
        again = int(time.time() // watch.ASK_AGAIN_S)
        key = f"reviewer-tickets-{hashlib.sha256(said.encode()).hexdigest()[:16]}-{again}"
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=key)])
    ids = ",".join(str(r.request_id) for r in sorted(due, key=lambda r: r.request_id))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key(due), tags={"requests": _tag_value(ids)})]
    )


@dg.sensor(
    job_name=PROVISIONING_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
@skips_when_busy
def ticket_intake_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: DuckDBWarehouse,
    halo: HaloResource,
    provisioning: ProvisioningResource,
) -> dg.SensorResult | dg.SkipReason:
    """Starts provisioning_job when HaloITSM has news for it: an open ticket of
    HALO_REQUEST_TICKET_TYPE not taken in yet, such a ticket changed since, or (when the policy
    takes approvals from HaloITSM) an approver's answer on the ticket of a waiting request. The
    cursor keeps each ticket's last update and approvals, so nothing new starts nothing; the
    run key comes from the news, so the same news never starts two runs."""
    settings = provisioning.settings()
    try:
        approvals = load_policy().approval_via != "cli"
    except PolicyError:
        approvals = False  # the run says what is wrong with the policy
    if not settings.request_ticket_type and not approvals:
        return dg.SkipReason("Neither HALO_REQUEST_TICKET_TYPE nor approvals in HaloITSM is set.")
    try:
        with warehouse.get_connection(read_only=True, wait_s=0) as con:
            watched = watch.Watched.read(con, settings)
    except duckdb.CatalogException:
        return dg.SkipReason("No sync has run yet, so request tickets cannot be checked.")
    try:
        with halo.get_client(logger=context.log) as client:
            found = watch.look(
                client, watched, watch.Cursor.parse(context.cursor), approvals=approvals,
                results=settings.approval_results, now=time.time(),
            )  # fmt: skip
    except HaloError as error:
        return dg.SkipReason(f"Could not reach HaloITSM to read request tickets: {error}")
    if not found.news:
        return dg.SensorResult(skip_reason="No request ticket is new.", cursor=found.cursor.dump())
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key=found.run_key, tags={"halo/tickets": _tag_value(found.ticket_ids)}
        )],
        cursor=found.cursor.dump(),
    )  # fmt: skip


def _owed_refresh(
    context: dg.SensorEvaluationContext, owed: refresh.Owed
) -> dg.SensorResult | dg.SkipReason:
    """A run for a refresh a dead or failed run left owed; none while that run is going."""
    if not owed:
        return dg.SkipReason("No provisioning request is waiting.")
    going = [
        run_id
        for run_id in sorted(owed.run_ids)
        if (run := context.instance.get_run_by_id(run_id)) is not None and not run.is_finished
    ]
    if going:
        return dg.SkipReason(f"Run {going[0]} is still bringing its changes into the warehouse.")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=owed.key, tags={"halo/refresh": "owed"})]
    )


def _ticket_finished(
    statuses: TicketStatuses, settings: ProvisioningSettings, request: Request
) -> bool:
    """Whether a person has finished the request's ticket. A ticket that cannot be read counts
    as finished, so the run looks at it and says why, instead of every tick skipping."""
    assert request.ticket_id is not None
    try:
        status = statuses.of_ticket(request.ticket_id)
    except (HaloNotFoundError, HaloMalformedResponseError):
        return True
    return status in settings.ticket_done_statuses | settings.ticket_failed_statuses


def run_key(requests: list[Request]) -> str:
    state = "|".join(
        f"{r.request_id}:{r.status}:{r.updated_at.isoformat()}"
        for r in sorted(requests, key=lambda r: r.request_id)
    )
    return "requests-" + hashlib.sha256(state.encode()).hexdigest()[:16]


def _tag_value(ids: str) -> str:
    """Dagster tag values are short: whole ids only, then how many more."""
    if len(ids) <= 200:
        return ids
    kept = ids[:190].rsplit(",", 1)[0]
    return f"{kept} and {ids.count(',') - kept.count(',')} more"
