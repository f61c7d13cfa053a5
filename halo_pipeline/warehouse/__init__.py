"""DuckDB access: connection discipline, schemas and loaders. Plain Python, no Dagster."""

from halo_pipeline.warehouse.connection import (
    WarehouseBusyError,
    WarehouseError,
    check_path,
    connect,
)

__all__ = ["WarehouseBusyError", "WarehouseError", "check_path", "connect"]
