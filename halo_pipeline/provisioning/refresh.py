"""What the warehouse still owes a refresh: agents a provisioning run changed that no targeted
sync has read since, and syncs whose `halo` tables were loaded but whose access models were not
rebuilt. Both are durable, so a run killed before its refresh leaves the next run the work.

An agent is recorded before the request that changed it is final: a run killed after that
point leaves the row, and the next provisioning run syncs the agent again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import duckdb


@dataclass(frozen=True)
class Owed:
    agent_ids: list[int]
    """Agents recorded as changed and not read since."""
    run_ids: frozenset[str]
    """The runs that recorded them or loaded the syncs: owed only once those have ended."""
    loaded_syncs: list[int]
    """Syncs whose `halo` tables are newer than `access.*`."""

    def __bool__(self) -> bool:
        return bool(self.agent_ids or self.loaded_syncs)

    @property
    def key(self) -> str:
        """The same debt gives the same key, so the sensor starts one run for it."""
        state = f"{self.agent_ids}|{self.loaded_syncs}"
        return "refresh-" + hashlib.sha256(state.encode()).hexdigest()[:16]


def record_changed(con: duckdb.DuckDBPyConnection, agent_id: int, run_id: str | None) -> None:
    con.execute(
        "INSERT INTO provisioning.pending_refresh (agent_id, run_id) VALUES (?, ?) "
        "ON CONFLICT (agent_id) DO UPDATE SET run_id = excluded.run_id, recorded_at = now()",
        [agent_id, run_id],
    )


def owed(con: duckdb.DuckDBPyConnection) -> Owed:
    agents = con.execute(
        "SELECT agent_id, run_id FROM provisioning.pending_refresh ORDER BY agent_id"
    ).fetchall()
    syncs = con.execute(
        "SELECT sync_id, dagster_run_id FROM halo.sync_runs WHERE status = 'loaded' "
        "ORDER BY sync_id"
    ).fetchall()
    return Owed(
        agent_ids=[agent_id for agent_id, _ in agents],
        run_ids=frozenset(run for _, run in [*agents, *syncs] if run),
        loaded_syncs=[sync_id for sync_id, _ in syncs],
    )


def paid(con: duckdb.DuckDBPyConnection, agent_ids: list[int], synced_from: datetime) -> None:
    """The agents were read by a sync that started at `synced_from` and whose models were
    rebuilt: rows recorded since (a change made while it read) stay owed."""
    con.execute(
        "DELETE FROM provisioning.pending_refresh "
        "WHERE list_contains(?, agent_id) AND recorded_at < ?",
        [agent_ids, synced_from],
    )
