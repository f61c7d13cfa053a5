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
from pathlib import Path
from typing import Any

from halo_pipeline.halo import HaloClient, HaloConfigError, HaloError, HaloMalformedResponseError
from halo_pipeline.halo.errors import RUN_LEVEL_ERRORS, HaloTransientError
from halo_pipeline.halo.models import Ticket
from halo_pipeline.policy.approvals import (
    NO_APPROVAL,
    Honoured,
    approval_events,
    halo_approval_spent,
    honoured,
    ticket_binding,
)
from halo_pipeline.policy.gate import Gate
from halo_pipeline.policy.halo_approvals import Approved, HaloApprovers, Rejected
from halo_pipeline.policy.revokes import file_policy_revokes
from halo_pipeline.provisioning.accounts import apply_account
from halo_pipeline.provisioning.context import RunContext, RunSummary
from halo_pipeline.provisioning.intake import mismatch, requesters, take_in
from halo_pipeline.provisioning.manual import confirm, open_manual, poll_ticket
from halo_pipeline.provisioning.memberships import apply_memberships
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import TicketDesk
from halo_pipeline.provisioning.work import Work, load_work
from halo_pipeline.requests import rules
from halo_pipeline.requests.catalog import Catalog, Entitlement
from halo_pipeline.requests.identities import agent_with_email, normal
from halo_pipeline.requests.queue import (
    Queue,
    Request,
    Status,
    Step,
    adopt_sql_filed,
    attempt_failed,
    claim,
    database_now,
    load_requests,
    queue_id,
)
from halo_pipeline.requests.rules import RequestRefused, bounds_problem
from halo_pipeline.requests.signing import KeyRing
from halo_pipeline.warehouse import OpenWarehouse, WarehouseError
from halo_pipeline.warehouse.locks import applier_lock


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
        warehouse_path: str | Path | None = None,
        ring: KeyRing | None = None,
    ) -> None:
        self._client = client
        self._open = open_warehouse
        self._settings = settings
        self._run_id = run_id
        self._log = logger or logging.getLogger(__name__)
        self._sleep = sleep
        self._path = warehouse_path
        self._ring = ring
        self._approvals: dict[int, Honoured | str] = {}
        """Per request the policy wants approved: the approval that counts, else why none."""
        self._via = "cli"
        """The access policy's `approval.via`, as this run resolved it."""
        self._halo: HaloApprovers | None = None
        """Under `approval.via: halo` or `either`: who may approve, as HaloITSM agents."""
        self._from_tickets: set[int] = set()
        """Requests filed from tickets people opened in HaloITSM."""
        self._tickets: dict[int, Ticket] = {}
        """The ticket of each request whose ticket this run read, as HaloITSM has it now."""
        self.summary = RunSummary()
        """What this run did so far: kept when it stops early, so the caller still refreshes
        the agents it touched."""

    def run(self) -> RunSummary:
        """Apply what is due, as the only run applying requests to this warehouse; when
        another holds that place, write nothing and say so (`summary.skipped`)."""
        with applier_lock(self._path) as holder:
            if holder is not None:
                self.summary.skipped = (
                    f"{holder} is applying requests to this warehouse; this run wrote nothing. "
                    "What is left is taken by the next run."
                )
                self._log.info(self.summary.skipped)
                return self.summary
            return self._run()

    def _run(self) -> RunSummary:
        # Decided from HaloITSM, not from what the warehouse says of it: a role renamed in
        # halo.roles must not make a privileged role an ordinary one.
        gate = Gate.of(
            [(r.id, r.id_int, r.name) for r in self._client.list_roles()], "HaloITSM now"
        )
        via = self._via = gate.resolved.policy.approval_via if gate.resolved else "cli"
        if via != "cli":
            self._halo = HaloApprovers(self._client, gate, self._settings.approval_results)
        if via == "halo":
            self._halo.check_setup()  # type: ignore[union-attr]
            if not self._settings.ticketing:
                raise HaloConfigError(
                    "The access policy takes approvals from HaloITSM (approval.via: halo), "
                    "which needs a ticket for every request: set HALO_TICKETING=true."
                )
        # Tickets people opened become requests before the queue is read: one run, whole loop.
        intake = take_in(self._client, self._open, self._settings, self._log)
        if intake.filed or intake.refused:
            self._log.info(f"from HaloITSM tickets: filed requests {intake.filed}, "
                           f"refused tickets {sorted(intake.refused)}")  # fmt: skip
        with self._open() as con:
            adopt_sql_filed(con, self._run_id)
            filed = file_policy_revokes(con, gate, self._ring, self._log)
            if filed:
                self._log.info(
                    f"filed revokes {filed.expiries} (expired), {filed.leavers} (leavers)"
                )
            catalog = Catalog.load(con)
            work = load_work(con, self._settings, approvals_in_halo=self._halo is not None)
            claim(con, [r.request_id for r in work.todo], self._run_id)
            self._from_tickets = {request_id for (request_id,) in con.execute(
                "SELECT request_id FROM provisioning.request_tickets WHERE request_id IS NOT NULL"
            ).fetchall()}  # fmt: skip
            tag_id = queue_id(con)
            now = database_now(con)
            waiting = [r for r in work.todo if gate.needs_approval(r.action, r.entitlement_id)
                       and via != "halo"]  # fmt: skip
            # People compared as HaloITSM agents: each requester looked up once per run.
            agents = {who: agent_with_email(self._client, who)
                      for who in {r.requested_by for r in waiting}}  # fmt: skip
            self._approvals = {
                r.request_id: honoured(con, self._ring, gate, r, agents[r.requested_by], now)
                for r in waiting
            }
        self._ticket_askers_may_not_approve(waiting)
        # Owed by a run that died before its refresh: this run's refresh pays it.
        self.summary.touched_agents.update(work.owed.agent_ids)
        self.summary.access_behind = bool(work.owed.loaded_syncs)
        queue = Queue(self._open, self._run_id, self._ring)
        queue.approvals = {
            request_id: approval.signature
            for request_id, approval in self._approvals.items()
            if isinstance(approval, Honoured)
        }
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

    def _ticket_askers_may_not_approve(self, waiting: list[Request]) -> None:
        """A request a person filed on a ticket was asked for by whoever HaloITSM says asked
        there (the agent the end user's record belongs to, the agent who logged it): their
        approval on the command line counts no more than in HaloITSM."""
        for request in waiting:
            approval = self._approvals.get(request.request_id)
            if not (isinstance(approval, Honoured) and request.ticket_id
                    and request.request_id in self._from_tickets):  # fmt: skip
                continue
            asked = requesters(self._client, self._client.get_ticket(request.ticket_id))
            if approval.by.agent_id in asked:
                self._approvals[request.request_id] = (
                    f"the approval by {approval.by.label} does not count: they asked for this "
                    f"request on ticket {request.ticket_id}; nobody approves their own request"
                )

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
                continue
            # Guarded: opening the ticket HaloITSM's approvers answer on may fail for this
            # request alone (a ticket type HaloITSM refuses, APP03).
            cleared: list[Request | None] = []
            self._guarded(ctx, [request], partial(self._clear, ctx, request, cleared))
            if not cleared or cleared[0] is None:
                continue
            request = cleared[0]  # noqa: PLW2901 - approved in HaloITSM just now, as recorded
            if request.status == Status.AWAITING_TICKET:
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

    def _clear(self, ctx: RunContext, request: Request, out: list[Request | None]) -> None:
        out.append(self._cleared(ctx, request))

    def _cleared(self, ctx: RunContext, request: Request) -> Request | None:
        """The request as it goes ahead in this run (approved in HaloITSM just now, or as it
        was), or None when the access policy holds it: it waits for an approval (or for a
        usable policy, or for the signing key), or the policy refuses it (it fails)."""
        gate = ctx.gate
        # `applying` too: a row set to it with SQL must not skip the rules. One that really
        # was mid-write when its run died met them before it got there, and meets them again.
        if request.status not in (Status.PENDING, Status.PLANNED, Status.APPLYING,
                                  Status.AWAITING_APPROVAL):  # fmt: skip
            return request
        if self._ticket_changed(ctx, request):
            return None
        too_long = bounds_problem(request)
        if too_long:  # a row nobody could plan fails alone, before anything else
            self._guarded(ctx, [request], partial(ctx.fail, [request], too_long))
            return None
        if request.action != "grant" and not gate.needs_approval(request.action, None):
            return request
        if gate.blocked and request.status != Status.APPLYING:  # a write may have landed
            self._log.warning(f"request {request.request_id} waits: {gate.blocked}")
            return None
        ends = request.expires_at or request.valid_for
        if ends is not None and self._ring is None and request.status != Status.APPLYING:
            # Its end is signed when it is applied: without the key it could be made endless.
            self._log.warning(
                f"request {request.request_id} waits for the signing key: its end "
                "is signed when it is applied (run `halo-pipeline key init`)"
            )
            return None
        too_long = gate.duration_problem(request.action, request.entitlement_id, ends,
                                         request.created_at)  # fmt: skip
        if too_long:  # before any approval: nobody should approve what cannot be granted
            self._guarded(ctx, [request], partial(ctx.fail, [request], too_long))
            return None
        if not gate.needs_approval(request.action, request.entitlement_id):
            return request
        approval = self._approvals.get(request.request_id)
        if isinstance(approval, Honoured):
            return request
        why = approval or NO_APPROVAL
        if self._halo is not None and self._halo.results is not None:
            answer = self._halo_answer(ctx, request)
            if isinstance(answer, Request):
                return answer
            if answer is True:
                return None
            why = answer if self._via == "halo" else f"{why}; in HaloITSM: {answer}"
        self._log.warning(f"request {request.request_id} waits for approval: {why}")
        ctx.record([Step(request, Status.AWAITING_APPROVAL,
                         f"{why} (approve {request.request_id})")])  # fmt: skip
        return None

    def _halo_answer(self, ctx: RunContext, request: Request) -> Request | str | bool:
        """HaloITSM's approval process on the request's ticket, read now: the request, approved
        (a signed approval by the HaloITSM agent, as the evidence counts one), True when it was
        rejected (denied, the ticket answered), else why it waits. A request filed another way
        first gets the ticket its approvers answer on."""
        assert self._halo is not None
        if request.ticket_id is None and ctx.settings.enabled and ctx.settings.ticketing:
            [request] = ctx.ticketed([request])
        ticket = self._tickets.get(request.request_id)
        if ticket is None or ctx.tickets.opened_for(ticket, request):
            with ctx.queue.open_warehouse() as con:
                unbound = ticket_binding(con, self._ring, request)
            if unbound:
                return unbound
        # Who asked, as HaloITSM has them: from the ticket a person opened, or the requester.
        asked_by = requesters(ctx.client, ticket) if ticket is not None else set()
        asker = agent_with_email(ctx.client, request.requested_by)
        if asker is not None:
            asked_by.add(asker)
        verdict = self._halo.verdict(request, asked_by)
        if isinstance(verdict, Rejected):
            row = verdict.row  # recorded as a command's denial is: who, as an agent, and why
            ctx.finish([Step(request, Status.DENIED, verdict.why, {"error": verdict.why},
                             signed={"kind": "denial", "via": "halo", "by": row.agent_id,
                                     "note": row.approver_note},
                             actor=normal(row.emailaddress) or None, actor_agent_id=row.agent_id,
                             actor_note=row.approver_note)])  # fmt: skip
            return True
        if isinstance(verdict, Approved):
            row, by = verdict.row, verdict.by
            with ctx.queue.open_warehouse() as con:
                spent = halo_approval_spent(con, self._ring, request, row)
            if spent:
                return spent
            note = f": {row.approver_note}" if row.approver_note else ""
            [approved] = ctx.record([Step(
                request, Status.PENDING, f"approved in HaloITSM by {by.label} at "
                f"{row.dateapproved} on ticket {row.ticket_id} (approval row {row.seq}){note}",
                signed={"kind": "approval", "via": "halo", "by": by.agent_id,
                        "by_email": by.email, "by_name": by.name, "note": row.approver_note,
                        "ticket_id": row.ticket_id, "row": row.seq, "at_halo": row.dateapproved},
                actor=by.email, actor_agent_id=by.agent_id, actor_note=row.approver_note,
            )])  # fmt: skip
            with ctx.queue.open_warehouse() as con:
                _, _, signature = approval_events(con, request.request_id)[0]
            if signature:  # one approval, one change: marked used and done as a command's is
                ctx.queue.approvals[request.request_id] = signature
            return approved
        return verdict

    def _ticket_changed(self, ctx: RunContext, request: Request) -> bool:
        """Read the ticket of a request filed from one, or of one HaloITSM's approvers answer
        on, as it is now. A ticket a person opened that no longer asks what the request says
        (edited since, or the request changed in the warehouse) stops it: nothing is written,
        and the ticket is told what differs (and closed)."""
        wants_approval = self._halo is not None and ctx.gate.needs_approval(
            request.action, request.entitlement_id
        )
        if request.ticket_id is None or not (
            request.request_id in self._from_tickets or wants_approval
        ):
            return False
        ticket = ctx.client.get_ticket(request.ticket_id)
        self._tickets[request.request_id] = ticket
        if ctx.tickets.opened_for(ticket, request):
            return False  # the pipeline's own: a signed statement binds it (ticket_binding)
        differs = mismatch(ctx.catalog, ctx.settings.request_fields, ticket, request)
        if not differs:
            return False
        self._guarded(ctx, [request], partial(ctx.fail, [request], (
            f"Ticket {ticket.id} no longer asks what request {request.request_id} says "
            f"({differs}): nothing was written, and a new approval is needed: open a new "
            "access request.")))  # fmt: skip
        return True

    def _guarded(self, ctx: RunContext, requests: list[Request], work: Callable[[], Any]) -> None:
        """One unit of work. Errors about the connection stop the run. HaloITSM refusing
        something fails the unit's unfinished requests; a passing fault (5xx, a garbled answer)
        counts a failed attempt against them, to be tried again."""
        try:
            work()
        except (*RUN_LEVEL_ERRORS, WarehouseError):
            raise
        except Exception as error:  # noqa: BLE001 - what nobody foresaw fails its unit alone
            if not isinstance(error, HaloError | RequestRefused):
                self._log.exception(f"requests {[r.request_id for r in requests]}")
                error = RequestRefused(
                    f"It could not be carried out ({type(error).__name__}: {error}); if it was "
                    "being applied, check the agent in HaloITSM."
                )
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
