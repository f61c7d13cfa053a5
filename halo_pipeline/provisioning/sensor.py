"""provisioning_request_sensor: start provisioning_job when requests are waiting."""

import hashlib
from functools import partial

import dagster as dg
import duckdb

from halo_pipeline.halo import HaloError, HaloMalformedResponseError, HaloNotFoundError
from halo_pipeline.provisioning.job import provisioning_job
from halo_pipeline.provisioning.queue import Request, Status
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import TicketStatuses
from halo_pipeline.provisioning.work import load_work
from halo_pipeline.resources import DuckDBWarehouse, HaloResource, ProvisioningResource
from halo_pipeline.warehouse import WarehouseBusyError, WarehouseError


@dg.sensor(
    job=provisioning_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def provisioning_request_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: DuckDBWarehouse,
    halo: HaloResource,
    provisioning: ProvisioningResource,
) -> dg.SensorResult | dg.SkipReason:
    """Looks at the provisioning queue with a short read-only connection and starts
    provisioning_job when a request is pending, a manual ticket has been finished in
    HaloITSM, or a sync has run that can confirm a manual change. The run key is derived from
    the requests and their states, so the same requests never start two runs."""
    settings = provisioning.settings()
    try:
        # No waiting: a busy warehouse means a sync or a provisioning run is writing, and the
        # next tick will look again.
        with warehouse.get_connection(read_only=True, wait_s=0) as con:
            work = load_work(con, settings)
    except WarehouseBusyError:
        return dg.SkipReason("The warehouse is being written; looking again next tick.")
    except WarehouseError as error:
        return dg.SkipReason(str(error))
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
        return dg.SkipReason("No provisioning request is waiting.")
    ids = ",".join(str(r.request_id) for r in sorted(due, key=lambda r: r.request_id))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key(due), tags={"requests": _tag_value(ids)})]
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
    return status in settings.done_statuses | settings.failed_statuses


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
