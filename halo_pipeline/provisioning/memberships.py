"""Grant and revoke of roles and team memberships: one read, one write, one verification per
agent, however many requests the agent has."""

from __future__ import annotations

from halo_pipeline.halo import HaloNotFoundError
from halo_pipeline.halo.models import Agent
from halo_pipeline.provisioning.context import RunContext
from halo_pipeline.provisioning.planning import (
    DRY_RUN,
    already,
    change,
    plan_memberships,
    satisfied,
)
from halo_pipeline.requests.catalog import Entitlement
from halo_pipeline.requests.queue import Request, Status, Step


def apply_memberships(
    ctx: RunContext, agent_id: int, items: list[tuple[Request, Entitlement]]
) -> None:
    try:
        live = ctx.client.get_agent(agent_id)
    except HaloNotFoundError:
        name = ctx.catalog.agent(agent_id).name
        ctx.fail(
            [request for request, _ in items],
            f"Agent {agent_id} ({name}) no longer exists in HaloITSM: it was deleted after the "
            "last sync. Nothing was changed.",
        )
        return
    items = _without_conflicts(ctx, live, items)
    if not items:
        return
    plan = plan_memberships(live, items)
    for request, later in plan.superseded:
        ctx.fail([request], f"Superseded by request {later}, filed later for the same entitlement.")
    entitlements = [entitlement for _, entitlement in plan.requests]
    requests = ctx.ticketed([request for request, _ in plan.requests])
    pairs = list(zip(requests, entitlements, strict=True))

    if not ctx.settings.enabled:
        ctx.finish([
            Step(r, Status.ALREADY_SATISFIED, f"(dry run) nothing to change: {already(r, e)}")
            for r, e in pairs if satisfied(live, r, e)
        ])  # fmt: skip
        ctx.record([
            Step(r, Status.PLANNED, DRY_RUN, {"plan": plan.description})
            for r, e in pairs if not satisfied(live, r, e)
        ])  # fmt: skip
        return

    if plan.payload is not None:
        # Committed before the write: a rerun after a crash knows the write may have landed.
        moved = ctx.record([
            Step(r, Status.APPLYING, plan.description, {"plan": plan.description})
            for r, e in pairs if not satisfied(live, r, e) and r.status != Status.APPLYING
        ])  # fmt: skip
        latest = {request.request_id: request for request in moved}
        pairs = [(latest.get(r.request_id, r), e) for r, e in pairs]
        ctx.client.save_agent(plan.payload)
        live = ctx.verify(
            agent_id,
            lambda agent: (
                all(satisfied(agent, r, e) for r, e in pairs) and not plan.side_effects(agent)
            ),
        )
        damage = plan.side_effects(live)
    else:
        ctx.touch(agent_id)
        damage = []

    outcomes = []
    for request, entitlement in pairs:
        if damage and request.status == Status.APPLYING:
            reason = (
                f"HaloITSM wrote agent {agent_id} but also changed what was not asked: "
                f"{'; '.join(damage)}. Put those back in HaloITSM by hand; the write was "
                f"{plan.description}."
            )
            outcomes.append(Step(request, Status.FAILED, reason, {"error": reason}))
        elif not satisfied(live, request, entitlement):
            reason = (
                "HaloITSM accepted the write but the change did not take: after "
                f"{ctx.settings.verify_attempts} reads agent {agent_id} still "
                f"{'lacks' if request.action == 'grant' else 'holds'} {entitlement.label}. "
                "This instance may merge posted lists instead of replacing them; make the "
                "change in HaloITSM by hand."
            )
            outcomes.append(Step(request, Status.FAILED, reason, {"error": reason}))
        elif request.status == Status.APPLYING:
            verified = f"verified: {change(ctx.catalog, request, entitlement)}"
            outcomes.append(Step(request, Status.APPLIED, verified))
        else:
            unchanged = f"nothing to change: {already(request, entitlement)}"
            outcomes.append(Step(request, Status.ALREADY_SATISFIED, unchanged))
    ctx.finish(outcomes)


def _without_conflicts(
    ctx: RunContext, live: Agent, items: list[tuple[Request, Entitlement]]
) -> list[tuple[Request, Entitlement]]:
    """Fail each grant that, with what the agent holds now in HaloITSM and the other grants,
    would break a separation-of-duties rule of the access policy; the rest go on."""
    held = {role.id for role in live.roles or ()}
    held |= {e.target for r, e in items if r.action == "grant" and e.kind == "role"}
    held -= {e.target for r, e in items if r.action == "revoke" and e.kind == "role"}
    kept = []
    for request, entitlement in items:
        conflict = None
        if request.action == "grant" and request.status in (Status.PENDING, Status.PLANNED):
            conflict = ctx.gate.conflict({str(role) for role in held}, request.entitlement_id)
        if conflict:
            ctx.fail([request], f"Refused by the {conflict}.")
        else:
            kept.append((request, entitlement))
    return kept
