"""Who is who: the person at the keyboard, and who would gain a request's access."""

from __future__ import annotations

import getpass

import duckdb

from halo_pipeline.requests.queue import Request


def os_user() -> str | None:
    """The operating-system user running the command, recorded beside an unauthenticated `--by`."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return None


def grantee(con: duckdb.DuckDBPyConnection, request: Request) -> str | None:
    """The email of who would gain the access: the agent, or the account to be created."""
    if request.action == "create_account":
        return request.account_email
    rows = con.execute(
        "SELECT email FROM halo.agents WHERE agent_id = ?", [request.agent_id]
    ).fetchall()
    return rows[0][0] if rows else None
