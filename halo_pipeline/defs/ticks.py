"""What every sensor does when it cannot look at the warehouse: skip this tick and say why."""

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from halo_pipeline.warehouse import WarehouseBusyError, WarehouseError

T = TypeVar("T")
BUSY = "The warehouse is being written; looking again next tick."


def skips_when_busy(evaluate: Callable[..., T]) -> Callable[..., T | dg.SkipReason]:
    """For a sensor's evaluation: a warehouse another process is writing means a sync or a run
    is at work, and the next tick looks again; a warehouse that cannot be used at all is said in
    the skip reason, not as a failed tick. (Dagster reads the wrapped function's parameters.)"""

    @functools.wraps(evaluate)
    def tick(*args: Any, **kwargs: Any) -> T | dg.SkipReason:
        try:
            return evaluate(*args, **kwargs)
        except WarehouseBusyError:
            return dg.SkipReason(BUSY)
        except WarehouseError as error:
            return dg.SkipReason(str(error))

    return tick
