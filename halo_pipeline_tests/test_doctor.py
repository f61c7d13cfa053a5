"""`halo-pipeline doctor`: what a HaloITSM speaks, against the simulator over loopback."""

from __future__ import annotations

from click.testing import CliRunner

from halo_pipeline.cli import main
from halo_pipeline.simulator import Fault

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
        "  list rows ....... no roles: each sync reads members per role (5 requests); teams with "
        "is_manager, fortickets, foropps, forprojects, unassigned_access, otheragent_access, "
        "no_config_access",
        "  role_list ....... present (cross-checks the members read per role)",
        "  unknown fields .. is_admin, department not in list rows: stored as NULL in halo.agents",
        "  ids ............. integral floats (18.0) seen, accepted",
        "  agent detail .... agent 2 read with roles, teams, is_admin, department",
        "  role filter ..... honoured (role=6, no such role, answered none)",
        "  roles and teams . 5 roles, 6 teams",
        "  ticket type ..... 'Service Request' (3): no mandatory fields reported",
        "  ticket statuses . New (1), Closed (9)",
        "  Retry-After ..... unknown: no 429 met",
        f"  request budget .. 270 per 5 minutes, shared by this installation in {budget}; 8 "
        "spent in the last 5 minutes",
        "8 requests, none of them writes. Nothing to change: run halo_sync_job.",
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
        "  role filter ..... IGNORED: role=6 (no such role) answered 40 agents",
        "                    -> the sync refuses to read members per role from this instance, "
        "and its list rows carry no roles: it cannot sync roles here",
        "  roles and teams . 5 roles, 6 teams",
        "  ticket type ..... 'Access Request' (25): has mandatory fields [3, 4, 15, 203, 204, 205, 202, 206, 207]",
        "                    -> set HALO_TICKET_FIELDS to a JSON object with their values, e.g. "
        '{"category_1": "Access"}: HaloITSM refuses a ticket without them (HTTP 400 naming the '
        "field)",
        "  ticket statuses . New (1)",
        "                    -> no ticket status for HALO_TICKET_CLOSED_STATUS='Done'; the "
        "statuses are Cancelled, Closed, Completed, In Progress, New, Waiting on User",
        "  Retry-After ..... sent with 429 answers: waits as told",
    ]
    output = lines(result.output)
    start = output.index(expected[0])
    assert output[start : start + len(expected)] == expected
    assert output[-2] == (
        "                    -> HALO_MAX_REQUESTS_PER_5_MIN is above the 300 hosted tenants allow"
    )
    assert output[-1] == (
        "9 requests, none of them writes. 4 thing(s) to set or check: see the arrows above."
    )


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
