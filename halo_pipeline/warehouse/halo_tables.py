"""Writing a HaloITSM snapshot into the `halo` schema, all tables in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import TYPE_CHECKING

import duckdb

from halo_pipeline.halo.ladder import Seen
from halo_pipeline.halo.models import MEMBERSHIP_FLAGS
from halo_pipeline.halo.snapshot import HaloSnapshot
from halo_pipeline.warehouse.connection import WarehouseError
from halo_pipeline.warehouse.registry import SNAPSHOT_TABLES
from halo_pipeline.warehouse.transactions import transaction

if TYPE_CHECKING:
    # Imported where a sync writes, not here: every code server, run, sensor and command
    # imports this module, and pandas is a third of a second of it.
    import pandas as pd


class LargeDropError(WarehouseError):
    """A sync would have shrunk `halo.agents` by more than half; nothing was replaced."""


@dataclass(frozen=True)
class LastGoodSync:
    sync_id: int
    finished_at: datetime
    agents: int


def read_sql(name: str) -> str:
    return files("halo_pipeline.warehouse").joinpath("sql", name).read_text(encoding="utf-8")


def record_sync_start(
    con: duckdb.DuckDBPyConnection,
    *,
    dagster_run_id: str | None,
    source_url: str | None,
    kind: str = "full",
) -> int:
    return _new_sync(con, kind, dagster_run_id, source_url)


def _new_sync(
    con: duckdb.DuckDBPyConnection, kind: str, dagster_run_id: str | None, source_url: str | None
) -> int:
    [(sync_id,)] = con.execute(
        """
        INSERT INTO halo.sync_runs (sync_id, kind, dagster_run_id, source_url, started_at, status)
        VALUES (nextval('halo.sync_id_seq'), ?, ?, ?, now(), 'running')
        RETURNING sync_id
        """,
        [kind, dagster_run_id, source_url],
    ).fetchall()
    return int(sync_id)


def record_sync_failure(
    con: duckdb.DuckDBPyConnection, sync_id: int, error: str, api_requests: int | None
) -> None:
    con.execute(
        """
        UPDATE halo.sync_runs
        SET status = 'failed', finished_at = now(), error = ?, api_requests = ?
        WHERE sync_id = ?
        """,
        [error, api_requests, sync_id],
    )


def record_failed_run(
    con: duckdb.DuckDBPyConnection, *, dagster_run_id: str, error: str, its_own_row: bool = True
) -> None:
    """What a failed run leaves in `halo.sync_runs`, whatever stopped it.

    A sync that failed on its own has already said why. One still `running` died with its
    process; a halo_sync_job run that failed before its sync started gets a row of its own
    (`its_own_row`); a run that loaded its sync but did not rebuild the access models keeps it
    `loaded` (the next rebuild makes it `succeeded`) and gets the error beside it, as does a run
    whose checks failed after it succeeded. Recording a run twice changes nothing.
    """
    rows = con.execute(
        "SELECT sync_id, status FROM halo.sync_runs WHERE dagster_run_id = ?", [dagster_run_id]
    ).fetchall()
    if not rows and its_own_row:
        # Its configuration may be what failed, so the source is not known here.
        rows = [(_new_sync(con, "full", dagster_run_id, None), "running")]
    for sync_id, status in rows:
        if status == "running":
            record_sync_failure(con, sync_id, error, None)
        elif status in ("loaded", "succeeded"):
            con.execute(
                "UPDATE halo.sync_runs SET error = ? WHERE sync_id = ?",
                [f"the sync {status}, then the run failed: {error}", sync_id],
            )


def finish_loaded_syncs(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Mark every `loaded` sync `succeeded`: called once the access models have been rebuilt
    from the `halo` tables, on the connection that rebuilt them, so no sync can load between."""
    rows = con.execute(
        "UPDATE halo.sync_runs SET status = 'succeeded' WHERE status = 'loaded' RETURNING sync_id"
    ).fetchall()
    return sorted(sync_id for (sync_id,) in rows)


def access_behind(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a sync's tables are loaded but the access models not yet rebuilt from them (its
    run died or failed in between): the next run that rebuilds them repairs it."""
    return bool(
        con.execute("SELECT count(*) FROM halo.sync_runs WHERE status = 'loaded'").fetchall()[0][0]
    )


def last_good_sync(con: duckdb.DuckDBPyConnection) -> LastGoodSync | None:
    # fetchall, not fetchone: DuckDB 2 refuses other calls (`register`) while a result is open.
    rows = con.execute(
        """
        SELECT sync_id, finished_at, agents FROM halo.sync_runs
        WHERE status IN ('loaded', 'succeeded') ORDER BY sync_id DESC LIMIT 1
        """
    ).fetchall()
    return LastGoodSync(*rows[0]) if rows else None


def seen_agents(con: duckdb.DuckDBPyConnection) -> dict[int, Seen]:
    """What the warehouse knows of each agent, for the next sync to tell new, changed and
    long-unread agents apart (`halo.ladder`)."""
    rows = con.execute(
        "SELECT agent_id, name, firstname, surname, email, is_disabled, is_api_agent, "
        "default_team, role_list, CASE WHEN roles_known THEN roles_read_at END FROM halo.agents"
    ).fetchall()
    return {row[0]: Seen(hash(row[1:9]), row[9]) for row in rows}


def snapshot_frames(snapshot: HaloSnapshot) -> dict[str, pd.DataFrame]:
    """One DataFrame per `halo` table, with the warehouse's column names and nullable dtypes."""
    # "string", not "str": on pandas 2 "str" turns None into the text "None". "boolean" keeps
    # None as NULL, for what a server did not say.
    text, integer, maybe = "string", "Int64", "boolean"
    return {
        "agents": _frame(
            [
                (a.id, a.name, a.firstname, a.surname, a.email, a.isdisabled, a.isapiagent,
                 a.is_admin, a.team, a.department, a.role_list)
                for a in snapshot.agents
            ],
            agent_id=integer, name=text, firstname=text, surname=text, email=text,
            is_disabled="bool", is_api_agent="bool", is_admin=maybe, default_team=text,
            department=text, role_list=text,
        ),
        "roles": _frame(
            [(r.id, r.id_int, r.name, r.notes, r.is_integration) for r in snapshot.roles],
            role_id=text, role_int_id=integer, name=text, notes=text, is_integration="bool",
        ),
        "teams": _frame(
            [
                (t.id, t.name, t.department_id, t.department_name, t.inactive)
                for t in snapshot.teams
            ],
            team_id=integer, name=text, department_id=integer, department_name=text,
            is_inactive="bool",
        ),
        "agent_roles": _frame(snapshot.agent_roles, agent_id=integer, role_id=text),
        "agent_teams": _frame(
            snapshot.agent_teams,
            agent_id=integer, team_id=integer, **dict.fromkeys(MEMBERSHIP_FLAGS, maybe),
        ),
        "ticket_types": _frame(
            [(t.id, t.name, t.hasmandatorytechfields) for t in snapshot.ticket_types],
            ticket_type_id=integer, name=text, has_mandatory_fields=maybe,
        ),
    }  # fmt: skip


def replace_halo_tables(
    con: duckdb.DuckDBPyConnection,
    snapshot: HaloSnapshot,
    *,
    sync_id: int,
    synced_at: datetime,
    api_requests: int,
    allow_large_drop: bool = False,
) -> dict[str, int]:
    """Replace every `halo` table with the snapshot, extend the membership history and mark
    the sync loaded, atomically.

    Either all tables change and `halo.sync_runs` says so, or nothing does: a failure anywhere
    (including the large-drop guard) rolls back and leaves the last good tables in place.
    """
    frames = snapshot_frames(snapshot)
    agents = len(frames["agents"])
    read = None if snapshot.read is None else sorted(snapshot.read)
    with transaction(con):
        previous = last_good_sync(con)
        if previous and not allow_large_drop and agents * 2 < previous.agents:
            raise LargeDropError(
                f"This sync read {agents} agents from HaloITSM, fewer than half of the "
                f"{previous.agents} in the last good sync (sync {previous.sync_id}, "
                f"{previous.finished_at:%Y-%m-%d %H:%M %Z}). The tables were left unchanged. "
                "If the drop is real, run halo_sync_job once with the run config "
                "`ops: {halo_tables: {config: {allow_large_drop: true}}}`."
            )
        _remember_reads(con)
        for table in ("agents", "roles", "teams", "ticket_types"):
            # Table names are this module's own, never input; values are parameters.
            con.execute(f"DELETE FROM halo.{table}")
            _insert(con, table, frames[table], sync_id, synced_at)
        for table in ("agent_roles", "agent_teams"):
            if read is None:
                con.execute(f"DELETE FROM halo.{table}")
            else:
                # Agents not read this sync keep the memberships they were last read with;
                # those of deleted agents go.
                con.execute(
                    f"DELETE FROM halo.{table} WHERE list_contains(?, agent_id) "
                    "OR agent_id NOT IN (SELECT agent_id FROM halo.agents)",
                    [read],
                )
            _insert(con, table, frames[table], sync_id, synced_at)
        _drop_deleted_resources(con)
        _roles_read(con, read, sync_id, synced_at)
        return _finish(con, sync_id, synced_at, api_requests, snapshot)


def replace_agents(
    con: duckdb.DuckDBPyConnection,
    snapshot: HaloSnapshot,
    *,
    agent_ids: list[int],
    sync_id: int,
    synced_at: datetime,
    api_requests: int,
) -> dict[str, int]:
    """A targeted sync: replace the roles, teams and ticket types with the snapshot's, and the
    rows of `agent_ids` with the snapshot's agents (an id the snapshot lacks was deleted in
    HaloITSM), keep every other agent's rows, and extend the history as a full sync would, all
    in one transaction that marks the sync loaded.

    Memberships an agent was read without (`roles` or `teams` of None) keep their rows: unknown
    is not none. Memberships of a role or team that no longer exists go: nobody holds it now.
    """
    frames = snapshot_frames(snapshot)
    read = {
        "agents": agent_ids,
        "agent_roles": [a.id for a in snapshot.agents if a.roles is not None],
        "agent_teams": [a.id for a in snapshot.agents if a.teams is not None],
    }
    gone = sorted(set(agent_ids) - {agent.id for agent in snapshot.agents})
    with transaction(con):
        _remember_reads(con)
        for table in ("roles", "teams", "ticket_types"):
            con.execute(f"DELETE FROM halo.{table}")
            _insert(con, table, frames[table], sync_id, synced_at)
        for table, ids in read.items():
            # Table names are this module's own; ids are parameters.
            con.execute(
                f"DELETE FROM halo.{table} WHERE list_contains(?, agent_id)", [[*ids, *gone]]
            )
            _insert(con, table, frames[table], sync_id, synced_at)
        _drop_deleted_resources(con)
        _roles_read(con, read["agent_roles"], sync_id, synced_at)
        return _finish(con, sync_id, synced_at, api_requests, snapshot)


def _drop_deleted_resources(con: duckdb.DuckDBPyConnection) -> None:
    """Memberships of a role or team that no longer exists go: nobody holds it now."""
    for table, key, of in (
        ("agent_roles", "role_id", "roles"),
        ("agent_teams", "team_id", "teams"),
    ):
        # Names are this function's own.
        con.execute(f"DELETE FROM halo.{table} WHERE {key} NOT IN (SELECT {key} FROM halo.{of})")


def _remember_reads(con: duckdb.DuckDBPyConnection) -> None:
    """Each agent's last read as halo.agents holds it before this sync writes: what the
    history records changes against, and what agents not read this sync keep. A temporary
    table belongs to this connection alone."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE previous_reads AS "
        "SELECT agent_id, roles_known, roles_read_at, roles_read_sync_id FROM halo.agents"
    )


def _roles_read(
    con: duckdb.DuckDBPyConnection, agent_ids: list[int] | None, sync_id: int, synced_at: datetime
) -> None:
    """This sync read the roles of these agents (None: of every agent it wrote); of the other
    agents it wrote, not (yet)."""
    # The condition is this function's own SQL; the ids are a parameter.
    read = "true" if agent_ids is None else "list_contains($read, agent_id)"
    con.execute(
        f"UPDATE halo.agents SET roles_known = {read}, "
        f"roles_read_at = CASE WHEN {read} THEN $at END, "
        f"roles_read_sync_id = CASE WHEN {read} THEN $sync_id END "
        "WHERE sync_id = $sync_id",
        {"at": synced_at, "sync_id": sync_id, **({} if agent_ids is None else {"read": agent_ids})},
    )
    if agent_ids is not None:
        # An agent not read keeps when, and by which sync, it last was (never: not known).
        con.execute(
            "UPDATE halo.agents AS a SET roles_known = p.roles_known, "
            "roles_read_at = p.roles_read_at, roles_read_sync_id = p.roles_read_sync_id "
            "FROM previous_reads AS p "
            "WHERE a.agent_id = p.agent_id AND a.sync_id = $sync_id "
            "AND NOT list_contains($read, a.agent_id)",
            {"sync_id": sync_id, "read": agent_ids},
        )


def _insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    sync_id: int,
    synced_at: datetime,
) -> None:
    con.register("incoming", frame)
    try:
        con.execute(
            f"INSERT INTO halo.{table} BY NAME "
            "SELECT *, $sync_id AS sync_id, $synced_at AS synced_at FROM incoming",
            {"sync_id": sync_id, "synced_at": synced_at},
        )
    finally:
        con.unregister("incoming")


def _finish(
    con: duckdb.DuckDBPyConnection,
    sync_id: int,
    synced_at: datetime,
    api_requests: int,
    snapshot: HaloSnapshot,
) -> dict[str, int]:
    """Extend the membership history and mark the sync loaded with the tables' row counts."""
    variables = {
        "sync_id": sync_id,
        "synced_at": synced_at,
        "api_requests": api_requests,
        "memberships_from": snapshot.memberships_from,
        "memberships_why": snapshot.memberships_why or None,
        "detail_reads": snapshot.detail_reads,
    }
    for name, value in variables.items():
        # Names come from this function; values are parameters.
        con.execute(f"SET VARIABLE {name} = ?", [value])
    con.execute(read_sql("halo_history.sql"))
    con.execute(read_sql("finish_sync.sql"))
    con.execute("DROP TABLE previous_reads")
    [counts] = con.execute(
        f"SELECT {', '.join(SNAPSHOT_TABLES)} FROM halo.sync_runs WHERE sync_id = ?", [sync_id]
    ).fetchall()
    return dict(zip(SNAPSHOT_TABLES, counts, strict=True))


def _frame(rows: list[tuple], **dtypes: str) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=list(dtypes))
    return frame.astype(dtypes)
