"""Revoke requests the pipeline files itself: for time-bound grants that have ended
(`policy:expiry`) and, with `leavers.auto_revoke`, for what disabled agents still hold
(`policy:leaver`). Each is filed once, whoever gets there first (the sensor or a provisioning
run), and applied by the usual provisioning, only when HALO_PROVISIONING=true."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import duckdb

from halo_pipeline.policy.gate import Gate
from halo_pipeline.requests.queue import file_request

EXPIRY, LEAVER = "policy:expiry", "policy:leaver"


@dataclass(frozen=True)
class Filed:
    expiries: list[int]
    leavers: list[int]

    def __bool__(self) -> bool:
        return bool(self.expiries or self.leavers)


def file_policy_revokes(con: duckdb.DuckDBPyConnection, gate: Gate) -> Filed:
    """File the revokes that are due now. The caller's connection writes, and as the only
    writer it sees every earlier filing: nothing is filed twice."""
    return Filed(_file_expiries(con), _file_leavers(con) if _auto_revoke(gate) else [])


def revokes_due(con: duckdb.DuckDBPyConnection, gate: Gate) -> bool:
    """Whether a revoke is due: read-only, so a caller opens the warehouse for writing only
    when it has something to file."""
    return bool(due_expiries(con)) or (_auto_revoke(gate) and bool(_leavers_due(con)))


def due_expiries(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, int]]:
    """(agent_id, entitlement_id, expires_at, last grant request) of ended grants."""
    try:
        return con.execute(
            "SELECT agent_id, entitlement_id, strftime(expires_at, '%Y-%m-%d %H:%M:%S UTC'), "
            "last_request_id FROM access.grant_expiries WHERE expires_at <= now() "
            "AND NOT revoke_filed ORDER BY agent_id, entitlement_id"
        ).fetchall()
    except duckdb.CatalogException:  # the models were never built here: nothing was granted
        return []


def _file_expiries(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [
        file_request(
            con,
            detail=f"filed by the access policy: the grant of request {request_id} ended at "
            f"{ended}",
            action="revoke",
            agent_id=agent_id,
            entitlement_id=entitlement_id,
            reason=f"the time-bound grant of request {request_id} ended at {ended}",
            requested_by=EXPIRY,
            linked_request_id=request_id,
        )
        for agent_id, entitlement_id, ended, request_id in due_expiries(con)
    ]


def _auto_revoke(gate: Gate) -> bool:
    return gate.resolved is not None and gate.resolved.policy.auto_revoke_leavers


def _leavers_due(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, str, str]]:
    sql = files("halo_pipeline.policy").joinpath("sql", "leaver_revokes.sql").read_text()
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:  # the models were never built here
        return []


def _file_leavers(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [
        file_request(
            con,
            detail="filed by the access policy: the agent is disabled (leavers.auto_revoke)",
            action="revoke",
            agent_id=agent_id,
            entitlement_id=entitlement_id,
            reason=f"{agent_name} is disabled: leavers hold nothing ({kind} {name!r})",
            requested_by=LEAVER,
        )
        for agent_id, entitlement_id, agent_name, kind, name in _leavers_due(con)
    ]
