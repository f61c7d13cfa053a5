"""`halo-pipeline doctor`: what a HaloITSM speaks, against the simulator over loopback."""

from __future__ import annotations

from datetime import UTC

from click.testing import CliRunner

from halo_pipeline.cli import main
from halo_pipeline.doctor.roles_age import last_sync
from halo_pipeline.simulator import Fault
from halo_pipeline.simulator.service_desk import APPROVED, AWAITING, REJECTED
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import grant, provision, query, sync
from halo_pipeline_tests.policy_support import POLICY, roles_of

RATE_LIMIT_BODY = "Rate Limit Reached - 300 Requests per rolling 5 minute window"


def doctor(halo_env: dict[str, str], **env: str):
    return CliRunner().invoke(
        main, ["doctor", "--warehouse", halo_env["HALO_DUCKDB_PATH"]], env={**halo_env, **env}
    )


def lines(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines()]


def test_a_tenant_as_documented_needs_nothing_set(sim, halo_env, warehouse_path):
    result = doctor(halo_env)

    url = halo_env["HALO_BASE_URL"]
    budget = warehouse_path.with_name("warehouse.halo-budget.sqlite")
    assert result.exit_code == 0, result.output
    assert lines(result.output) == [
        f"HaloITSM at {url} (client id halo-pipeline-demo)",
        f"  token ........... issued by {url}/auth/token (scope 'all')",
        "  agent list ...... paged, rows under 'results', record_count sent",
        "  list rows ....... no roles; teams with is_manager, fortickets, foropps, forprojects, "
        "unassigned_access, otheragent_access, no_config_access",
        "  role_list ....... present (read for roles where it names them exactly; a check on the "
        "others)",
        "  unknown fields .. is_admin, department not in list rows: stored as NULL in halo.agents",
        "  ids ............. integral floats (18.0) seen, accepted",
        "  agent detail .... agent 2 read with roles, teams, is_admin, department",
        "  roles and teams . 5 roles, 6 teams",
        "  memberships ..... roles per role, teams agent rows (the list rows carry no roles); "
        "chosen on 20 agents' details",
        "  sync time ....... a full sync reads every agent's roles in about 31 requests: within "
        "one 5-minute window under the budget of 270",
        "  ticket type ..... 'Service Request' (3): no mandatory fields reported",
        "  ticket statuses . New (1), Closed (9)",
        "  API tickets ..... no APP03 refusal in past runs (a ticket type whose approval process "
        "refuses tickets logged through the API)",
        "  request tickets . HALO_REQUEST_TICKET_TYPE unset: requests come from the command line "
        "and SQL only",
        "  Retry-After ..... unknown: no 429 met",
        f"  request budget .. 270 per 5 minutes, shared by this installation in {budget}; 33 "
        "spent in the last 5 minutes",
        "33 requests, none of them writes. Nothing to change: run halo_sync_job.",
    ]
    assert [(r.method, r.path) for r in sim.request_log if r.method != "GET"] == [
        ("POST", "/auth/token")
    ]
    assert halo_env["HALO_CLIENT_SECRET"] not in result.output


def test_what_does_not_fit_is_named_with_what_to_set(sim, halo_env):
    sim.config.ignore_role_filter = True
    sim.config.agent_paging, sim.config.include_record_count = "agents", False
    sim.inject(
        Fault(path="/api/team", status=429, body=RATE_LIMIT_BODY, headers={"Retry-After": "0"})
    )

    result = doctor(
        halo_env, HALO_TICKET_TYPE="Access Request", HALO_TICKET_CLOSED_STATUS="Done",
        HALO_MAX_REQUESTS_PER_5_MIN="600",
    )  # fmt: skip

    assert result.exit_code == 1
    assert (
        "  agent list ...... paged, rows under 'agents', no record_count (pages read in turn)"
        in lines(result.output)
    )
    expected = [
        "  roles and teams . 5 roles, 6 teams",
        "  memberships ..... roles role_list, teams agent rows (the list rows carry no roles; the "
        "role filter is ignored (role=6, a role id no role has, answered agents)); chosen on 20 "
        "agents' details",
        "  sync time ....... a full sync reads every agent's roles in about 25 requests: within "
        "one 5-minute window under the budget of 600",
        "  ticket type ..... 'Access Request' (25): has mandatory fields [3, 4, 15, 203, 204, 205, 202, 206, 207]",
        "                    -> set HALO_TICKET_FIELDS to a JSON object with their values, e.g. "
        '{"category_1": "Access"}: HaloITSM refuses a ticket without them (HTTP 400 naming the '
        "field)",
        "  ticket statuses . New (1)",
        "                    -> no ticket status for HALO_TICKET_CLOSED_STATUS='Done'; the "
        "statuses are Cancelled, Closed, Completed, In Progress, New, Waiting on User",
        "  API tickets ..... no APP03 refusal in past runs (a ticket type whose approval process "
        "refuses tickets logged through the API)",
        "  request tickets . HALO_REQUEST_TICKET_TYPE unset: requests come from the command line "
        "and SQL only",
        "  Retry-After ..... sent with 429 answers: waits as told",
    ]
    output = lines(result.output)
    start = output.index(expected[0])
    assert output[start : start + len(expected)] == expected
    assert output[-2] == (
        "                    -> HALO_MAX_REQUESTS_PER_5_MIN is above the 300 hosted tenants allow"
    )
    assert output[-1] == (
        "29 requests, none of them writes. 3 thing(s) to set or check: see the arrows above."
    )


def test_a_tenant_whose_roles_only_details_show_gets_the_times_and_what_to_set(sim, halo_env):
    sim.config.ignore_role_filter, sim.config.role_list = True, "first"

    result = doctor(halo_env, HALO_DETAIL_READS_PER_SYNC="2", HALO_ROLES_MAX_AGE="12h")

    output = lines(result.output)
    start = output.index(next(line for line in output if line.startswith("  memberships")))
    assert output[start : start + 4] == [
        "  memberships ..... agent details (the list rows carry no roles; the role filter is "
        "ignored (role=6, a role id no role has, answered agents); role_list disagrees with the "
        "details of 12 of 20 agents read (agent 2: [Administrator] against its detail's "
        "[Administrator, Agent, Change Manager])); chosen on 20 agents' details",
        # A token, a page, three lists, then a detail per agent.
        "  sync time ....... a first full read of 40 agents' details takes about 45 requests: "
        "within one 5-minute window under the budget of 270; then each sync reads 2 "
        "(HALO_DETAIL_READS_PER_SYNC) in about 7 requests: within one 5-minute window under the "
        "budget of 270",
        "  roles' upkeep ... every agent read within 20 syncs: 20 hours at HALO_SYNC_CRON "
        "'0 * * * *', longer than 12h (HALO_ROLES_MAX_AGE)",
        "                    -> set HALO_DETAIL_READS_PER_SYNC=4",
    ]


def test_the_times_at_10000_agents_follow_from_the_budget(sim, monkeypatch):
    """The first page proves the source; the times are for the tenant's whole list."""
    from halo_pipeline.doctor.memberships import memberships
    from halo_pipeline_tests.helpers import halo_client

    sim.config.ignore_role_filter, sim.config.omit_memberships = True, True
    monkeypatch.delenv("HALO_ROLES_MAX_AGE", raising=False)
    monkeypatch.delenv("HALO_SYNC_CRON", raising=False)
    with halo_client(sim) as client:
        page = client.agent_records()
        said = memberships(client, page, 10_000, client.list_roles(), client.list_teams())

    # 10,104 requests: 270 at once, then 270 a window: 37 windows. 378 details a sync (70% of
    # 10 minutes' budget), 482 requests: one window's wait.
    assert [(f.topic, f.seen, f.advice) for f in said[1:]] == [
        ("sync time", "a first full read of 10000 agents' details takes about 10104 requests: at "
         "least 3 hours 5 minutes under the budget of 270; then each sync reads 378 "
         "(HALO_DETAIL_READS_PER_SYNC) in about 482 requests: at least 5 minutes under the "
         "budget of 270", None),
        ("roles' upkeep", "every agent read within 27 syncs: 1 day 3 hours at HALO_SYNC_CRON "
         "'0 * * * *', within 7d (HALO_ROLES_MAX_AGE)", None),
    ]  # fmt: skip


def test_a_tenant_that_refuses_the_credentials_gets_the_clients_advice(sim, halo_env):
    result = doctor(halo_env, HALO_CLIENT_SECRET="wrong")

    assert result.exit_code == 1
    assert lines(result.output)[-1] == (
        "Error: HaloITSM rejected the client credentials (invalid_client). Check HALO_CLIENT_ID "
        "and HALO_CLIENT_SECRET: they must belong to an API application whose authentication "
        "method is 'Client ID and Secret (Services)'."
    )


def test_missing_settings_are_named(tmp_path):
    result = CliRunner().invoke(
        main, ["doctor"], env={"HALO_BASE_URL": "", "HALO_CLIENT_ID": "", "HALO_CLIENT_SECRET": ""}
    )

    assert result.exit_code == 1
    assert result.output == (
        "Error: HALO_BASE_URL, HALO_CLIENT_ID, HALO_CLIENT_SECRET not set: put the HaloITSM "
        "instance and its API application's credentials in the environment or in .env (see "
        ".env.example).\n"
    )


def test_retry_after_is_reported_as_seen():
    from halo_pipeline.doctor import _retry_after

    assert _retry_after([]).seen == "unknown: no 429 met"
    assert _retry_after([None, None]).seen == (
        "not sent: a 429 waits for the rolling 5-minute window to free up"
    )
    assert _retry_after([None, 7.0]).seen == "sent with 429 answers: waits as told"


def test_request_tickets_their_fields_and_the_approvals_seen_are_reported(sim, halo_env, policy):
    policy(POLICY.replace("required_for: privileged", "required_for: privileged\n  via: halo"))
    pat = sim.add_user("Pat Doe", "pat@example.com")
    fields = {"CFAccessAgent": "agent9@example.com", "CFAccessRole": "Administrator"}
    first = sim.open_request_ticket(pat, "Admin for 9", fields=fields)
    second = sim.open_request_ticket(pat, "Admin for 9 again", fields=fields)
    sim.answer_approval(first, 13, APPROVED, "ok")
    sim.answer_approval(second, 14, AWAITING)
    sim.answer_approval(second, 13, REJECTED, "no", step_id=2)

    result = doctor(halo_env, HALO_REQUEST_TICKET_TYPE="Access Request")

    output = lines(result.output)
    start = output.index("  request tickets . 'Access Request' (25): 2 open")
    assert output[start : start + 9] == [
        "  request tickets . 'Access Request' (25): 2 open",
        f"  request fields .. ticket {second} carries agent=CFAccessAgent, role=CFAccessRole; not "
        "team=CFAccessTeam, action=CFAccessAction, until=CFAccessUntil, for=CFAccessFor",
        f"  approvals ....... TicketApproval answers: 3 rows on open tickets {second}, {first}",
        f"    result 0 ...... 1 rows, 0 dated; e.g. ticket {second}, Søren Haddad, no date: ''",
        f"    result 1 ...... 1 rows, 1 dated; e.g. ticket {first}, Aoife Novák, "
        f"{sim.approvals[0]['dateapproved']}: 'ok'",
        f"    result 2 ...... 1 rows, 1 dated; e.g. ticket {second}, Aoife Novák, "
        f"{sim.approvals[2]['dateapproved']}: 'no'",
        "  result meanings . HALO_APPROVAL_RESULTS unset: no approval in HaloITSM counts "
        "(approval.via: halo)",
        "                    -> match each result above with what HaloITSM shows on that ticket, "
        'then set HALO_APPROVAL_RESULTS, e.g. {"0": "awaiting", "1": "approved", "2": "rejected"}',
        "  Retry-After ..... unknown: no 429 met",
    ]
    assert result.exit_code == 1

    mapped = doctor(halo_env, HALO_REQUEST_TICKET_TYPE="25",
                    HALO_APPROVAL_RESULTS='{"1": "approved", "2": "rejected"}')  # fmt: skip
    assert [line for line in lines(mapped.output) if "result meanings" in line or "->" in line] == [
        "  result meanings . 1 approved, 2 rejected",
        "                    -> result 0 seen and not mapped: a request with such a row waits; "
        "add it to HALO_APPROVAL_RESULTS",
    ]
    assert not any(r.method != "GET" for r in sim.request_log if r.path != "/auth/token")


def test_a_request_ticket_type_that_is_missing_or_lacks_fields_is_named(sim, halo_env):
    missing = doctor(halo_env, HALO_REQUEST_TICKET_TYPE="Access Requests")
    assert (
        "                    -> set HALO_REQUEST_TICKET_TYPE to one of: Incident (1), "
        "Service Request (3), Access Request (25)"
    ) in lines(missing.output)
    none_yet = doctor(halo_env, HALO_REQUEST_TICKET_TYPE="Access Request")
    assert lines(none_yet.output)[14:16] == [
        "  request tickets . 'Access Request' (25): 0 open, none to read its fields from",
        "                    -> open one as a person would (README, Requests from the service "
        "desk), then run doctor again",
    ]
    pat = sim.add_user("Pat Doe", "pat@example.com")
    ticket = sim.open_request_ticket(pat, "Admin", fields={"CFAccessTeam": "Service Desk"})
    lacking = doctor(halo_env, HALO_REQUEST_TICKET_TYPE="Access Request")
    assert lines(lacking.output)[15:17] == [
        f"  request fields .. ticket {ticket} carries team=CFAccessTeam; not agent=CFAccessAgent, "
        "role=CFAccessRole, action=CFAccessAction, until=CFAccessUntil, for=CFAccessFor",
        "                    -> add the missing fields to the ticket type's form, or map "
        "HALO_REQUEST_FIELDS to the fields it has (CFAccessTeam) (README, Requests from the "
        "service desk)",
    ]


def test_a_ticket_type_whose_approval_refuses_api_tickets_is_named_by_the_run_and_doctor(
    sim, halo_env, path
):
    sim.config.approval_at_creation = frozenset({3})  # Service Request, HALO_TICKET_TYPE's default
    request_id = grant(path, "9", "Read Only")

    provision(sim, path, provisioning=True, ticketing=True)

    [(status, error)] = query(path, "SELECT status, error FROM provisioning.requests")
    assert (status, sim.tickets, roles_of(sim, 9)) == ("failed", [], [])
    assert error == (
        "HaloITSM refuses tickets of type 'Service Request' created through the API: its approval "
        "process must approve a ticket before it is logged. Set HALO_TICKET_TYPE to a type whose "
        "approval process starts once the ticket exists. POST /api/tickets: HaloITSM refused the "
        "data (HTTP 400, 'APP03: this ticket type needs approval before it can be logged, which "
        "the API cannot give.')."
    )
    found = lines(doctor(halo_env).output)
    at = found.index(next(line for line in found if line.startswith("  API tickets")))
    assert found[at].startswith(f"  API tickets ..... REFUSED for request {request_id} at 20")
    assert found[at + 1] == f"                    -> {error}"


def test_after_a_sync_it_says_what_a_sync_costs_and_how_old_the_roles_are(
    sim, halo_env, warehouse_path
):
    sync(sim, warehouse_path)
    [(oldest,)] = query(warehouse_path, "SELECT min(roles_read_at) FROM halo.agents")

    said = lines(doctor(halo_env).output)

    at = said.index(next(line for line in said if line.startswith("  last full sync")))
    assert said[at : at + 2] == [
        "  last full sync .. sync 1: 31 requests (memberships: roles per role, teams agent rows); "
        "under the budget of "
        "270 per 5 minutes a sync like it takes within one 5-minute window",
        f"  roles' age ...... 40 agents, the oldest roles read {oldest.astimezone(UTC):%Y-%m-%d %H:%M} "
        "UTC, none older than 7d (HALO_ROLES_MAX_AGE)",
    ]
    with connect(warehouse_path) as con:
        con.execute("UPDATE halo.agents SET roles_read_at = roles_read_at - INTERVAL 8 DAY "
                    "WHERE agent_id = 2")  # fmt: skip
        con.execute("UPDATE halo.agents SET roles_known = false, roles_read_at = NULL "
                    "WHERE agent_id = 3")  # fmt: skip

    # A budget of 5 per 5 minutes: the sync's 31 requests wait six windows.
    [cost, age] = last_sync(warehouse_path, budget=5)

    assert cost.seen.endswith("under the budget of 5 per 5 minutes a sync like it takes at "
                              "least 30 minutes")  # fmt: skip
    assert age.seen.endswith("; 1 never read and 1 read more than 7d (HALO_ROLES_MAX_AGE) ago")
    assert age.advice == "run halo_sync_job: a full sync reads every agent's roles"
    assert doctor(halo_env).exit_code == 1  # something to do
