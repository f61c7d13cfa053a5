"""What the access policy's tests share besides their fixtures (`policy`, `synced` in
conftest.py): the policy they write, the command line, and one tick of the expiry sensor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from halo_pipeline.cli import main
from halo_pipeline.defs.policy import grant_expiry_sensor
from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline_tests.helpers import query

POLICY = """\
privileged_roles: ["Administrator", "Change Manager"]
approval:
  required_for: privileged
  approvers: []
max_grant_duration:
  privileged: 8h
separation_of_duties:
  - name: read-only-stays-read-only
    roles: ["Read Only", "Administrator"]
leavers:
  disabled_agents_hold_nothing: true
  auto_revoke: false
severity:
  privileged_unapproved: warn
"""
AUDIT = ["--reason", "release night", "--requested-by", "ana@example.com"]


def cli(path: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--warehouse", str(path)])


def roles_of(sim, agent_id: int) -> list[str]:
    names = {guid: name for name, guid in sim.role_ids().items()}
    return sorted(names[role["id"]] for role in sim.get_agent(agent_id)["roles"])


def status(path: Path, request_id: int) -> str:
    [(found,)] = query(path, "SELECT status FROM provisioning.requests WHERE request_id = ?",
                       [request_id])  # fmt: skip
    return found


def expire(context_path: Path) -> str:
    """One tick of grant_expiry_sensor."""
    with dg.build_sensor_context(
        resources={"warehouse": DuckDBWarehouse(database=str(context_path))}
    ) as context:
        return grant_expiry_sensor(context).skip_message
