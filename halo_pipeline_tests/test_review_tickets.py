"""Review campaigns in HaloITSM: `review start --notify` opens one ticket per reviewer,
assigned to them, with their sheet (and page) attached; `review close` leaves the tickets to
provisioning_job, which answers each with the outcome and closes it. Against the simulator
over loopback, with the real provisioning_job."""

from __future__ import annotations

import dagster as dg
import pytest

from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs.provisioning import ProvisioningResource
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.simulator import Fault
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import query
from halo_pipeline_tests.test_reviews import World, ok, refused, synced_world, the_world


@pytest.fixture(scope="module")
def world_template(tmp_path_factory):
    return synced_world(tmp_path_factory)


@pytest.fixture
def world(sim, halo_env, warehouse_path, policy, signing_key, world_template) -> World:
    """test_reviews' world: Payroll Admin, held by agents whose team managers review it."""
    return the_world(sim, warehouse_path, policy, signing_key, world_template)


@pytest.fixture
def writes(monkeypatch):
    monkeypatch.setenv("HALO_PROVISIONING", "true")
    monkeypatch.setenv("HALO_TICKETING", "true")


def queue(path) -> str:
    [(queue_id,)] = query(path, "SELECT queue_id FROM provisioning.queue_info")
    return str(queue_id)


def tick(path, instance):
    """One evaluation of provisioning_request_sensor, HALO_* from the environment."""
    resources = {"warehouse": DuckDBWarehouse(database=str(path)), "halo": HaloResource(),
                 "provisioning": ProvisioningResource()}  # fmt: skip
    sensor = build_definitions().resolve_sensor_def("provisioning_request_sensor")
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        return sensor(context)


def start(world) -> str:
    return ok(world.path, "start", "payroll", "--scope", "role:Payroll Admin", "--due",
              "2026-12-15", "--notify")  # fmt: skip


def test_notify_opens_a_ticket_per_reviewer_and_the_run_closes_them_after_close(
    sim, world, writes, run_job, instance, tmp_path
):
    said = start(world)

    ids, tag = world.ids, f"[halo-pipeline {queue(world.path)} review 1/"
    tickets = {ticket["agent_id"]: ticket for ticket in sim.tickets}
    assert sorted(tickets) == sorted([ids["avery"], ids["mia"], ids["ola"]])
    mia = tickets[ids["mia"]]
    assert mia["summary"] == (
        f"{tag}{ids['mia']}] Access review payroll: 2 grant(s) for you to review, due 2026-12-15"
    )
    assert mia["details"].splitlines()[1:8] == [
        "",
        "By access:",
        "  2 x role Payroll Admin",
        "",
        "Your grants:",
        f"  {world.grant('ned')}: Ned Newcomer (ned@example.com), role Payroll Admin",
        f"  {world.grant('ola')}: Ola Owner (ola@example.com), role Payroll Admin",
    ]
    files = {(a["ticket_id"], a["filename"]): a["content"] for a in sim.attachments}
    sheet = "review-payroll-mia@example.com.csv"
    assert sorted(name for ticket_id, name in files if ticket_id == mia["id"]) == [
        sheet, "review-payroll-mia@example.com.html",
    ]  # fmt: skip
    export = tmp_path / "mia.csv"
    ok(world.path, "export", "payroll", "--format", "csv", "--reviewer", "mia@example.com",
       "--out", str(export))  # fmt: skip
    assert files[(mia["id"], sheet)] == export.read_bytes()
    page = files[(mia["id"], "review-payroll-mia@example.com.html")].decode()
    assert world.grant("ned") in page and world.grant("pat") not in page
    assert said.splitlines()[3:] == [
        f"  ticket {tickets[ids[who]]['id']} for {email} (agent {ids[who]}): {n} grant(s), "
        f"attached review-payroll-{email}.csv, review-payroll-{email}.html"
        for who, email, n in [("avery", "approver@example.com", 1),
                              ("mia", "mia@example.com", 2), ("ola", "ola@example.com", 1)]
    ]  # fmt: skip

    closed = ok(world.path, "close", "payroll", "--by", "lead@example.com", "--force")
    assert closed.splitlines()[-1] == (
        "provisioning_job answers and closes the 3 reviewer ticket(s) in HaloITSM with the outcome."
    )
    assert sim.actions == []  # the close itself never waits on HaloITSM
    [asked] = tick(world.path, instance).run_requests  # nothing revoked: the tickets alone
    assert asked.run_key.startswith("reviewer-tickets-")
    assert run_job("provisioning_job").success

    [(closed_at,)] = query(world.path, "SELECT strftime(closed_at, '%Y-%m-%d %H:%M') "
                                       "FROM reviews.campaigns")  # fmt: skip
    assert sorted((a["ticket_id"], a["note"], a["new_status"]) for a in sim.actions) == sorted(
        (tickets[ids[who]]["id"],
         f"Outcome: campaign payroll closed by lead@example.com at {closed_at} UTC; of your {n} "
         f"grant(s): {n} not reviewed. Revoked grants are removed by revoke requests, each with "
         "its own record.", 9)
        for who, n in [("avery", 1), ("mia", 2), ("ola", 1)]
    )  # fmt: skip
    assert tick(world.path, instance).skip_message == "No provisioning request is waiting."
    assert run_job("provisioning_job").success
    assert len(sim.actions) == 3 and len(sim.tickets) == 3  # nothing twice


def test_what_a_network_error_leaves_the_next_run_finishes_without_a_second_ticket(
    sim, world, writes, run_job
):
    # A create is never repeated blindly (it may have landed): the first reviewer's page meets
    # a 503, which stops that reviewer's ticket only.
    sim.inject(Fault(path="/api/Attachment", status=503, after=1))

    result = refused(world.path, "start", "payroll", "--scope", "role:Payroll Admin", "--notify")

    first = min(ticket["id"] for ticket in sim.tickets)
    assert result.splitlines()[-1] == (
        "Error: The campaign started, but not every reviewer's ticket was opened: "
        "approver@example.com's ticket: POST /api/Attachment: HaloITSM answered HTTP 503 (an "
        "empty body). provisioning_job's next run opens the rest."
    )
    assert [line.split(":")[0] for line in result.splitlines()[3:-1]] == [
        f"  ticket {first + 1} for mia@example.com (agent {world.ids['mia']})",
        f"  ticket {first + 2} for ola@example.com (agent {world.ids['ola']})",
    ]
    assert query(world.path, "SELECT reviewer, ticket_id, attached, notified_at IS NULL "
                             "FROM reviews.reviewer_tickets ORDER BY 1") == [
        ("approver@example.com", first, ["review-payroll-approver@example.com.csv"], True),
        ("mia@example.com", first + 1, ["review-payroll-mia@example.com.csv",
                                        "review-payroll-mia@example.com.html"], False),
        ("ola@example.com", first + 2, ["review-payroll-ola@example.com.csv",
                                        "review-payroll-ola@example.com.html"], False),
    ]  # fmt: skip

    assert run_job("provisioning_job").success

    assert len(sim.tickets) == 3
    assert sorted(a["filename"] for a in sim.attachments) == sorted(
        f"review-payroll-{email}.{kind}"
        for email in ("approver@example.com", "mia@example.com", "ola@example.com")
        for kind in ("csv", "html")
    )
    assert query(world.path, "SELECT count(*) FROM reviews.reviewer_tickets "
                             "WHERE notified_at IS NULL") == [(0,)]  # fmt: skip


def test_notify_needs_reviewers_who_are_agents_and_a_dry_run_posts_nothing(sim, world):
    said = refused(world.path, "start", "payroll", "--scope", "role:Payroll Admin",
                   "--reviewer", "auditor@example.com", "--notify")  # fmt: skip
    assert said == (
        "Error: --notify assigns each reviewer a ticket, which needs an enabled agent: "
        "auditor@example.com is not a HaloITSM agent (as of the last sync). Name another "
        "--reviewer, or start without --notify and send the pages yourself. No campaign was "
        "started.\n"
    )
    assert query(world.path, "SELECT count(*) FROM reviews.campaigns") == [(0,)]

    dry = start(world)  # HALO_PROVISIONING is not set

    assert dry.splitlines()[3:] == [
        "HALO_PROVISIONING and HALO_TICKETING are not both true: a dry run.",
        *(f"  would open a ticket for {email} (agent {world.ids[who]}) with {n} grant(s) and "
          f"attach review-payroll-{email}.csv, review-payroll-{email}.html"
          for who, email, n in [("avery", "approver@example.com", 1),
                                ("mia", "mia@example.com", 2), ("ola", "ola@example.com", 1)]),
    ]  # fmt: skip
    assert sim.tickets == [] and sim.attachments == []


def test_a_ticket_opened_by_a_run_that_died_before_recording_it_is_found_and_closed(
    sim, world, writes, run_job
):
    start(world)
    mia = next(t["id"] for t in sim.tickets if t["agent_id"] == world.ids["mia"])
    with connect(world.path) as con:  # HaloITSM made it; the run died before the row said so
        con.execute("UPDATE reviews.reviewer_tickets SET ticket_id = NULL, notified_at = NULL "
                    "WHERE reviewer = 'mia@example.com'")  # fmt: skip
    ok(world.path, "close", "payroll", "--by", "lead@example.com", "--force")

    assert run_job("provisioning_job").success

    assert len(sim.tickets) == 3  # found by its tag, not opened again
    [(note, status)] = [(a["note"], a["new_status"]) for a in sim.actions if a["ticket_id"] == mia]
    assert note.startswith("Outcome: campaign payroll closed by lead@example.com") and status == 9
