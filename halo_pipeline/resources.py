"""Dagster resources: the HaloITSM API and the DuckDB warehouse, configured from `HALO_*`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from halo_pipeline.halo import HaloClient, HaloSettings
from halo_pipeline.provisioning.settings import ProvisioningSettings, names, ticket_fields
from halo_pipeline.warehouse import DEFAULT_PATH, budget_path, connect


class HaloResource(dg.ConfigurableResource):
    """A HaloITSM instance reached with an API application's client credentials."""

    base_url: str = Field(description="HaloITSM instance; the API is at {base_url}/api.")
    client_id: str
    client_secret: str = Field(description="Set from HALO_CLIENT_SECRET; never logged.")
    auth_url: str | None = Field(default=None, description="Defaults to {base_url}/auth.")
    tenant: str | None = None
    scope: str = "all"
    max_requests_per_5_min: int = Field(
        default=270, description="HALO_MAX_REQUESTS_PER_5_MIN: below Halo's 300."
    )
    rate_limit_max_wait_s: int = Field(
        default=330, description="HALO_RATE_LIMIT_MAX_WAIT_S: longest wait for a 429 to clear."
    )
    budget_path: str | None = Field(
        default=None,
        description="The request budget every process of the installation shares (a SQLite "
        "file beside the warehouse).",
    )

    def settings(self) -> HaloSettings:
        return HaloSettings(
            base_url=self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            auth_url=self.auth_url,
            tenant=self.tenant,
            scope=self.scope,
            max_requests_per_5_min=self.max_requests_per_5_min,
            rate_limit_max_wait_s=self.rate_limit_max_wait_s,
            budget_path=self.budget_path,
        )

    @contextmanager
    def get_client(self, logger: Any = None) -> Iterator[HaloClient]:
        with HaloClient(self.settings(), logger=logger) as client:
            yield client


class DuckDBWarehouse(DuckDBResource):
    """`DuckDBResource` with the warehouse's connection discipline.

    The stock resource always opens read-write, retries the connect for about 100 s and leaves
    the connection open when the body raises; this one can open read-only, waits for a bounded
    time, refuses a file name that would shadow a schema, and always closes.
    """

    @contextmanager
    def get_connection(  # type: ignore[override]
        self, read_only: bool = False, wait_s: float = 60.0
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(
            self.database, read_only=read_only, wait_s=wait_s, config=self.connection_config
        ) as con:
            yield con


class ProvisioningResource(dg.ConfigurableResource):
    """What provisioning may do: write to HaloITSM or only plan, and how to ticket."""

    provisioning: str = Field(
        default="false", description="HALO_PROVISIONING: 'true' writes to HaloITSM."
    )
    ticketing: str = Field(
        default="false", description="HALO_TICKETING: 'true' opens a ticket per request."
    )
    ticket_type: str | None = Field(default=None, description="HALO_TICKET_TYPE: id or name.")
    ticket_fields: str = Field(
        default="", description="HALO_TICKET_FIELDS: a JSON object merged into every ticket."
    )
    manual_entitlements: str = Field(
        default="",
        description="HALO_MANUAL_ENTITLEMENTS: comma-separated entitlement ids a person changes.",
    )
    ticket_done_statuses: str = "Completed,Closed"
    ticket_failed_statuses: str = "Cancelled"
    ticket_open_status: str = "New"
    ticket_closed_status: str = "Closed"

    def settings(self) -> ProvisioningSettings:
        return ProvisioningSettings(
            enabled=self.provisioning.strip().lower() == "true",
            ticketing=self.ticketing.strip().lower() == "true",
            ticket_type=self.ticket_type or None,
            ticket_fields=ticket_fields(self.ticket_fields),
            manual_entitlements=names(self.manual_entitlements),
            done_statuses=names(self.ticket_done_statuses),
            failed_statuses=names(self.ticket_failed_statuses),
            open_status=self.ticket_open_status,
            closed_status=self.ticket_closed_status,
        )


def _optional(name: str) -> Any:
    """`EnvVar(name)` when the variable is set, else None (so the field takes its default)."""
    return dg.EnvVar(name) if os.getenv(name) else None


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources as `dagster dev` and the CLI use them; required variables are `EnvVar`s,
    so a missing one fails the run with an error naming it."""
    halo: dict[str, Any] = {
        "base_url": dg.EnvVar("HALO_BASE_URL"),
        "client_id": dg.EnvVar("HALO_CLIENT_ID"),
        "client_secret": dg.EnvVar("HALO_CLIENT_SECRET"),
        "auth_url": _optional("HALO_AUTH_URL"),
        "tenant": _optional("HALO_TENANT"),
        "scope": _optional("HALO_SCOPE"),
        "max_requests_per_5_min": (
            dg.EnvVar.int("HALO_MAX_REQUESTS_PER_5_MIN")
            if os.getenv("HALO_MAX_REQUESTS_PER_5_MIN")
            else None
        ),
        "rate_limit_max_wait_s": (
            dg.EnvVar.int("HALO_RATE_LIMIT_MAX_WAIT_S")
            if os.getenv("HALO_RATE_LIMIT_MAX_WAIT_S")
            else None
        ),
        "budget_path": budget_path(os.getenv("HALO_DUCKDB_PATH") or DEFAULT_PATH),
    }
    provisioning = {
        "provisioning": _optional("HALO_PROVISIONING"),
        "ticketing": _optional("HALO_TICKETING"),
        "ticket_type": _optional("HALO_TICKET_TYPE"),
        "ticket_fields": _optional("HALO_TICKET_FIELDS"),
        "manual_entitlements": _optional("HALO_MANUAL_ENTITLEMENTS"),
        "ticket_done_statuses": _optional("HALO_TICKET_DONE_STATUSES"),
        "ticket_failed_statuses": _optional("HALO_TICKET_FAILED_STATUSES"),
        "ticket_open_status": _optional("HALO_TICKET_OPEN_STATUS"),
        "ticket_closed_status": _optional("HALO_TICKET_CLOSED_STATUS"),
    }
    return {
        "halo": HaloResource(**{k: v for k, v in halo.items() if v is not None}),
        "provisioning": ProvisioningResource(
            **{k: v for k, v in provisioning.items() if v is not None}
        ),
        "warehouse": DuckDBWarehouse(database=_optional("HALO_DUCKDB_PATH") or DEFAULT_PATH),
    }
