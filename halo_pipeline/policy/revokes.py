"""Revoke requests the pipeline files itself: for time-bound grants that have ended
(`policy:expiry`) and, with `leavers.auto_revoke`, for what disabled agents still hold
(`policy:leaver`). Each is filed once, whoever gets there first (the sensor or a provisioning
run), and applied by the usual provisioning, only when HALO_PROVISIONING=true."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

import duckdb

from halo_pipeline.policy.gate import Gate
from halo_pipeline.requests.queue import database_now, file_request
from halo_pipeline.requests.signing import KeyRing, Unverified

EXPIRY, LEAVER = "policy:expiry", "policy:leaver"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filed:
    expiries: list[int]
    leavers: list[int]

    def __bool__(self) -> bool:
        return bool(self.expiries or self.leavers)


def file_policy_revokes(
    con: duckdb.DuckDBPyConnection, gate: Gate, ring: KeyRing | None, log: Any = None
) -> Filed:
    """File the revokes that are due now. The caller's connection writes, and as the only
    writer it sees every earlier filing: nothing is filed twice."""
    expiries = []
    for due in due_expiries(con, ring):
        if due.regranted:
            (log or _log).info(due.regranted)
            continue
        expiries.append(
            file_request(
                con,
                detail=f"filed by the access policy: the grant of request {due.request_id} ended "
                f"at {due.ended}",
                action="revoke",
                agent_id=due.agent_id,
                entitlement_id=due.entitlement_id,
                reason=f"the time-bound grant of request {due.request_id} ended at {due.ended}",
                requested_by=EXPIRY,
                linked_request_id=due.request_id,
            )
        )
    return Filed(expiries, _file_leavers(con) if _auto_revoke(gate) else [])


def revokes_due(con: duckdb.DuckDBPyConnection, gate: Gate, ring: KeyRing | None) -> bool:
    """Whether a revoke is due: read-only, so a caller opens the warehouse for writing only
    when it has something to file."""
    expiring = any(not due.regranted for due in due_expiries(con, ring))
    return expiring or (_auto_revoke(gate) and bool(_leavers_due(con)))


@dataclass(frozen=True)
class Due:
    agent_id: int
    entitlement_id: str
    ended: str
    request_id: int
    """The period's last grant request: the revoke links to it."""
    regranted: str | None
    """Why nothing is filed: the grant held now is a new period, made outside the pipeline."""


def due_expiries(
    con: duckdb.DuckDBPyConnection, ring: KeyRing | None, now: datetime | None = None
) -> list[Due]:
    """The time-bound grants whose end has come by `now` (the warehouse's clock by default), by
    the signed `applied` events that made them (and by their columns, the earlier counting)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE applied_ends "
        "(request_id BIGINT, applied_at TIMESTAMPTZ, signed_end TIMESTAMPTZ)"
    )
    try:
        events = con.execute(
            "SELECT e.event_id, e.request_id, e.changed_at, e.statement, e.signature "
            "FROM provisioning.request_events AS e JOIN provisioning.requests AS r "
            "USING (request_id) WHERE r.action = 'grant' AND e.to_status = 'applied' "
            "AND e.from_status IS DISTINCT FROM 'applied' "
            "ORDER BY e.event_id"
        ).fetchall()
        ends = [[request_id, at, _signed_end(ring, event_id, request_id, statement, signature)]
                for event_id, request_id, at, statement, signature in events]  # fmt: skip
        if ends:
            con.executemany("INSERT INTO applied_ends VALUES (?, ?, ?)", ends)
        rows = con.execute(_sql("expiries"), {"now": now or database_now(con)}).fetchall()
    except duckdb.CatalogException:  # the models were never built here: nothing was granted
        return []
    found = []
    for agent_id, entitlement_id, ended, request_id, made_in, held_since in rows:
        regranted = None
        if made_in is not None and held_since is not None and held_since > made_in:
            regranted = (
                f"The grant of request {request_id} ({entitlement_id} for agent {agent_id}) "
                f"ended at {ended}, but it was removed and granted again outside the pipeline "
                f"(the grant held now was first seen by sync {held_since}): the expiry files "
                "nothing; privileged_unapproved judges the grant held now."
            )
        found.append(Due(agent_id, entitlement_id, ended, request_id, regranted))
    return found


def _signed_end(
    ring: KeyRing | None, event_id: int, request_id: int, statement: str | None,
    signature: str | None,
) -> datetime | None:  # fmt: skip
    """The end the job signed when it applied the grant; None when there is none to believe
    (no key, recorded before signing, or not verifying: the asset check reports those)."""
    if ring is None or statement is None:
        return None
    try:
        said = ring.verify(statement, signature)
    except Unverified:
        return None
    request = said.get("request") or {}
    if said.get("kind") != "applied" or said.get("event_id") != event_id:
        return None
    if request.get("request_id") != request_id or not request.get("expires_at"):
        return None
    return datetime.fromisoformat(request["expires_at"])


def _sql(name: str) -> str:
    return files("halo_pipeline.policy").joinpath("sql", f"{name}.sql").read_text()


def _auto_revoke(gate: Gate) -> bool:
    return gate.resolved is not None and gate.resolved.policy.auto_revoke_leavers


def _leavers_due(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, str, str]]:
    try:
        return con.execute(_sql("leaver_revokes")).fetchall()
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
