"""The warehouse's schemas and tables, named once: the loaders, the refusal of a file named
after a schema, the SQL models' sources and the Dagster wiring all read them from here."""

from __future__ import annotations

SCHEMAS = ("halo", "access", "provisioning", "policy", "reviews")
"""Every schema the migrations create (a test reads the migrations to hold this to them)."""
MODEL_SCHEMA = "access"
"""Where the SQL models of dbt_like_sql/ are built."""

SNAPSHOT_TABLES = ("agents", "roles", "teams", "agent_roles", "agent_teams", "ticket_types")
"""The `halo` tables a sync replaces with what it read: the catalog requests are checked
against."""
HALO_TABLES = (*SNAPSHOT_TABLES, "agent_role_history", "agent_team_history", "sync_runs")
"""Everything a sync writes: the snapshot, the membership history and the log of syncs."""

MODEL_SOURCES = frozenset(
    {("halo", table) for table in HALO_TABLES}
    | {("provisioning", "requests"), ("provisioning", "request_events")}
    | {("policy", "rules"), ("policy", "roles")}
)
"""The tables the SQL models may read with `source()`: what the sync writes, the request queue
and the access policy as last resolved."""
