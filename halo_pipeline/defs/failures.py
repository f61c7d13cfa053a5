"""How a step fails when the cause is known: in the sentence that says what to fix."""

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import dagster as dg

from halo_pipeline.environment import SettingsError
from halo_pipeline.halo import HaloError
from halo_pipeline.warehouse import WarehouseError

T = TypeVar("T")


def said_plainly(
    step: Callable[..., Iterator[T]],
) -> Callable[..., Iterator[T]]:
    """For an asset's body: a warehouse, HaloITSM or settings error already names the file or
    setting and what to do, so the step fails with that sentence, not Dagster's "Error occurred
    while executing op" around a traceback. (Dagster reads the wrapped function's parameters.)"""

    @functools.wraps(step)
    def body(*args: Any, **kwargs: Any) -> Iterator[T]:
        try:
            yield from step(*args, **kwargs)
        except (WarehouseError, HaloError, SettingsError) as error:
            raise dg.Failure(description=str(error)) from None

    return body
