"""Time-bound grants: applied, then revoked once when they end, by grant_expiry_sensor or the
next provisioning run, against the simulator through the command line (the real job once,
the provisioner in plain Python after it). An end is brought forward in SQL, not waited for."""

from __future__ import annotations

from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import provision, query
from halo_pipeline_tests.policy_support import AUDIT, cli, expire, roles_of


def end_now(path) -> None:
    """The time-bound grants' ends come now: their columns (the earlier of the column and the
    signed end counts)."""
    with connect(path) as con:
        con.execute(
            "UPDATE provisioning.requests SET expires_at = now() - INTERVAL 1 SECOND "
            "WHERE expires_at IS NOT NULL"
        )


def test_a_time_bound_grant_is_revoked_once_when_it_ends(synced, sim, run_job):
    filed = cli(synced, "request", "grant", "--agent", "9", "--role", "Read Only", "--for",
                "2h", *AUDIT)  # fmt: skip
    assert "for 2h from when it is applied" in filed.output
    # Agent 2 holds Agent already: its time-bound grant changes nothing, and ends nothing.
    cli(synced, "request", "grant", "--agent", "2", "--role", "Agent", "--for", "2h", *AUDIT)
    assert run_job("provisioning_job").success
    assert query(synced, "SELECT request_id, status FROM provisioning.requests ORDER BY 1") == [
        (1, "applied"), (2, "already_satisfied"),
    ]  # fmt: skip
    assert roles_of(sim, 9) == ["Read Only"]

    end_now(synced)
    assert expire(synced) == "Filed revoke requests [3] (expired) and [] (leavers)."
    assert expire(synced) == "No grant has ended and no leaver's access is due for revoking."
    provision(sim, synced, provisioning=True, ticketing=True)

    assert query(synced, "SELECT request_id, action, agent_id, requested_by, linked_request_id, status FROM provisioning.requests WHERE request_id > 2") == [(3, "revoke", 9, "policy:expiry", 1, "applied")]  # fmt: skip
    assert roles_of(sim, 9) == []
    assert "Agent" in roles_of(sim, 2)
    provision(sim, synced, provisioning=True, ticketing=True)
    assert query(synced, "SELECT count(*) FROM provisioning.requests") == [(3,)]


def test_the_next_provisioning_run_files_and_applies_an_expiry_itself(synced, sim):
    cli(synced, "request", "grant", "--agent", "9", "--team", "1", "--for", "1h", *AUDIT)
    provision(sim, synced, provisioning=True, ticketing=True)
    end_now(synced)
    provision(sim, synced, provisioning=True, ticketing=True)

    assert query(
        synced,
        "SELECT request_id, action, requested_by, linked_request_id, status FROM provisioning.requests ORDER BY 1",
    ) == [  # fmt: skip
        (1, "grant", "ana@example.com", None, "applied"),
        (2, "revoke", "policy:expiry", 1, "applied"),
    ]
    assert expire(synced) == "No grant has ended and no leaver's access is due for revoking."


def test_a_grant_renewed_before_it_ends_carries_the_later_end(synced, sim):
    cli(synced, "request", "grant", "--agent", "9", "--team", "1", "--for", "1h", *AUDIT)
    provision(sim, synced, provisioning=True, ticketing=True)
    cli(synced, "request", "grant", "--agent", "9", "--team", "1", "--for", "2h", *AUDIT)
    provision(sim, synced, provisioning=True, ticketing=True)

    [(first, _), (second, status)] = query(
        synced, "SELECT expires_at, status FROM provisioning.requests ORDER BY request_id"
    )
    assert status == "already_satisfied" and second > first
    assert query(synced, "SELECT expires_at, last_request_id FROM access.grant_expiries") == [
        (second, 2)
    ]
    assert query(synced, "SELECT expires_at FROM access.grants WHERE principal_id = 9 AND entitlement_id = 'team:1:member'") == [(second,)]  # fmt: skip
