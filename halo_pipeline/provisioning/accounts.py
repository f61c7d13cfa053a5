"""Creating, disabling and enabling agent accounts."""

from __future__ import annotations

from typing import Any

from halo_pipeline.halo import HaloNotFoundError
from halo_pipeline.halo.models import Agent
from halo_pipeline.provisioning.context import RunContext
from halo_pipeline.provisioning.planning import DRY_RUN, post_text
from halo_pipeline.requests.queue import Request, Status, Step
from halo_pipeline.requests.rules import RequestRefused


def apply_account(ctx: RunContext, request: Request) -> None:
    if request.action == "create_account":
        create_account(ctx, request)
    else:
        set_disabled(ctx, request, request.action == "disable_account")


def create_account(ctx: RunContext, request: Request) -> None:
    """Create the agent unless one already has the email: the email is what makes a create
    safe to repeat, since Halo would happily make a second agent."""
    if not request.account_name or not request.account_email:
        ctx.fail([request], "create_account needs account_name and account_email.")
        return
    if request.account_team and request.account_team not in ctx.catalog.team_names:
        ctx.fail([request], f"Unknown team {request.account_team!r}: not in the last sync.")
        return
    payload: dict[str, Any] = {
        "name": request.account_name,
        "email": request.account_email,
        "is_agent": True,
    }
    if request.account_team:
        payload["team"] = request.account_team
    existing = _agent_with_email(ctx, request.account_email)
    if not ctx.settings.enabled:
        if existing:
            dry = f"(dry run) agent {existing.id} already has this email"
            ctx.finish([Step(request, Status.ALREADY_SATISFIED, dry)])
        else:
            ctx.record([Step(request, Status.PLANNED, DRY_RUN, {"plan": post_text(payload)})])
        return
    [request] = ctx.ticketed([request])
    if existing is None:
        [request] = ctx.record(
            [Step(request, Status.APPLYING, post_text(payload), {"plan": post_text(payload)})]
        )
        created = ctx.client.save_agent(payload)
        live = ctx.verify(created.id, lambda agent: _same_email(agent, request.account_email))
        if not _same_email(live, request.account_email):
            ctx.fail(
                [request],
                f"HaloITSM created agent {live.id} but it reads back with the email "
                f"{live.email!r}, not {request.account_email!r}: check the agent in HaloITSM.",
            )
            return
        outcome, detail = Status.APPLIED, f"created agent {live.id}"
    else:
        # List rows may lack roles and teams: read the whole agent for the warehouse.
        live = ctx.client.get_agent(existing.id)
        ctx.touch(live.id)
        if request.status == Status.APPLYING:
            outcome, detail = Status.APPLIED, f"agent {live.id} created by an interrupted run"
        else:
            outcome, detail = Status.ALREADY_SATISFIED, f"agent {live.id} has this email"
    ctx.finish([Step(request, outcome, detail, {"agent_id": live.id})])


def set_disabled(ctx: RunContext, request: Request, disabled: bool) -> None:
    try:
        agent = ctx.catalog.agent(request.agent_id)
    except RequestRefused as refused:
        ctx.fail([request], str(refused))
        return
    try:
        live = ctx.client.get_agent(agent.agent_id)
    except HaloNotFoundError:
        ctx.fail([request], f"Agent {agent.agent_id} ({agent.name}) no longer exists in HaloITSM.")
        return
    word = "disabled" if disabled else "enabled"
    payload = {"id": agent.agent_id, "isdisabled": disabled}
    if not ctx.settings.enabled:
        if live.isdisabled == disabled:
            ctx.finish([Step(request, Status.ALREADY_SATISFIED, f"(dry run) already {word}")])
        else:
            ctx.record([Step(request, Status.PLANNED, DRY_RUN, {"plan": post_text(payload)})])
        return
    [request] = ctx.ticketed([request])
    if live.isdisabled != disabled:
        if request.status != Status.APPLYING:
            [request] = ctx.record(
                [Step(request, Status.APPLYING, post_text(payload), {"plan": post_text(payload)})]
            )
        ctx.client.save_agent(payload)
        live = ctx.verify(agent.agent_id, lambda a: a.isdisabled == disabled)
    else:
        ctx.touch(live.id)
    if live.isdisabled != disabled:
        reason = f"HaloITSM accepted the write but agent {agent.agent_id} is still not {word}."
        ctx.fail([request], reason)
    elif request.status == Status.APPLYING:
        ctx.finish([Step(request, Status.APPLIED, f"verified: agent {agent.agent_id} is {word}")])
    else:
        already = f"nothing to change: agent {agent.agent_id} is already {word}"
        ctx.finish([Step(request, Status.ALREADY_SATISFIED, already)])


def _agent_with_email(ctx: RunContext, email: str) -> Agent | None:
    matches = ctx.client.list_agents_where(search=email)
    return next((agent for agent in matches if _same_email(agent, email)), None)


def _same_email(agent: Agent, email: str | None) -> bool:
    return (agent.email or "").casefold() == (email or "").casefold()
