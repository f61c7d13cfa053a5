"""Tokens, retries and errors of the HaloITSM client against the simulator's failure modes."""

from __future__ import annotations

import dataclasses
import time
import traceback

import pytest

from halo_pipeline.halo import (
    HaloAuthError,
    HaloClient,
    HaloMalformedResponseError,
    HaloPermissionError,
    HaloRateLimitError,
    HaloServerError,
    HaloSettings,
    HaloTenantError,
    HaloUnreachableError,
    fetch_snapshot,
)
from halo_pipeline.simulator import Fault, generate_dataset

RATE_LIMIT_BODY = "Rate Limit Reached - 300 Requests per rolling 5 minute window"
TOKEN = ("POST", "/auth/token")


def full_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


def test_token_expiring_in_the_middle_of_a_sync_is_renewed_once(sim, make_client):
    # The third agent page arrives after every token has been revoked.
    sim.inject(Fault(path="/api/agent", expire_tokens=True, after=2))

    with make_client(page_size=10) as client:
        agents = client.list_agents()

    assert len(agents) == 40
    assert sim.request_counts[TOKEN] == 2
    assert [r.status for r in sim.request_log if r.path == "/api/agent"].count(401) >= 1


def test_token_is_renewed_before_it_expires(sim, make_client):
    now = [1000.0]
    sim.config.clock = lambda: now[0]
    sim.config.token_lifetime_s = 600

    client = make_client(clock=lambda: now[0])
    client.list_roles()
    now[0] += 550  # within the last minute of the token's life: renew first
    client.list_roles()
    now[0] += 10
    client.list_roles()

    assert sim.request_counts[TOKEN] == 2
    assert 401 not in [r.status for r in sim.request_log]


def test_429_with_retry_after_waits_as_told(sim, make_client, sleeps):
    sim.inject(
        Fault(path="/api/roles", status=429, body=RATE_LIMIT_BODY, headers={"Retry-After": "7"})
    )

    roles = make_client().list_roles()

    assert len(roles) == 5
    assert sleeps == [7.0]
    assert sim.request_counts[("GET", "/api/roles")] == 2


def test_429_without_retry_after_waits_for_the_rolling_window_to_free_up(
    sim, make_client, sleeps, caplog
):
    sim.inject(Fault(path="/api/roles", status=429, body=RATE_LIMIT_BODY))

    with caplog.at_level("INFO"):
        roles = make_client().list_roles()

    assert len(roles) == 5
    # The budget's oldest request (the token) leaves the 5-minute window about 301 s from
    # now; the wait is slept a minute at a time, each minute logged.
    assert 295 <= sum(sleeps) <= 301
    assert sleeps[:5] == [60.0] * 5
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        m.startswith(f"rate limited, waiting {round(sum(sleeps))} s (GET /api/roles: ")
        for m in messages
    )
    assert sum("still waiting for HaloITSM" in m for m in messages) == 5
    assert sim.request_counts[("GET", "/api/roles")] == 2


def test_429_that_never_ends_fails_once_the_longest_wait_is_spent(sim, make_client, sleeps):
    sim.inject(Fault(path="/api/roles", status=429, body=RATE_LIMIT_BODY, times=100))

    with pytest.raises(HaloRateLimitError) as error:
        make_client().list_roles()

    waited = round(sum(sleeps))
    assert 295 <= waited <= 301  # a second window's wait would pass HALO_RATE_LIMIT_MAX_WAIT_S
    assert str(error.value) == (
        f"GET /api/roles: HaloITSM's rate limit was reached (HTTP 429, '{RATE_LIMIT_BODY}'). "
        "Lower HALO_MAX_REQUESTS_PER_5_MIN below the instance's limit or sync less often. "
        f"Still refused after waiting {waited}s in all (HALO_RATE_LIMIT_MAX_WAIT_S=330)."
    )
    assert sim.request_counts[("GET", "/api/roles")] == 2


def test_a_real_rolling_window_is_waited_out(sim, halo_url):
    """No fake sleep: the simulator refuses past 4 requests a second, as Halo does past 300
    per 5 minutes, and the client waits for its oldest request to leave the window."""
    sim.config.rate_limit_per_5_min, sim.config.rate_window_s = 4, 1.0
    settings = HaloSettings(
        base_url=halo_url,
        client_id=sim.config.client_id,
        client_secret=sim.config.client_secret,
        budget_window_s=1.0,
    )
    transport = sim.transport() if halo_url == "http://halo.test" else None
    started = time.monotonic()
    with HaloClient(settings, transport=transport) as client:
        answers = [len(client.list_roles()) for _ in range(7)]  # with the token, 8 requests
        rate_limited = list(client.http.rate_limited)
    elapsed = time.monotonic() - started

    assert answers == [5] * 7
    assert rate_limited and set(rate_limited) == {None}  # no Retry-After was sent
    assert 429 in [entry.status for entry in sim.request_log]
    assert 1.0 <= elapsed < 8


def test_a_burst_of_5xx_is_retried(sim, make_client, sleeps):
    sim.inject(
        Fault(path="/api/agent", status=503, body="<html><title>Service Unavailable</title></html>",
              content_type="text/html", times=3)
    )  # fmt: skip

    with make_client(page_size=10) as client:
        agents = client.list_agents()

    assert len(agents) == 40
    assert len(sleeps) == 3
    assert sim.request_counts[("GET", "/api/agent")] == 4 + 3


def test_5xx_that_persists_fails_with_the_server_message(sim, make_client):
    sim.inject(
        Fault(path="/api/team", status=500, times=100, content_type="application/json",
              body='{"ClassName": "System.Exception", "Message": "Database timeout"}')
    )  # fmt: skip

    with pytest.raises(HaloServerError) as error:
        make_client().list_teams()

    assert str(error.value) == (
        "GET /api/team: HaloITSM answered HTTP 500 ('Database timeout'). Gave up after 6 attempts."
    )


def test_creates_are_not_repeated_after_a_5xx_that_may_have_landed(sim, make_client, sleeps):
    sim.inject(Fault(path="/api/agent", method="POST", status=500, body="boom"))

    with pytest.raises(HaloServerError):
        make_client().http.post("/agent", [{"name": "New Agent", "email": "new@example.com"}])

    assert sleeps == []
    assert sim.request_counts[("POST", "/api/agent")] == 1


def test_creates_are_repeated_after_a_429(sim, make_client, sleeps):
    sim.inject(Fault(path="/api/agent", method="POST", status=429, body=RATE_LIMIT_BODY))

    created = make_client().http.post("/agent", [{"name": "New Agent", "email": "new@example.com"}])

    assert created["name"] == "New Agent"
    assert 295 <= sum(sleeps) <= 301
    assert sim.request_counts[("POST", "/api/agent")] == 2


TRUNCATED = Fault(
    path="/api/team", status=200, body='{"results": [', content_type="application/json"
)


def test_a_body_cut_short_once_is_asked_again(sim, make_client, sleeps):
    sim.inject(TRUNCATED)

    teams = make_client().list_teams()

    assert [team.id for team in teams] == [team.id for team in generate_dataset().teams]
    assert sim.request_counts[("GET", "/api/team")] == 2
    assert len(sleeps) == 1


def test_a_body_cut_short_every_time_is_a_clear_error_after_the_retries(sim, make_client, sleeps):
    sim.inject(dataclasses.replace(TRUNCATED, times=100))

    with pytest.raises(HaloMalformedResponseError) as error:
        make_client().list_teams()

    assert str(error.value) == (
        "GET /api/team answered HTTP 200 with a body that is not valid JSON (Expecting value: "
        "line 1 column 14 (char 13); starts '{\"results\": ['). Gave up after 6 attempts."
    )
    assert sim.request_counts[("GET", "/api/team")] == 6


def test_a_create_answered_with_a_body_cut_short_is_not_repeated(sim, make_client, sleeps):
    sim.inject(dataclasses.replace(TRUNCATED, path="/api/agent", method="POST"))

    with pytest.raises(HaloMalformedResponseError, match="^POST /api/agent answered HTTP 200"):
        make_client().http.post("/agent", [{"name": "New Agent", "email": "new@example.com"}])

    # The first answer was cut short, but the server may have created the agent.
    assert sim.request_counts[("POST", "/api/agent")] == 1
    assert sleeps == []


def test_an_html_page_instead_of_json_points_at_the_base_url(sim, make_client, halo_url):
    sim.inject(
        Fault(path="/api/agent", status=200, content_type="text/html",
              body="<!DOCTYPE html><html><head><title>Sign in</title></head></html>")
    )  # fmt: skip

    with pytest.raises(HaloMalformedResponseError) as error:
        make_client().list_agents()

    assert str(error.value) == (
        "GET /api/agent answered HTTP 200 with an HTML page titled 'Sign in' instead of JSON. "
        "Check HALO_BASE_URL: the API must be at {HALO_BASE_URL}/api (got "
        f"{halo_url}); a proxy or login page may be in the way."
    )


def test_rows_of_the_wrong_type_name_the_row_and_field(sim, make_client):
    sim.inject(
        Fault(path="/api/agent", status=200, content_type="application/json",
              body='[{"id": 2, "name": "Zoë", "isdisabled": "sometimes"}]')
    )  # fmt: skip

    with pytest.raises(HaloMalformedResponseError) as error:
        make_client().list_agents()

    assert str(error.value).startswith(
        "GET /api/agent page 1: row 0 (id 2) field 'isdisabled': Input should be a valid boolean"
    )


def test_wrong_client_secret_is_a_clear_error_without_the_secret(sim, make_client):
    secret = "wrong-secret-5f1d2c"

    with pytest.raises(HaloAuthError) as error:
        make_client(client_secret=secret).list_roles()

    assert str(error.value) == (
        "HaloITSM rejected the client credentials (invalid_client). Check HALO_CLIENT_ID and "
        "HALO_CLIENT_SECRET: they must belong to an API application whose authentication "
        "method is 'Client ID and Secret (Services)'."
    )
    assert secret not in full_text(error.value)
    assert sim.request_counts[TOKEN] == 1  # not retried


def test_secret_echoed_by_a_server_is_scrubbed(sim, make_client):
    sim.inject(
        Fault(path="/auth/token", status=400, content_type="application/json",
              body=f'{{"error": "invalid_request", "error_description": '
                   f'"bad client_secret {sim.config.client_secret}"}}')
    )  # fmt: skip

    with pytest.raises(HaloAuthError) as error:
        make_client().list_roles()

    assert "bad client_secret ***" in str(error.value)
    assert sim.config.client_secret not in full_text(error.value)


def test_unknown_scope_says_to_use_all(sim, make_client):
    with pytest.raises(HaloAuthError) as error:
        make_client(scope="read:agents").list_roles()

    assert "rejected the scope 'read:agents' (invalid_scope). Set HALO_SCOPE to 'all'" in str(
        error.value
    )


def test_tenant_is_sent_on_the_token_request(sim, make_client):
    sim.config.tenant = "acme"

    make_client(tenant="acme").list_roles()

    token_request = next(r for r in sim.request_log if r.path == "/auth/token")
    assert token_request.query == {"tenant": "acme"}


def test_unknown_tenant_is_a_clear_error(sim, make_client, sleeps):
    sim.config.tenant = "acme"

    with pytest.raises(HaloTenantError) as error:
        make_client(tenant="acne").list_roles()

    assert "for tenant 'acne' failed (HTTP 500 with an HTML page" in str(error.value)
    assert "check HALO_TENANT" in str(error.value)
    assert sleeps == []


def test_missing_permission_says_what_to_grant(sim, make_client):
    sim.config.forbidden_paths = ("/api/agent",)

    with pytest.raises(HaloPermissionError) as error:
        make_client().list_agents()

    assert str(error.value).startswith("GET /api/agent: HaloITSM refused the request (HTTP 403, ")
    assert "Give the API application's agent the permission" in str(error.value)


def test_unreachable_host_is_retried_then_named(sleeps):
    settings = HaloSettings(base_url="http://127.0.0.1:9", client_id="x", client_secret="s3cr3t")

    with (
        HaloClient(settings, sleep=sleeps.append) as client,
        pytest.raises(HaloUnreachableError) as error,
    ):
        client.list_roles()

    assert str(error.value).startswith(
        "POST http://127.0.0.1:9/auth/token: could not reach HaloITSM (ConnectError: "
    )
    assert "Check HALO_BASE_URL / HALO_AUTH_URL" in str(error.value)
    assert str(error.value).endswith("Gave up after 6 attempts.")
    assert len(sleeps) == 5
    assert "s3cr3t" not in full_text(error.value)


def test_request_budget_spaces_requests_out(sim, make_client):
    client = make_client(max_requests_per_5_min=3, budget_window_s=0.5, detail_reads_per_sync=1)

    started = time.monotonic()
    # 1 token + 3 lists + 1 agent page + the role filter's proof + 5 roles + one agent's
    # detail proving them: four windows' worth
    snapshot = fetch_snapshot(client)
    elapsed = time.monotonic() - started

    assert len(snapshot.agents) == 40
    assert client.request_count == 12
    assert elapsed >= 1.45


def test_retry_warnings_never_carry_the_secret(sim, make_client, caplog):
    echo = f"upstream said: client_secret={sim.config.client_secret}"
    sim.inject(Fault(path="/auth/token", status=503, body=echo, times=2))

    with caplog.at_level("WARNING"):
        make_client().list_roles()

    warnings = [
        record.getMessage() for record in caplog.records if "retrying" in record.getMessage()
    ]
    assert len(warnings) == 2
    assert all("client_secret=***" in message for message in warnings)
    assert sim.config.client_secret not in caplog.text


def test_a_retry_after_longer_than_the_window_fails_at_once(sim, make_client, sleeps):
    sim.inject(
        Fault(
            path="/auth/token",
            status=429,
            body=RATE_LIMIT_BODY,
            headers={"Retry-After": "3600"},
            times=5,
        )
    )

    with pytest.raises(HaloRateLimitError) as error:
        make_client().list_roles()

    assert str(error.value).endswith(
        "sync less often. Retry-After asked for 3600s, longer than HALO_RATE_LIMIT_MAX_WAIT_S."
    )
    assert sleeps == []
    assert sim.request_counts[TOKEN] == 1
