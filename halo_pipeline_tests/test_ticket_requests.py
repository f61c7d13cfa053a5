"""Access requests filed as HaloITSM tickets and approved by HaloITSM's approval process: the
whole loop on the simulator (as Halo sends it: custom fields in the detail only), one run of
the real provisioning_job over loopback, the rules in plain provisioning runs."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs.provisioning import ProvisioningResource
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.halo import HaloConfigError
from halo_pipeline.policy.approvals import unverified
from halo_pipeline.policy.decisions import approve
from halo_pipeline.provisioning import watch
from halo_pipeline.provisioning.filing import file_membership
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.signing import load_keyring
from halo_pipeline.simulator.service_desk import APPROVED, AWAITING, REJECTED
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import halo_client, posts, provision, query
from halo_pipeline_tests.policy_support import POLICY, roles_of

HALO_POLICY = POLICY.replace(
    "approvers: []", "approvers: [agent13@example.com, agent14@example.com]"
)
HALO_POLICY = HALO_POLICY.replace(
    "required_for: privileged", "required_for: privileged\n  via: halo"
)
RESULTS = '{"0": "awaiting", "1": "approved", "2": "rejected"}'
SETTINGS = {"provisioning": True, "ticketing": True, "request_ticket_type": "Access Request",
            "ticket_fields": {"category_1": "Access"}}  # fmt: skip


@pytest.fixture
def desk(sim, path, policy, signing_key, monkeypatch):
    """The tests' policy with approvals in HaloITSM, the signing key, and what `result` means."""
    policy(HALO_POLICY)
    signing_key(path)
    monkeypatch.setenv("HALO_APPROVAL_RESULTS", RESULTS)
    return sim


def ask(sim, role=None, *, agent="agent9@example.com", team=None, user=None, logged_by=None,
        **fields):  # fmt: skip
    """A person (Pat, an end user linked to no agent, or `user`) files an access request."""
    user = user or sim.add_user("Pat Doe", "pat@example.com")
    given = {"CFAccessAgent": agent, "CFAccessRole": role, "CFAccessTeam": team, **fields}
    return sim.open_request_ticket(user, f"Access for {agent}", "please",
                                   fields={k: v for k, v in given.items() if v is not None}, logged_by=logged_by)  # fmt: skip


def job(run_job) -> None:
    """One run of the real provisioning_job (HALO_* from `desk_env`, HaloITSM over loopback)."""
    result = run_job("provisioning_job")
    assert result.success, [event.message for event in result.all_events if event.is_failure]


def requests(path):
    return query(path, "SELECT request_id, status, ticket_id, requested_by, error "
                       "FROM provisioning.requests ORDER BY 1")  # fmt: skip


def notes(sim, ticket_id):
    return [(a["note"], a.get("new_status")) for a in sim.actions if a["ticket_id"] == ticket_id]


def test_a_ticket_for_an_ordinary_role_is_applied_and_closed_on_itself(desk, path):
    ticket = ask(desk, "Read Only", agent="agent3@example.com")

    provision(desk, path, **SETTINGS)

    [(request_id, status, ticket_id, requested_by, _)] = requests(path)
    assert (status, ticket_id, requested_by) == ("applied", ticket, "pat@example.com")
    assert roles_of(desk, 3) == ["Agent", "Read Only"]
    assert len(desk.tickets) == 1  # no second ticket
    assert notes(desk, ticket) == [("Outcome: applied", 9)]
    assert query(path, "SELECT ticket_id, request_id, refused FROM provisioning.request_tickets") == [
        (ticket, request_id, None)
    ]  # fmt: skip
    provision(desk, path, **SETTINGS)  # a second run files nothing more
    assert len(requests(path)) == 1


def test_a_privileged_ticket_waits_for_an_allowed_approver_in_halo(desk_env, path, run_job):
    desk = desk_env  # provisioning_job over loopback, as the daemon runs it
    linked = desk.add_user("Kwame", "kwame@example.com", linked_agent_id=19)
    ticket = ask(desk, "Administrator", user=linked, CFAccessFor="8h")
    job(run_job)
    assert requests(path)[0][1] == "awaiting_approval"

    desk.answer_approval(ticket, 9, APPROVED, "me")  # the grantee
    desk.answer_approval(ticket, 19, APPROVED, "mine", step_id=2)  # the requester, as an agent
    job(run_job)
    [(_, status, _, _, _)] = requests(path)
    assert status == "awaiting_approval" and "Administrator" not in roles_of(desk, 9)
    [event] = query(
        path, "SELECT detail FROM provisioning.request_events ORDER BY event_id DESC LIMIT 1"
    )
    assert "would gain the access" in event[0] and "asked for this request" in event[0]

    desk.answer_approval(ticket, 13, APPROVED, "release plan approved", step_id=3)
    job(run_job)

    assert requests(path)[0][1] == "applied" and "Administrator" in roles_of(desk, 9)
    [(detail,)] = query(path, "SELECT detail FROM provisioning.request_events "
                              "WHERE detail LIKE 'approved in HaloITSM%'")  # fmt: skip
    assert detail.startswith("approved in HaloITSM by Aoife Novák <agent13@example.com> (agent 13)")
    assert detail.endswith(": release plan approved")
    # Recorded as an approval is (signed, by the HaloITSM agent), so the evidence counts it.
    assert query(path, "SELECT from_status, to_status, actor, actor_agent_id, note, "
                       "signature IS NOT NULL FROM provisioning.request_events "
                       "WHERE detail LIKE 'approved in HaloITSM%'") == [
        ("awaiting_approval", "pending", "agent13@example.com", 13, "release plan approved", True)
    ]  # fmt: skip
    assert query(path, "SELECT rule FROM access.policy_violations WHERE agent_id = 9") == []
    with connect(path, read_only=True) as con:
        assert unverified(con, load_keyring()) == []  # provisioning_job's check passes
    assert notes(desk, ticket)[-1] == ("Outcome: applied", 9)


def test_a_rejection_closes_the_ticket_with_nothing_written(desk_env, path, run_job):
    desk = desk_env
    ticket = ask(desk, "Administrator", CFAccessFor="2h")
    desk.answer_approval(ticket, 13, APPROVED, "fine")
    desk.answer_approval(ticket, 14, REJECTED, "not on the rota", step_id=2)
    before = posts(desk)

    job(run_job)

    [(_, status, _, _, error)] = requests(path)
    assert status == "denied"
    assert error.startswith("rejected in HaloITSM by ") and error.endswith(": not on the rota")
    assert posts(desk) - before == 1  # the closing action, no agent write
    # Recorded as a command's denial is: by whom, as a HaloITSM agent, and why.
    assert query(path, "SELECT to_status, actor, actor_agent_id, note, signature IS NOT NULL "
                       "FROM provisioning.request_events WHERE to_status = 'denied' "
                       "AND from_status <> 'denied'") == [
        ("denied", "agent14@example.com", 14, "not on the rota", True)
    ]  # fmt: skip
    assert notes(desk, ticket) == [(f"Outcome: denied: {error}", 9)]


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"CFAccessRole": "Adminstrator"}, "Unknown role 'Adminstrator': not in the last sync. "
         "Did you mean: Administrator (6513270e-269e-4d37-b2a7-4de452e6b438); Integration "
         "(6b0d549b-6f03-475a-9600-a35a099950d8)?"),
        ({"CFAccessRole": "Agent", "CFAccessTeam": "2nd Line Support"},
         "Fill in exactly one of Role (CFAccessRole) and Team (CFAccessTeam)."),
        ({"CFAccessRole": "Agent", "CFAccessUntil": "someday"},
         "Until (CFAccessUntil) reads 'someday': not a date; pick a date such as 2026-12-01."),
        ({"CFAccessRole": "Administrator", "CFAccessFor": "2h", "CFAccessAgent": "4"},
         "Refused by the separation of duties rule 'read-only-stays-read-only': nobody holds "
         "both 'Administrator' and 'Read Only'."),
    ],
)  # fmt: skip
def test_a_ticket_that_cannot_be_a_request_is_answered_and_closed(desk, path, fields, why):
    ticket = ask(desk, **{"agent": fields.pop("CFAccessAgent", "agent9@example.com")},
                 role=None, **fields)  # fmt: skip

    provision(desk, path, **SETTINGS)

    assert requests(path) == []
    [(note, status)] = notes(desk, ticket)
    assert (note, status) == (f"This request cannot go ahead: {why} Open a new access request "
                              "with the fields corrected; this one is closed.", 9)  # fmt: skip
    assert not [a for a in desk.request_log if a.method == "POST" and a.path == "/api/agent"]


def test_an_approval_written_into_the_warehouse_approves_nothing(desk, path):
    ticket = ask(desk, "Administrator", CFAccessFor="2h")
    provision(desk, path, **SETTINGS)

    with connect(path) as con:  # forged: the status and an event, as the command would
        con.execute("UPDATE provisioning.requests SET status = 'pending'")
        con.execute("INSERT INTO provisioning.request_events (event_id, request_id, from_status, "
                    "to_status, detail) VALUES (nextval('provisioning.event_id_seq'), 1, "
                    "'awaiting_approval', 'pending', 'approved by agent13')")  # fmt: skip

    provision(desk, path, **SETTINGS)

    assert requests(path)[0][1] == "awaiting_approval"
    assert "Administrator" not in roles_of(desk, 9) and notes(desk, ticket) == []


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("logged_by", "Søren Haddad (agent 14) does not count: they asked for this request"),
        ("override", "does not count: it was an administrator's override"),
        ("own_agent", "does not count: it was given by this application's own agent"),
        ("unmapped", "result 7 (row 1) is not in HALO_APPROVAL_RESULTS, so nothing counts"),
        ("awaiting", "approvers on ticket 1001 have not all answered"),
    ],
)
def test_approvals_that_count_for_nothing(desk, path, policy, how, why):
    # An approver who logged it for Pat asked for it, in effect.
    logged_by = 14 if how == "logged_by" else None
    ticket = ask(desk, "Administrator", CFAccessFor="2h", logged_by=logged_by)
    if how == "logged_by":
        desk.answer_approval(ticket, 14, APPROVED)
    elif how == "override":
        desk.answer_approval(ticket, 13, APPROVED, admin_overridden=True)
    elif how == "own_agent":
        with halo_client(desk) as client:
            me = client.me()
        # Even when the policy lists it: the application never approves for a person.
        policy(HALO_POLICY.replace("agent14@example.com]", f"agent14@example.com, {me.email}]"))
        desk.answer_approval(ticket, me.id, APPROVED)
    elif how == "unmapped":
        desk.answer_approval(ticket, 13, 7)
    else:
        desk.answer_approval(ticket, 13, APPROVED)
        desk.answer_approval(ticket, 14, AWAITING, step_id=2)

    provision(desk, path, **SETTINGS)

    assert requests(path)[0][1] == "awaiting_approval"
    assert "Administrator" not in roles_of(desk, 9)
    [(detail,)] = query(path, "SELECT detail FROM provisioning.request_events "
                              "ORDER BY event_id DESC LIMIT 1")  # fmt: skip
    assert why in detail, detail


def test_a_ticket_edited_after_its_approval_is_not_applied(desk, path):
    ticket = ask(desk, "Administrator", CFAccessFor="2h")
    provision(desk, path, **SETTINGS)
    desk.answer_approval(ticket, 13, APPROVED)
    desk.edit_request_ticket(ticket, {"CFAccessAgent": "agent10@example.com"})

    provision(desk, path, **SETTINGS)

    [(_, status, _, _, error)] = requests(path)
    assert status == "failed"
    assert error == (
        f"Ticket {ticket} no longer asks what request 1 says (agent: the request says 9, the "
        "ticket asks 10): nothing was written, and a new approval is needed: open a new access "
        "request."
    )
    assert notes(desk, ticket) == [(f"Outcome: failed: {error}", 9)]
    assert "Administrator" not in roles_of(desk, 9) + roles_of(desk, 10)


def test_via_halo_without_approval_results_refuses_to_run(desk, path, monkeypatch):
    monkeypatch.delenv("HALO_APPROVAL_RESULTS")
    ask(desk, "Read Only")

    with pytest.raises(HaloConfigError, match="HALO_APPROVAL_RESULTS is not set, so no approval"):
        provision(desk, path, **SETTINGS)
    assert requests(path) == []


def test_the_real_job_over_loopback_takes_in_a_ticket_and_closes_it(desk_env, path, run_job):
    ticket = ask(desk_env, "Read Only", agent="agent3@example.com")
    first = run_job("provisioning_job")
    second = run_job("provisioning_job")

    assert first.success and second.success
    [(_, status, ticket_id, _, _)] = requests(path)
    assert (status, ticket_id, len(desk_env.tickets)) == ("applied", ticket, 1)
    assert notes(desk_env, ticket) == [("Outcome: applied", 9)]


def test_a_request_changed_with_sql_after_its_ticket_was_approved_is_not_applied(desk, path):
    ticket = ask(desk, "Read Only", CFAccessFor="2h")
    provision(desk, path, **{**SETTINGS, "provisioning": False})  # taken in, not applied
    desk.answer_approval(ticket, 13, APPROVED)
    admin = desk.role_ids()["Administrator"]
    with connect(path) as con:  # the approved ticket asks for Read Only, the row for more
        con.execute("UPDATE provisioning.requests SET entitlement_id = ?, status = 'pending'",
                    [f"role:{admin}:assigned"])  # fmt: skip

    provision(desk, path, **SETTINGS)

    [(_, status, _, _, error)] = requests(path)
    assert status == "failed" and roles_of(desk, 9) == []
    assert error.startswith(f"Ticket {ticket} no longer asks what request 1 says (access: the "
                            f"request says 'role:{admin}:assigned', the ticket asks 'role:")  # fmt: skip


def test_an_approval_of_someone_elses_ticket_does_not_approve_a_row_inserted_with_sql(desk, path):
    ticket = ask(desk, "Administrator", CFAccessFor="2h")
    desk.answer_approval(ticket, 13, APPROVED)
    admin = desk.role_ids()["Administrator"]
    with connect(path) as con:  # the same ask, for another agent, pointing at that ticket
        con.execute(
            "INSERT INTO provisioning.requests (request_id, action, entitlement_id, agent_id, "
            "reason, requested_by, status, valid_for, ticket_id) VALUES (7, 'grant', ?, 19, "
            "'x', 'pat@example.com', 'awaiting_approval', INTERVAL 2 HOUR, ?)",
            [f"role:{admin}:assigned", ticket],
        )

    provision(desk, path, **SETTINGS)

    assert query(path, "SELECT request_id, status FROM provisioning.requests") == [(7, "failed")]
    assert roles_of(desk, 19) == [] and roles_of(desk, 9) == []


def test_a_command_line_request_is_approved_on_the_ticket_the_pipeline_opens(desk, path):
    with connect(path) as con:
        request_id = file_membership(
            con, "grant", agent="9", role="Administrator", team=None, reason="release",
            requested_by="ana@example.com", ends=timedelta(hours=2),
        ).request_id  # fmt: skip
    provision(desk, path, **SETTINGS)
    [opened] = desk.tickets
    assert "Ends: 2h after it is applied" in opened["details"]
    assert requests(path)[0][1] == "awaiting_approval"

    with connect(path) as con:  # changed after the ticket showed the approvers what it asks
        con.execute("UPDATE provisioning.requests SET agent_id = 19")
    desk.answer_approval(opened["id"], 13, APPROVED)
    provision(desk, path, **SETTINGS)
    assert requests(path)[0][1] == "awaiting_approval" and roles_of(desk, 19) == []
    [(detail,)] = query(path, "SELECT detail FROM provisioning.request_events "
                              "ORDER BY event_id DESC LIMIT 1")  # fmt: skip
    assert detail.startswith(f"the request changed since its ticket {opened['id']} was opened "
                             "(agent_id was 9, is 19)")  # fmt: skip

    with connect(path) as con:
        con.execute("UPDATE provisioning.requests SET agent_id = 9")
    provision(desk, path, **SETTINGS)
    assert (request_id, "applied") == requests(path)[0][:2]
    assert "Administrator" in roles_of(desk, 9)


def tick(defs, instance, path, cursor=None):
    """One evaluation of ticket_intake_sensor, as the daemon makes it (HALO_* from the
    environment)."""
    resources = {"warehouse": DuckDBWarehouse(database=str(path)), "halo": HaloResource(),
                 "provisioning": ProvisioningResource()}  # fmt: skip
    with dg.build_sensor_context(
        instance=instance, resources=resources, cursor=cursor, definitions=defs
    ) as context:
        return defs.resolve_sensor_def("ticket_intake_sensor")(context)


@pytest.fixture
def desk_env(desk, path, halo_env, monkeypatch):
    for name, value in {**halo_env, "HALO_PROVISIONING": "true", "HALO_TICKETING": "true",
                        "HALO_DUCKDB_PATH": str(path),
                        "HALO_REQUEST_TICKET_TYPE": "Access Request",
                        "HALO_TICKET_FIELDS": '{"category_1": "Access"}'}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return desk


def test_the_intake_sensor_asks_for_a_run_only_when_halo_has_news(desk_env, path, instance):
    sim, defs = desk_env, build_definitions()
    idle = tick(defs, instance, path)
    assert idle.skip_reason.skip_message == "No request ticket is new." and not idle.run_requests
    ordinary = ask(sim, "Read Only", agent="agent3@example.com")
    privileged = ask(sim, "Administrator", CFAccessFor="2h")

    news = tick(defs, instance, path, idle.cursor)
    [run] = news.run_requests
    assert run.tags == {"halo/tickets": f"{ordinary},{privileged}"}
    assert tick(defs, instance, path, news.cursor).run_requests[0].run_key == run.run_key
    provision(sim, path, **SETTINGS)  # takes both in: one applied, one awaiting approval
    quiet = tick(defs, instance, path, news.cursor)
    assert quiet.skip_reason.skip_message == "No request ticket is new."
    assert requests(path)[1][1] == "awaiting_approval"

    reads = sim.request_counts[("GET", "/api/TicketApproval")]
    sim.answer_approval(privileged, 13, AWAITING)  # asked, not answered: no news
    assert not tick(defs, instance, path, quiet.cursor).run_requests
    sim.answer_approval(privileged, 13, APPROVED, "ok")
    answered = tick(defs, instance, path, quiet.cursor)
    assert answered.run_requests[0].tags == {"halo/tickets": str(privileged)}
    assert not tick(defs, instance, path, answered.cursor).run_requests
    assert sim.request_counts[("GET", "/api/TicketApproval")] - reads == 3  # one a tick

    sim.edit_request_ticket(privileged, {"CFAccessFor": "4h"})
    [edited] = tick(defs, instance, path, answered.cursor).run_requests
    assert edited.tags == {"halo/tickets": str(privileged)}


def test_the_run_the_sensor_asks_for_takes_each_ticket_in_once(desk_env, path, instance):
    sim, defs = desk_env, build_definitions()
    tickets = [ask(sim, "Read Only", agent=f"agent{n}@example.com") for n in (3, 13, 14)]
    [run] = tick(defs, instance, path).run_requests
    job = defs.resolve_job_def("provisioning_job")

    ran = job.execute_in_process(instance=instance, tags=run.tags, raise_on_error=False)

    assert ran.success
    assert not tick(defs, instance, path).run_requests  # taken in: no news
    provision(sim, path, **SETTINGS)  # a run after it, headless, finds nothing to take in
    assert sorted((t, s) for _, s, t, _, _ in requests(path)) == [
        (ticket, "applied") for ticket in tickets
    ]
    assert query(path, "SELECT count(*), count(DISTINCT ticket_id) FROM "
                       "provisioning.request_tickets") == [(3, 3)]  # fmt: skip
    assert [notes(sim, t) for t in tickets] == [[("Outcome: applied", 9)]] * 3
    assert len(sim.tickets) == 3


@pytest.mark.parametrize("via", ["halo", "either"])
def test_an_approval_from_halo_carries_its_request_once(desk, path, policy, via):
    policy(HALO_POLICY.replace("via: halo", f"via: {via}"))
    ticket = ask(desk, "Administrator", CFAccessFor="2h")
    desk.answer_approval(ticket, 13, APPROVED, "once")
    provision(desk, path, **SETTINGS)
    assert requests(path)[0][1] == "applied" and "Administrator" in roles_of(desk, 9)

    desk.set_agent_roles(9, [])  # taken away since, and the request reset with SQL
    with connect(path) as con:
        con.execute("UPDATE provisioning.requests SET status = 'pending'")
    provision(desk, path, **SETTINGS)

    [(_, status, _, _, _)] = requests(path)
    assert status == "awaiting_approval" and roles_of(desk, 9) == []
    [(detail,)] = query(path, "SELECT detail FROM provisioning.request_events "
                              "ORDER BY event_id DESC LIMIT 1")  # fmt: skip
    assert f"the approval on ticket {ticket} (row 1) was used already" in detail


def test_a_ticket_halo_refuses_to_open_for_approval_fails_that_request_alone(desk, path):
    desk.config.approval_at_creation = frozenset({3})  # Service Request: CAB approval at logging
    with connect(path) as con:
        refused = file_membership(con, "grant", agent="9", role="Administrator", team=None,
                                  reason="release", requested_by="ana@example.com",
                                  ends=timedelta(hours=2)).request_id  # fmt: skip
    ordinary = ask(desk, "Read Only", agent="agent3@example.com")  # its own ticket, type 25

    provision(desk, path, **SETTINGS)

    assert [(r, s) for r, s, *_ in requests(path)] == [(refused, "failed"), (2, "applied")]
    [(error,)] = query(path, "SELECT error FROM provisioning.requests WHERE request_id = ?",
                       [refused])  # fmt: skip
    assert error.startswith("HaloITSM refuses tickets of type 'Service Request' created through "
                            "the API: its approval process must approve a ticket before it is "
                            "logged. Set HALO_TICKET_TYPE")  # fmt: skip
    assert notes(desk, ordinary) == [("Outcome: applied", 9)]


def test_news_no_run_took_up_is_asked_for_again_after_a_while(desk, path):
    ticket = ask(desk, "Read Only")
    with connect(path, read_only=True) as con:
        watched = watch.Watched.read(con, ProvisioningSettings(**SETTINGS))
    with halo_client(desk) as client:
        first = watch.look(client, watched, watch.Cursor(), approvals=True, now=1000.0)
        same = watch.look(client, watched, first.cursor, approvals=True, now=1599.0)
        again = watch.look(client, watched, same.cursor, approvals=True, now=1600.0)

    assert first.news == [(ticket, f"new, updated {desk.tickets[0]['last_update']}")]
    assert first.run_key == same.run_key  # a run was asked for; the same news asks no other
    assert again.run_key != first.run_key  # ten minutes on, still untaken: asked again
    assert again.run_key.removesuffix("-1") == first.run_key.removesuffix("-0")


def test_a_rejection_halo_records_without_a_date_is_news(desk, path):
    ticket = ask(desk, "Administrator", CFAccessFor="2h")
    provision(desk, path, **SETTINGS)  # waits for approval
    desk.answer_approval(ticket, 13, AWAITING)
    with connect(path, read_only=True) as con:
        watched = watch.Watched.read(con, ProvisioningSettings(**SETTINGS))
    with halo_client(desk) as client:
        quiet = watch.look(client, watched, watch.Cursor(), approvals=True,
                           results={0: "awaiting", 2: "rejected"}, now=0.0)  # fmt: skip
        desk.answer_approval(ticket, 13, REJECTED, "no", dated=False)
        answered = watch.look(client, watched, quiet.cursor, approvals=True,
                              results={0: "awaiting", 2: "rejected"}, now=1.0)  # fmt: skip

    assert quiet.news == []
    assert [t for t, _ in answered.news] == [ticket]


def test_who_asked_on_a_ticket_cannot_approve_it_on_the_command_line_either(desk, path, policy):
    policy(HALO_POLICY.replace("via: halo", "via: either").replace("agent14@", "agent19@"))
    linked = desk.add_user("Kwame", "kwame@example.com", linked_agent_id=19)
    ask(desk, "Administrator", user=linked, CFAccessFor="2h")
    provision(desk, path, **SETTINGS)
    with connect(path) as con, halo_client(desk) as halo:  # Kwame's own agent, on the CLI
        approve(con, halo, load_keyring(), 1, "agent19@example.com", "mine", lambda _: True)

    provision(desk, path, **SETTINGS)

    assert requests(path)[0][1] == "awaiting_approval" and "Administrator" not in roles_of(desk, 9)
    [(detail,)] = query(path, "SELECT detail FROM provisioning.request_events "
                              "ORDER BY event_id DESC LIMIT 1")  # fmt: skip
    assert (
        "the approval by Kwame Иванов <agent19@example.com> (agent 19) does not count: they "
        "asked for this request on ticket 1001; nobody approves their own request"
    ) in detail
