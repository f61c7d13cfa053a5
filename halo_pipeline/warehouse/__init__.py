"""DuckDB access: connection discipline, schemas and loaders. Plain Python, no Dagster."""

from halo_pipeline.warehouse.connection import (
    DEFAULT_PATH,
    OpenWarehouse,
    WarehouseBusyError,
    WarehouseError,
    budget_path,
    check_path,
    configured_path,
    connect,
)
from halo_pipeline.warehouse.transactions import transaction

__all__ = [
    "DEFAULT_PATH",
    "OpenWarehouse",
    "WarehouseBusyError",
    "WarehouseError",
    "budget_path",
    "check_path",
    "configured_path",
    "connect",
    "transaction",
]
