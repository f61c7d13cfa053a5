"""Manual requests (HALO_MANUAL_ENTITLEMENTS): the pipeline opens a ticket, a person makes the
change, the ticket's status says when, and the next full sync confirms it."""

from __future__ import annotations

from datetime import datetime

from halo_pipeline.provisioning.context import RunContext
from halo_pipeline.provisioning.planning import DRY_RUN, change
from halo_pipeline.requests.catalog import Entitlement
from halo_pipeline.requests.queue import Request, Status, Step
from halo_pipeline.requests.rules import RequestRefused


def open_manual(ctx: RunContext, request: Request, entitlement: Entitlement) -> None:
    if not ctx.settings.enabled:
        plan = f"open a ticket for a person to {change(ctx.catalog, request, entitlement)}"
        ctx.record([Step(request, Status.PLANNED, DRY_RUN, {"plan": plan})])
        return
    [request] = ctx.tickets.ensure([(request, ctx.ticket_text(request, manual=True))])
    waiting = f"waiting for a person on ticket {request.ticket_id}"
    ctx.record([Step(request, Status.AWAITING_TICKET, waiting)])


def poll_ticket(ctx: RunContext, request: Request) -> None:
    assert request.ticket_id is not None
    status = ctx.tickets.statuses.of_ticket(request.ticket_id)
    if status in ctx.settings.ticket_done_statuses:
        done = f"ticket {request.ticket_id} is {status!r}; the next sync confirms the change"
        ctx.record([Step(request, Status.DONE, done)])
    elif status in ctx.settings.ticket_failed_statuses:
        _fail(ctx, request, f"Ticket {request.ticket_id} was set to {status!r} in HaloITSM.")


def confirm(ctx: RunContext, request: Request, synced_at: datetime | None) -> None:
    """Compare a done request with the latest full sync, once one has run since it was done."""
    if synced_at is None or synced_at <= request.updated_at:
        return  # no full sync since the ticket was done
    try:
        entitlement = ctx.catalog.entitlement(request.entitlement_id)
    except RequestRefused as refused:
        _fail(ctx, request, str(refused))
        return
    when = f"{synced_at:%Y-%m-%d %H:%M}"
    if ctx.catalog.holds(request.agent_id, entitlement) == (request.action == "grant"):
        confirmed = f"the sync of {when} shows the change"
        ctx.record([Step(request, Status.CONFIRMED, confirmed, {"ticket_closed": True})])
    else:
        _fail(
            ctx,
            request,
            f"Ticket {request.ticket_id} was marked done, but the sync of {when} shows agent "
            f"{request.agent_id} still {'lacks' if request.action == 'grant' else 'holds'} "
            f"{entitlement.label}.",
        )


def _fail(ctx: RunContext, request: Request, reason: str) -> None:
    """Fail a manual request; its ticket is the person's, and stays as they left it."""
    failed = Step(request, Status.FAILED, reason, {"error": reason, "ticket_closed": True})
    ctx.finish([failed], close_tickets=False)
