"""DuckDB access: connection discipline, schemas and loaders. Plain Python, no Dagster."""

from halo_pipeline.warehouse.connection import (
    DEFAULT_PATH,
    WarehouseBusyError,
    WarehouseError,
    check_path,
    configured_path,
    connect,
)

__all__ = [
    "DEFAULT_PATH",
    "WarehouseBusyError",
    "WarehouseError",
    "check_path",
    "configured_path",
    "connect",
]
