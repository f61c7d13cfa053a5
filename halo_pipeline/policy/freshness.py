"""How old the warehouse's knowledge of each agent's roles is (`halo.agents.roles_read_at`):
the `roles_fresh` check and `doctor` both read it here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
from pydantic import field_validator

from halo_pipeline.environment import FromEnvironment
from halo_pipeline.policy.document import parse_duration


class RolesAgeSettings(FromEnvironment):
    roles_max_age: timedelta = timedelta(days=7)
    """HALO_ROLES_MAX_AGE: agents whose roles were read longer ago than this (`7d`, `36h`), or
    never, make the `roles_fresh` check of halo/agents warn."""

    @field_validator("roles_max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class RolesAge:
    agents: int
    never_read: int
    older: int
    """Read longer ago than `max_age`."""
    oldest: datetime | None
    max_age: timedelta

    @property
    def fresh(self) -> bool:
        return not self.never_read and not self.older


def roles_age(con: duckdb.DuckDBPyConnection, max_age: timedelta) -> RolesAge:
    [(agents, never_read, older, oldest)] = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT roles_known), "
        "count(*) FILTER (WHERE roles_read_at < now() - ?), min(roles_read_at) FROM halo.agents",
        [max_age],
    ).fetchall()
    return RolesAge(agents, never_read, older, oldest, max_age)
