"""The resources every stage shares: HaloITSM and the DuckDB warehouse.

Settings are read when a run starts, not when the definitions load: a field left unset takes
its `HALO_*` variable at that moment (`environment.py` says how), so a deployment (or a test)
changes the environment without reloading the code location. The secret is an `EnvVar`, so the
UI's resource config shows its name, never its value.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Token
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from halo_pipeline.halo import HaloClient, HaloSettings
from halo_pipeline.warehouse import budget_path, configured_path, connect
from halo_pipeline.warehouse.locks import HOLDER


class DuckDBWarehouse(DuckDBResource):
    """`DuckDBResource` with the warehouse's connection discipline.

    The stock resource always opens read-write, retries the connect for about 100 s and leaves
    the connection open when the body raises; this one can open read-only, waits for a bounded
    time, refuses a file name that would shadow a schema, migrates an older warehouse before
    writing, and always closes. An empty `database` is HALO_DUCKDB_PATH when the run starts.
    """

    database: str = Field(default="", description="The warehouse; empty: HALO_DUCKDB_PATH.")
    _holder: Token[str] | None = PrivateAttr(default=None)

    @property
    def path(self) -> str:
        return self.database or configured_path()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # A writer that waits for this run is told which run it waits for.
        run = context.run
        if run is not None:
            self._holder = HOLDER.set(f"{run.job_name} run {run.run_id[:8]}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._holder is not None:
            HOLDER.reset(self._holder)
            self._holder = None

    @contextmanager
    def get_connection(  # type: ignore[override]
        self, read_only: bool = False, wait_s: float = 60.0
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(
            self.path,
            read_only=read_only,
            wait_s=wait_s,
            on_wait=dg.get_dagster_logger().info,
            config=self.connection_config,
        ) as con:
            yield con


class HaloResource(dg.ConfigurableResource):
    """A HaloITSM instance reached with an API application's client credentials. What is not
    set here is read from the HALO_* variables when a run starts (see .env.example)."""

    base_url: str | None = Field(default=None, description="HALO_BASE_URL; API at {base}/api.")
    client_id: str | None = Field(default=None, description="HALO_CLIENT_ID.")
    client_secret: str | None = Field(
        default=None, description="HALO_CLIENT_SECRET, as an EnvVar; never logged."
    )
    warehouse: str | None = Field(
        default=None,
        description="The warehouse beside which the request budget is shared; empty: "
        "HALO_DUCKDB_PATH.",
    )

    def settings(self) -> HaloSettings:
        return HaloSettings.load(
            base_url=self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            budget_path=budget_path(self.warehouse or configured_path()),
        )

    @contextmanager
    def get_client(self, logger: Any = None) -> Iterator[HaloClient]:
        with HaloClient(self.settings(), logger=logger) as client:
            yield client


def shared_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources as `dg dev`, `dagster dev` and the command line use them: the secret as an
    EnvVar (resolved when a run starts, never stored), everything else read then too."""
    return {
        "halo": HaloResource(client_secret=dg.EnvVar("HALO_CLIENT_SECRET")),
        "warehouse": DuckDBWarehouse(),
    }
