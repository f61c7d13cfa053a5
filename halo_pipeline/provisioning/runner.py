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
from datetime import UTC, datetime
from typing import Any

from halo_pipeline.halo import (
    HaloAuthError,
    HaloClient,
    HaloConfigError,
    HaloError,
    HaloRateLimitError,
    HaloTenantError,
    HaloUnreachableError,
)
from halo_pipeline.halo.errors import HaloBudgetExhaustedError
from halo_pipeline.provisioning.accounts import apply_account
from halo_pipeline.provisioning.catalog import Catalog, Entitlement, RequestRefused
from halo_pipeline.provisioning.context import RunContext, RunSummary
from halo_pipeline.provisioning.manual import confirm, open_manual, poll_ticket
from halo_pipeline.provisioning.memberships import apply_memberships
from halo_pipeline.provisioning.queue import (
    OpenWarehouse,
    Queue,
    Request,
    Status,
    adopt_sql_filed,
    ensure_provisioning_schema,
    load_requests,
)
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import TicketDesk
from halo_pipeline.provisioning.work import load_work
from halo_pipeline.sql_models.project import build_models, load_project
from halo_pipeline.warehouse.halo_tables import record_sync_start, replace_agents

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

    def run(self) -> RunSummary:
        with self._open() as con:
            ensure_provisioning_schema(con)
            adopt_sql_filed(con, self._run_id)
            catalog = Catalog.load(con)
            work = load_work(con, self._settings)
        queue = Queue(self._open, self._run_id)
        ctx = RunContext(
            client=self._client,
            queue=queue,
            tickets=TicketDesk(self._client, queue, self._settings, catalog.ticket_types),
            catalog=catalog,
            settings=self._settings,
            log=self._log,
            sleep=self._sleep,
        )
        mode = "on" if self._settings.enabled else "off: a dry run, nothing is written"
        self._log.info(f"{len(work.todo)} requests to look at; provisioning {mode}")

        # Finished by a run that died before it closed their tickets.
        self._guarded(ctx, work.unclosed, lambda: ctx.tickets.close(
            [(r, ctx.ticket_text(r)) for r in work.unclosed]
        ))  # fmt: skip
        memberships: dict[int, list[tuple[Request, Entitlement]]] = defaultdict(list)
        for request in work.todo:
            if request.status == Status.AWAITING_TICKET:
                self._guarded(ctx, [request], lambda r=request: poll_ticket(ctx, r))
            elif request.status == Status.DONE:
                confirm(ctx, request, work.last_full_sync)
            elif request.action in ("grant", "revoke"):
                try:
                    agent = catalog.agent(request.agent_id)
                    entitlement = catalog.entitlement(request.entitlement_id)
                except RequestRefused as refused:
                    ctx.fail([request], str(refused))
                    continue
                if entitlement.entitlement_id in self._settings.manual_entitlements:
                    manual = lambda r=request, e=entitlement: open_manual(ctx, r, e)  # noqa: E731
                    self._guarded(ctx, [request], manual)
                else:
                    memberships[agent.agent_id].append((request, entitlement))
            else:
                self._guarded(ctx, [request], lambda r=request: apply_account(ctx, r))
        for agent_id, items in sorted(memberships.items()):
            self._guarded(
                ctx,
                [request for request, _ in items],
                lambda a=agent_id, i=items: apply_memberships(ctx, a, i),
            )
        if ctx.verified:
            self._refresh(ctx)
        return ctx.summary

    def _guarded(self, ctx: RunContext, requests: list[Request], work: Callable[[], Any]) -> None:
        """One unit of work: a HaloITSM error fails its unfinished requests, not the run,
        unless it is about the connection itself."""
        try:
            work()
        except RUN_LEVEL_ERRORS:
            raise
        except (HaloError, RequestRefused) as error:
            self._log.warning(f"requests {[r.request_id for r in requests]}: {error}")
            ids = [r.request_id for r in requests if not ctx.is_final(r)]
            if ids:
                with self._open() as con:
                    current = load_requests(con, "list_contains(?, request_id)", [ids])
                ctx.fail(current, str(error), close_tickets=False)

    def _refresh(self, ctx: RunContext) -> None:
        """Bring the agents this run read back into the warehouse as a targeted sync and
        rebuild the access model, so a query right after the run sees the changes."""
        agents = sorted(ctx.verified.values(), key=lambda agent: agent.id)
        with self._open() as con:
            sync_id = record_sync_start(
                con,
                dagster_run_id=self._run_id,
                source_url=self._client.settings.base_url,
                kind="targeted",
            )
            replace_agents(
                con,
                agents,
                sync_id=sync_id,
                synced_at=datetime.now(UTC),
                api_requests=self._client.request_count,
            )
            build_models(con, load_project())
        ctx.summary.sync_id = sync_id
        ctx.summary.refreshed_agents = [agent.id for agent in agents]
        self._log.info(f"targeted sync {sync_id}: {len(agents)} agents re-read, access rebuilt")
