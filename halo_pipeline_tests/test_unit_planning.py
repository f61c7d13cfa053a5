"""Planning membership changes, table-driven: from an agent as HaloITSM holds it and the
requests for it, the one write to make, and what a read-back may show that was not asked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from halo_pipeline.halo import HaloMalformedResponseError
from halo_pipeline.halo.models import Agent
from halo_pipeline.provisioning.planning import plan_memberships
from halo_pipeline.requests.catalog import Entitlement
from halo_pipeline.requests.queue import Request

ADMIN = Entitlement("role:admin-guid:assigned", "role", "admin-guid", "Administrator", 1)
AGENT = Entitlement("role:agent-guid:assigned", "role", "agent-guid", "Agent", 2)
TEAM_1 = Entitlement("team:1:member", "team", 1, "1st Line")
TEAM_2 = Entitlement("team:2:member", "team", 2, "2nd Line")
MANAGES_1 = {"team_id": 1, "in_section": True, "is_manager": True, "fortickets": True, "foropps": True, "role_id": None}  # fmt: skip
NOT_IN_2 = {"team_id": 2, "in_section": False, "is_manager": False}


def agent(roles: list[str] | None = ("agent-guid",), teams: list[dict] | None = (MANAGES_1,)) -> Agent:  # fmt: skip
    return Agent.model_validate({
        "id": 9, "name": "Priya Patel",
        "roles": None if roles is None else [{"id": r} for r in roles],
        "teams": None if teams is None else list(teams),
    })  # fmt: skip


def request(request_id: int, action: str, status: str = "pending") -> Request:
    now = datetime.now(UTC)
    return Request(
        request_id, action, None, 9, None, None, None, "why", "ana@example.com", status, None,
        None, False, None, None, 0, now, now,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("asks", "payload", "changes"),
    [
        # A role grant writes the whole role list; the teams are not written at all.
        ([(request(1, "grant"), ADMIN)], {"id": 9, "roles": [{"id": "agent-guid"}, {"id": "admin-guid"}]}, ["adds role 'Administrator'"]),
        ([(request(1, "revoke"), AGENT)], {"id": 9, "roles": []}, ["removes role 'Agent'"]),
        # A team add posts every kept row exactly as read, and the new one alone.
        ([(request(1, "grant"), TEAM_2)], {"id": 9, "teams": [MANAGES_1, {"team_id": 2}]}, ["adds team '2nd Line'"]),
        ([(request(1, "revoke"), TEAM_1)], {"id": 9, "teams": []}, ["removes team '1st Line'"]),
        # Roles and teams together: still one write.
        ([(request(1, "grant"), ADMIN), (request(2, "grant"), TEAM_2)],
         {"id": 9, "roles": [{"id": "agent-guid"}, {"id": "admin-guid"}], "teams": [MANAGES_1, {"team_id": 2}]},
         ["adds role 'Administrator'", "adds team '2nd Line'"]),
        # Already so: nothing to write.
        ([(request(1, "grant"), AGENT), (request(2, "revoke"), TEAM_2)], None, []),
        # Disagreeing requests: the later one wins.
        ([(request(1, "grant"), ADMIN), (request(2, "revoke"), ADMIN)], None, []),
        ([(request(1, "revoke"), AGENT), (request(2, "grant"), AGENT)], None, []),
    ],
)  # fmt: skip
def test_the_one_write_for_an_agents_requests(asks, payload, changes):
    plan = plan_memberships(agent(), asks)

    assert plan.payload == payload
    assert plan.changes == changes


def test_a_grant_replaces_a_row_that_is_not_a_membership():
    plan = plan_memberships(agent(teams=[MANAGES_1, NOT_IN_2]), [(request(1, "grant"), TEAM_2)])

    assert plan.payload == {"id": 9, "teams": [MANAGES_1, {"team_id": 2}]}


def test_an_earlier_request_that_may_have_been_written_is_finished_first():
    earlier, later = request(1, "grant", status="applying"), request(2, "revoke")

    plan = plan_memberships(agent(), [(earlier, ADMIN), (later, ADMIN)])

    assert [r.request_id for r, _ in plan.requests] == [1]
    assert plan.superseded == []


@pytest.mark.parametrize("missing", ["roles", "teams"])
def test_an_agent_read_without_the_list_to_change_is_never_written(missing):
    read = agent(**{missing: None})
    wanted = ADMIN if missing == "roles" else TEAM_2

    with pytest.raises(HaloMalformedResponseError) as error:
        plan_memberships(read, [(request(1, "grant"), wanted)])

    assert str(error.value) == (
        f"GET /api/agent/9 answered without the agent's {missing}; writing the list back would "
        "remove them all, so nothing was written."
    )


@pytest.mark.parametrize(
    ("after", "found"),
    [
        (agent(roles=["agent-guid", "admin-guid"], teams=[MANAGES_1, {"team_id": 2}]), []),
        # Halo reset the kept membership: each changed flag is named.
        (agent(roles=["agent-guid", "admin-guid"], teams=[{**MANAGES_1, "is_manager": False, "foropps": False}, {"team_id": 2}]),
         ["team 1 is_manager True -> False", "team 1 foropps True -> False"]),
        # ... or dropped it, or a role it was not asked to touch.
        (agent(roles=["admin-guid"], teams=[{"team_id": 2}]), ["role agent-guid was removed", "agent left team 1"]),
        (agent(roles=["agent-guid", "admin-guid", "x"], teams=[MANAGES_1, {"team_id": 2}, {"team_id": 3}]),
         ["role x was added", "agent joined team 3"]),
        # Whether the asked-for change took is each request's own check, not a side effect.
        (agent(roles=["agent-guid"], teams=[MANAGES_1]), []),
    ],
)  # fmt: skip
def test_what_a_write_changed_that_it_was_not_asked_to(after, found):
    plan = plan_memberships(agent(), [(request(1, "grant"), ADMIN), (request(2, "grant"), TEAM_2)])

    assert plan.side_effects(after) == found
