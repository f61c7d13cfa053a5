"""One line of `doctor`'s report."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    topic: str
    seen: str
    advice: str | None = None
    """What to set or do, when the instance and the settings do not fit."""
