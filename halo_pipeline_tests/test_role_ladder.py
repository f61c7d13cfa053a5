"""A tenant where only each agent's detail names its roles: the role filter ignored and a
`role_list` that names only an agent's first role. Each sync reads the details its allowance
(HALO_DETAIL_READS_PER_SYNC) permits, new and changed agents first, then those read longest
ago; the others keep what they were last read with, and the history records no change that
no read saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from halo_pipeline.simulator import Simulator
from halo_pipeline_tests.helpers import build_access, expected_memberships, query, sync

ROLES = "SELECT agent_id, role_id FROM halo.agent_roles ORDER BY ALL"
READ_BY = "SELECT roles_read_sync_id, count(*) FROM halo.agents GROUP BY ALL ORDER BY ALL"
CHANGES = "SELECT change, principal_id, resource_name FROM access.grant_changes ORDER BY ALL"


@pytest.fixture
def details_only(sim: Simulator) -> Simulator:
    sim.config.ignore_role_filter = True
    sim.config.role_list = "first"
    return sim


def read_in(path: Path, sync_id: int) -> set[int]:
    rows = query(path, "SELECT agent_id FROM halo.agents WHERE roles_read_sync_id = ?", [sync_id])
    return {agent_id for (agent_id,) in rows}


def grants_of(sim: Simulator, agents: set[int]) -> int:
    """How many roles and teams these agents hold in HaloITSM."""
    roles, teams = expected_memberships(sim)
    return len([r for r in roles if r[0] in agents]) + len([t for t in teams if t[0] in agents])


def held_by(roles: list[tuple[int, str]], agents: set[int]) -> list[tuple[int, str]]:
    return [(agent_id, role) for agent_id, role in roles if agent_id in agents]


def test_syncs_with_a_small_allowance_reach_every_agent_never_read_first(
    details_only, warehouse_path
):
    roles, _ = expected_memberships(details_only)

    first = sync(details_only, warehouse_path, detail_reads_per_sync=15)

    assert first.memberships_from == "agent details (15 of 40 agents read this sync)"
    assert query(warehouse_path, READ_BY) == [(1, 15), (None, 25)]
    # The agents read hold exactly their roles; the others hold nothing yet, and say so.
    assert query(warehouse_path, ROLES) == held_by(roles, read_in(warehouse_path, 1))
    build_access(warehouse_path)
    assert query(warehouse_path, "SELECT count(*) FROM access.agent_access WHERE roles_read_at IS NULL") == [(25,)]  # fmt: skip

    first_read = {1: read_in(warehouse_path, 1)}
    second = sync(details_only, warehouse_path, detail_reads_per_sync=15)
    first_read[2] = read_in(warehouse_path, 2)
    third = sync(details_only, warehouse_path, detail_reads_per_sync=15)
    first_read[3] = read_in(warehouse_path, 3) - first_read[1]

    # Never-read agents first: the second sync reads none of the first's; the third reads the
    # last ten never read, then five of those read longest ago (by the first sync).
    assert read_in(warehouse_path, 1).isdisjoint(read_in(warehouse_path, 2))
    assert query(warehouse_path, READ_BY) == [(1, 10), (2, 15), (3, 15)]
    assert (second.detail_reads, third.detail_reads) == (15, 15)
    # Every agent read once: exactly HaloITSM's grants.
    assert query(warehouse_path, ROLES) == roles
    build_access(warehouse_path)
    # What the later syncs found was held on or before their read, not added by it.
    assert query(warehouse_path, CHANGES) == []
    periods = "SELECT first_seen_sync_id, held_on_or_before, count(*) FROM access.grant_history GROUP BY ALL ORDER BY ALL"  # fmt: skip
    assert query(warehouse_path, periods) == [
        (1, False, grants_of(details_only, first_read[1])),
        (2, True, grants_of(details_only, first_read[2])),
        (3, True, grants_of(details_only, first_read[3])),
    ]


def test_new_and_changed_agents_are_read_first_and_changes_count_from_the_previous_read(
    details_only, warehouse_path
):
    for _ in range(3):
        sync(details_only, warehouse_path, detail_reads_per_sync=15)
    oldest = read_in(warehouse_path, 1)  # read by the first sync, and not since
    names = {role_id: name for name, role_id in details_only.role_ids().items()}
    role_ids = sorted(names)
    changed, silent = sorted(read_in(warehouse_path, 2))[:2]
    before = dict(query(warehouse_path, "SELECT agent_id, roles_read_at FROM halo.agents"))
    held = {a: [r["id"] for r in details_only.get_agent(a)["roles"]] for a in (changed, silent)}
    # A new agent; an agent whose first role (all role_list shows) changes; an agent given one
    # more role, which its list row does not show.
    new = details_only.add_agent("Nova Newman", "nova@example.com", role_ids=(role_ids[0],))
    other = next(r for r in role_ids if r not in held[changed])
    details_only.set_agent_roles(changed, [other])
    extra = next(r for r in role_ids if r not in held[silent])
    details_only.set_agent_roles(silent, [*held[silent], extra])

    fourth = sync(details_only, warehouse_path, detail_reads_per_sync=3)
    build_access(warehouse_path)

    # The new agent, the changed row, then one of those read longest ago: not the silent one.
    read = read_in(warehouse_path, fourth.sync_id)
    assert len(read) == 3 and {new, changed} <= read and read - {new, changed} <= oldest
    changes = "SELECT change, principal_id, resource_name, previous_read_at FROM access.grant_changes WHERE resource_type = 'role' ORDER BY ALL"  # fmt: skip
    assert query(warehouse_path, changes) == sorted([
        ("added", new, names[role_ids[0]], None),  # a new agent: its roles are added
        ("added", changed, names[other], before[changed]),
        *[("removed", changed, names[role], before[changed]) for role in held[changed]],
    ])  # fmt: skip

    # The silent change is seen when the agent's turn comes, and dated from its last read.
    sync(details_only, warehouse_path, detail_reads_per_sync=40)
    build_access(warehouse_path)
    assert ("added", silent, names[extra], before[silent]) in query(warehouse_path, changes)
    assert query(warehouse_path, ROLES) == expected_memberships(details_only)[0]
