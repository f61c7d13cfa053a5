"""One applier at a time, whatever starts it: provisioning_job runs started at once (headless,
as `dagster job execute` starts them, which bypasses Dagster's run queue; and one the sensor
asked for) apply each request once, write each agent once, open one ticket per request, take
a person's request ticket in once, and keep every time-bound grant's expiry."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from datetime import timedelta

import dagster as dg
import pytest

from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs.provisioning import ProvisioningResource
from halo_pipeline.defs.resources import DuckDBWarehouse, HaloResource
from halo_pipeline.policy.revokes import due_expiries
from halo_pipeline.requests.queue import database_now
from halo_pipeline.requests.signing import load_keyring
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import query
from halo_pipeline_tests.policy_support import AUDIT, cli
from halo_pipeline_tests.processes import dagster_env, execute, running

pytestmark = pytest.mark.slow


def file_eight(sim, path) -> list[int]:
    """Eight requests for eight agents: four time-bound role grants, four team memberships."""
    agents = []
    for agent_id in range(2, 41):
        held = sim.get_agent(agent_id)
        if not held["isdisabled"] and not held["isapiagent"]:
            agents.append((agent_id, {row["team_id"] for row in held["teams"] if row["in_section"]},
                           {role["name"] for role in held["roles"]}))  # fmt: skip
    timed = [a for a, _, roles in agents if "Integration" not in roles][:4]
    teams = [a for a, teams, _ in agents if 1 not in teams and a not in timed][:4]
    for agent_id in timed:
        filed = cli(path, "request", "grant", "--agent", str(agent_id), "--role", "Integration",
                    "--for", "1h", *AUDIT)  # fmt: skip
        assert filed.exit_code == 0, filed.output
    for agent_id in teams:
        filed = cli(path, "request", "grant", "--agent", str(agent_id), "--team", "1", *AUDIT)
        assert filed.exit_code == 0, filed.output
    return timed + teams


def ask_by_ticket(sim, monkeypatch, agents: list[int]) -> tuple[int, int]:
    """An access request a person opens in HaloITSM, for an agent none of the eight is for;
    every run takes request tickets in (HALO_REQUEST_TICKET_TYPE)."""
    monkeypatch.setenv("HALO_REQUEST_TICKET_TYPE", "Access Request")
    agent_id = next(
        a for a in range(40, 2, -1)
        if a not in agents and not sim.get_agent(a)["isdisabled"]
        and not sim.get_agent(a)["isapiagent"]
        and not {"Read Only", "Administrator"} & {r["name"] for r in sim.get_agent(a)["roles"]}
    )  # fmt: skip
    user = sim.add_user("Pat Doe", "pat@example.com")
    fields = {"CFAccessAgent": str(agent_id), "CFAccessRole": "Read Only"}
    return agent_id, sim.open_request_ticket(user, "Read only for the audit", fields=fields)


def writes_per_agent(sim) -> Counter[int]:
    return Counter(
        row["id"]
        for entry in sim.request_log
        if entry.method == "POST" and entry.path == "/api/agent" and (entry.status or 500) < 300
        for row in entry.body
    )


def assert_each_applied_once(sim, path, agents: list[int], person: tuple[int, int]) -> None:
    """The eight and the ticket's request applied once each: one request filed from the
    ticket, answered on it, and no second ticket opened for it."""
    assert query(path, "SELECT status, count(*) FROM provisioning.requests GROUP BY ALL") == [
        ("applied", 9)
    ]
    agent_id, ticket = person
    assert query(path, "SELECT r.agent_id, t.ticket_id FROM provisioning.request_tickets t "
                       "JOIN provisioning.requests r USING (request_id)") == [person]  # fmt: skip
    assert [a["note"] for a in sim.actions if a["ticket_id"] == ticket] == ["Outcome: applied"]
    assert len(sim.tickets) == 9
    assert writes_per_agent(sim) == Counter(dict.fromkeys([*agents, agent_id], 1))
    with connect(path) as con:
        later = database_now(con) + timedelta(hours=2)
        assert len(due_expiries(con, load_keyring(), now=later)) == 4


def test_three_headless_runs_at_once_apply_each_request_once(
    sim, synced, halo_env, tmp_path, monkeypatch
):
    agents = file_eight(sim, synced)
    person = ask_by_ticket(sim, monkeypatch, agents)
    sim.reset_counts()
    env = dagster_env(halo_env, tmp_path)
    logs = [tmp_path / f"run{n}.log" for n in range(3)]
    outs = [log.open("w") for log in logs]
    try:
        with (
            running(execute("provisioning_job"), env=env, stdout=outs[0],
                    stderr=subprocess.STDOUT) as first,
            running(execute("provisioning_job"), env=env, stdout=outs[1],
                    stderr=subprocess.STDOUT) as second,
            running(execute("provisioning_job"), env=env, stdout=outs[2],
                    stderr=subprocess.STDOUT) as third,
        ):  # fmt: skip
            codes = [run.wait(timeout=240) for run in (first, second, third)]
    finally:
        for out in outs:
            out.close()

    assert codes == [0, 0, 0], [log.read_text()[-2000:] for log in logs]
    assert_each_applied_once(sim, synced, agents, person)
    said = [log.read_text() for log in logs]
    # Those that found the place taken wrote nothing and said so; the others found it all done.
    skipped = sum("is applying requests to this warehouse; this run wrote nothing" in s
                  for s in said)  # fmt: skip
    idle = sum("0 requests to look at" in s for s in said)
    assert skipped + idle == 2, said


def test_runs_started_headless_and_by_the_sensor_apply_each_request_once(
    sim, synced, halo_env, instance, tmp_path, monkeypatch
):
    agents = file_eight(sim, synced)
    person = ask_by_ticket(sim, monkeypatch, agents)
    sim.reset_counts()
    env = dagster_env(halo_env, tmp_path)
    defs = build_definitions()
    with dg.build_sensor_context(
        instance=instance,
        resources={
            "warehouse": DuckDBWarehouse(database=str(synced)),
            "halo": HaloResource(),
            "provisioning": ProvisioningResource(),
        },
        definitions=defs,
    ) as context:
        asked = defs.resolve_sensor_def("provisioning_request_sensor")(context)
    [run_request] = asked.run_requests
    job = defs.resolve_job_def("provisioning_job")
    outcome: list[dg.ExecuteInProcessResult] = []
    by_sensor = threading.Thread(
        target=lambda: outcome.append(
            job.execute_in_process(instance=instance, tags=run_request.tags, raise_on_error=False)
        )
    )
    with (
        running(execute("provisioning_job"), env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) as first,
        running(execute("provisioning_job"), env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) as second,
    ):  # fmt: skip
        by_sensor.start()
        codes = [first.wait(timeout=240), second.wait(timeout=240)]
        by_sensor.join(240)

    assert codes == [0, 0]
    assert outcome[0].success
    assert_each_applied_once(sim, synced, agents, person)
