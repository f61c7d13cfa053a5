"""One provisioning run: every actionable request, planned from HaloITSM as it is now.

With HALO_PROVISIONING=true a run reads each agent, writes the whole `roles` or `teams` list
back once for all of that agent's requests, and reads it again until the change shows (Halo
may lag) or it is clear the change did not take. Without it, the run records the exact write it
would make and sends nothing. Each step is committed to the queue before the next goes to
HaloITSM, so a run killed anywhere is finished by the next without repeating a write or
opening a second ticket. Plain Python: the Dagster op only wires it up.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from halo_pipeline.halo import (
    HaloAuthError,
    HaloClient,
    HaloConfigError,
    HaloError,
    HaloMalformedResponseError,
    HaloRateLimitError,
    HaloTenantError,
    HaloUnreachableError,
)
from halo_pipeline.halo.errors import HaloBudgetExhaustedError, HaloTransientError
from halo_pipeline.policy.decisions import approver_of
from halo_pipeline.policy.gate import Gate
from halo_pipeline.policy.revokes import file_policy_revokes
from halo_pipeline.provisioning.accounts import apply_account
from halo_pipeline.provisioning.context import RunContext, RunSummary
from halo_pipeline.provisioning.manual import confirm, open_manual, poll_ticket
from halo_pipeline.provisioning.memberships import apply_memberships
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import TicketDesk
from halo_pipeline.provisioning.work import Work, load_work
from halo_pipeline.requests import rules
from halo_pipeline.requests.catalog import Catalog, Entitlement
from halo_pipeline.requests.identities import grantee
from halo_pipeline.requests.queue import (
    Queue,
    Request,
    Status,
    Step,
    adopt_sql_filed,
    attempt_failed,
    load_requests,
    queue_id,
)
from halo_pipeline.requests.rules import RequestRefused
from halo_pipeline.warehouse import OpenWarehouse

# Errors about the connection, not about one request: the run stops and the queue waits for
# the next run (the job's retries, or the sensor's next tick).
RUN_LEVEL_ERRORS = (
    HaloAuthError,
    HaloTenantError,
    HaloUnreachableError,
    HaloConfigError,
    HaloBudgetExhaustedError,
    HaloRateLimitError,
)


class Provisioner:
    def __init__(
        self,
        client: HaloClient,
        open_warehouse: OpenWarehouse,
        settings: ProvisioningSettings,
        *,
        run_id: str | None = None,
        logger: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._open = open_warehouse
        self._settings = settings
        self._run_id = run_id
        self._log = logger or logging.getLogger(__name__)
        self._sleep = sleep
        self._approvals: dict[int, str | None] = {}
        """Per request the policy wants approved: None if its approval counts, else why not."""
        self.summary = RunSummary()
        """What this run did so far: kept when it stops early, so the caller still refreshes
        the agents it touched."""

    def run(self) -> RunSummary:
        with self._open() as con:
            adopt_sql_filed(con, self._run_id)
            gate = Gate.load(con)
            filed = file_policy_revokes(con, gate)
            if filed:
                self._log.info(
                    f"filed revokes {filed.expiries} (expired), {filed.leavers} (leavers)"
                )
            catalog = Catalog.load(con)
            work = load_work(con, self._settings)
            tag_id = queue_id(con)
            self._approvals = {
                r.request_id: _approval(con, gate, r)
                for r in work.todo
                if gate.needs_approval(r.action, r.entitlement_id)
            }
        # Owed by a run that died before its refresh: this run's refresh pays it.
        self.summary.touched_agents.update(work.owed.agent_ids)
        self.summary.access_behind = bool(work.owed.loaded_syncs)
        queue = Queue(self._open, self._run_id)
        ctx = RunContext(
            client=self._client,
            queue=queue,
            tickets=TicketDesk(self._client, queue, self._settings, catalog.ticket_types, tag_id),
            catalog=catalog,
            settings=self._settings,
            log=self._log,
            sleep=self._sleep,
            summary=self.summary,
            gate=gate,
        )
        mode = "on" if self._settings.enabled else "off: a dry run, nothing is written"
        self._log.info(f"{len(work.todo)} requests to look at; provisioning {mode}")
        self._work_through(ctx, work)
        return ctx.summary

    def _work_through(self, ctx: RunContext, work: Work) -> None:
        # Finished by a run that stopped before it closed their tickets.
        for request in work.unclosed:
            self._guarded(ctx, [request], partial(ctx.tickets.close, [request], look_first=True))
        memberships: dict[int, list[tuple[Request, Entitlement]]] = defaultdict(list)
        for request in work.todo:
            # Filed with SQL, a request meets the command's rules here; it fails alone.
            unusable = request.status in (Status.PENDING, Status.PLANNED) and rules.problem(
                request.action, request.reason, request.requested_by, request.account_email
            )
            if unusable:
                self._guarded(ctx, [request], partial(ctx.fail, [request], unusable))
            elif self._held_by_policy(ctx, request):
                continue
            elif request.status == Status.AWAITING_TICKET:
                self._guarded(ctx, [request], partial(poll_ticket, ctx, request))
            elif request.status == Status.DONE:
                self._guarded(ctx, [request], partial(confirm, ctx, request, work.last_full_sync))
            elif request.action in ("grant", "revoke"):
                try:
                    agent = ctx.catalog.agent(request.agent_id)
                    entitlement = ctx.catalog.entitlement(request.entitlement_id)
                except RequestRefused as refused:
                    self._guarded(ctx, [request], partial(ctx.fail, [request], str(refused)))
                    continue
                if entitlement.entitlement_id in self._settings.manual_entitlements:
                    self._guarded(ctx, [request], partial(open_manual, ctx, request, entitlement))
                else:
                    memberships[agent.agent_id].append((request, entitlement))
            else:
                self._guarded(ctx, [request], partial(apply_account, ctx, request))
        for agent_id, items in sorted(memberships.items()):
            requests = [request for request, _ in items]
            self._guarded(ctx, requests, partial(apply_memberships, ctx, agent_id, items))

    def _held_by_policy(self, ctx: RunContext, request: Request) -> bool:
        """Whether the access policy keeps the request from going ahead in this run: it waits
        for an approval (or for a usable policy), or the policy refuses it (it fails)."""
        gate = ctx.gate
        # `applying` too: a row set to it with SQL must not skip the rules. One that really
        # was mid-write when its run died met them before it got there, and meets them again.
        if request.status not in (Status.PENDING, Status.PLANNED, Status.APPLYING):
            return False
        if request.action != "grant" and not gate.needs_approval(request.action, None):
            return False
        if gate.blocked and request.status != Status.APPLYING:  # a write may have landed
            self._log.warning(f"request {request.request_id} waits: {gate.blocked}")
            return True
        ends = request.expires_at or request.valid_for
        too_long = gate.duration_problem(request.action, request.entitlement_id, ends,
                                         request.created_at)  # fmt: skip
        if too_long:  # before any approval: nobody should approve what cannot be granted
            self._guarded(ctx, [request], partial(ctx.fail, [request], too_long))
            return True
        approval = self._approvals.get(request.request_id)
        if approval == NO_APPROVAL:
            why = f"the access policy asks for an approval first (approve {request.request_id})"
            ctx.record([Step(request, Status.AWAITING_APPROVAL, why)])
            return True
        if approval:  # why the approval recorded does not count
            self._guarded(ctx, [request], partial(ctx.fail, [request], approval))
            return True
        return False

    def _guarded(self, ctx: RunContext, requests: list[Request], work: Callable[[], Any]) -> None:
        """One unit of work. Errors about the connection stop the run. HaloITSM refusing
        something fails the unit's unfinished requests; a passing fault (5xx, a garbled answer)
        counts a failed attempt against them, to be tried again."""
        try:
            work()
        except RUN_LEVEL_ERRORS:
            raise
        except (HaloError, RequestRefused) as error:
            self._log.warning(f"requests {[r.request_id for r in requests]}: {error}")
            ids = [r.request_id for r in requests if not ctx.is_final(r)]
            if not ids:
                return
            with self._open() as con:
                current = load_requests(con, "list_contains(?, request_id)", [ids])
            if isinstance(error, HaloTransientError | HaloMalformedResponseError):
                ctx.record([attempt_failed(r, f"interrupted: {error}") for r in current])
            else:
                ctx.fail(current, str(error), close_tickets=False)


NO_APPROVAL = "no approval"


def _approval(con: Any, gate: Gate, request: Request) -> str | None:
    """For a request the policy wants approved: None when its approval counts, NO_APPROVAL
    when it has none (filed with SQL, say), else why the approval recorded does not count."""
    approver = approver_of(con, request.request_id)
    if approver is None:
        return NO_APPROVAL
    problem = gate.approval_problem(approver, request.requested_by, grantee(con, request))
    return f"The approval does not count: {problem}" if problem else None
