"""What `make demo` does: the bundled simulator plays a HaloITSM with a past, and the pipeline
syncs it, files access requests and applies them, as a user runs it.

The simulator keeps its state in a file beside the warehouse, so a second demo goes on from the
first: its sync records only what really changed since. A new simulator first plays October
2026 (joiners, leavers, role and team changes), synced weekly at those dates, so the history
questions of the README have a past to answer from, whenever the demo is run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from halo_pipeline.local import QUIET, prepare_dagster_home, simulated_halo, simulator_state
from halo_pipeline.shell import typed
from halo_pipeline.simulator import Simulator


@dataclass(frozen=True)
class Week:
    synced_at: datetime
    what: str
    happens: Callable[[Simulator], None]


def _role(sim: Simulator, name: str) -> str:
    return sim.role_ids()[name]


def _roles_of(sim: Simulator, agent_id: int) -> list[str]:
    return [role["id"] for role in sim.get_agent(agent_id)["roles"]]


def _teams_of(sim: Simulator, agent_id: int) -> list[int]:
    return [team["team_id"] for team in sim.get_agent(agent_id)["teams"] if team["in_section"]]


def _joiners(sim: Simulator, *people: tuple[str, int]) -> None:
    for name, team in people:
        email = name.lower().replace(" ", ".").replace("á", "a") + "@example.com"
        sim.add_agent(name, email, role_ids=(_role(sim, "Agent"),), team_ids=(team,))


def _week_2(sim: Simulator) -> None:
    _joiners(sim, ("Hannah Schmidt", 1), ("Tomás Ruiz", 1))
    sim.set_agent_roles(9, [_role(sim, "Change Manager")])


def _week_3(sim: Simulator) -> None:
    sim.disable_agent(20)
    sim.delete_agent(21)
    sim.set_agent_teams(5, [2])


def _week_4(sim: Simulator) -> None:
    sim.add_role("Auditor", "Read access for the year-end audit.")
    sim.set_agent_roles(10, [*_roles_of(sim, 10), _role(sim, "Administrator")])
    retired = 5  # Legacy Apps (retired): its last members move to the 2nd line
    for agent_id in sim.members_of(retired):
        sim.set_agent_teams(agent_id, [t for t in _teams_of(sim, agent_id) if t != retired] or [2])


def _week_5(sim: Simulator) -> None:
    sim.set_agent_roles(10, [r for r in _roles_of(sim, 10) if r != _role(sim, "Administrator")])
    _joiners(sim, ("Amara Okafor", 7))


def _on(day: int, month: int = 10) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)


PAST = (
    Week(_on(1), "the directory as it was", lambda sim: None),
    Week(_on(8), "two joiners on the 1st line; Priya Patel (9) made a Change Manager", _week_2),
    Week(_on(15), "agent 20 leaves (disabled, roles kept), agent 21's account deleted, "
         "Дмитрий Иванов (5) leaves Закупки", _week_3),
    Week(_on(22), "an Auditor role created, nobody holds it yet; Liam Smith (10) made an "
         "administrator for a migration; Legacy Apps (retired) emptied", _week_4),
    Week(_on(29), "the migration over, Liam Smith is no administrator; a joiner", _week_5),
)  # fmt: skip
"""October 2026, a week at a time: what people changed in HaloITSM, then a sync at 09:00 UTC.
Fixed dates, so that a dated question keeps its answer on any day the demo is run."""


def play_past(sim: Simulator, warehouse: str) -> None:
    """Each week's changes in the simulator (which the HALO_* variables point at), then a sync
    read at that week's date, the models rebuilt after each, as the schedule would have done.
    Plain Python: a replay, not runs."""
    from halo_pipeline.halo import HaloClient, HaloSettings
    from halo_pipeline.sql_models.project import build_models, load_project, models_dir
    from halo_pipeline.sync import sync_halo
    from halo_pipeline.warehouse import connect

    project = load_project(models_dir())
    # A replay of October: its requests draw on a budget of their own, not on the one this
    # installation shares (budget_path), which the runs after it spend now.
    settings = HaloSettings.load(budget_path=None)
    click.echo("A new simulator: replaying its October 2026 first, a sync a week:")
    for week in PAST:
        week.happens(sim)
        with HaloClient(settings) as client:
            result = sync_halo(
                client, lambda: connect(warehouse), clock=lambda at=week.synced_at: at
            )
        with connect(warehouse) as con:
            build_models(con, project)
        click.echo(f"  {week.synced_at:%d %B}: sync {result.sync_id}, {week.what}")


ASKS = (
    # Privileged under access_policy.yml: for at most 8 hours, and approved by someone else.
    ("grant", "agent9@example.com", "Administrator", None, "covering the admin rota", "8h"),
    ("revoke", "2", "Administrator", None, "left the admin rota", None),
    ("grant", "10", None, "2nd Line Support", "moved team", None),
    ("grant", "nobody@example.com", "Agent", None, "new hire", None),
)
APPROVER = "agent13@example.com"
"""Olga Okafor, an enabled agent of the simulator: approvers are HaloITSM agents."""


def run_demo(warehouse: str) -> None:
    """Sync the simulator (after replaying its past, when it is new), file requests and
    provision them with tickets, printing each step and how to go on."""
    from dagster import DagsterInstance

    home = prepare_dagster_home()
    state = simulator_state(warehouse)
    new = not state.exists()
    _refuse_a_warehouse_without_its_simulator(warehouse, new)
    with simulated_halo(state) as (sim, env):
        os.environ.update(
            env, HALO_DUCKDB_PATH=warehouse, HALO_PROVISIONING="true", HALO_TICKETING="true"
        )
        click.echo(f"HaloITSM simulator at {env['HALO_BASE_URL']} (state in {state})")
        click.echo(f"Dagster home {home}\n")
        if new:
            play_past(sim, warehouse)
        # Imported only now: the definitions read HALO_* when they are built.
        from halo_pipeline.definitions import defs

        instance = DagsterInstance.get()
        sync = defs.resolve_job_def("halo_sync_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET
        )
        if not sync.success:
            raise click.ClickException("halo_sync_job failed; its log is above.")
        _print_tables(warehouse)
        _signing_key(warehouse)
        filed = _file_demo_requests(warehouse)
        tickets = _open_demo_tickets(sim, warehouse)
        provisioning = defs.resolve_job_def("provisioning_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET
        )
        if not provisioning.success:
            raise click.ClickException("provisioning_job failed; its log is above.")
        _print_outcomes(warehouse, filed)
        _say_tickets(sim, warehouse, tickets)
    query = typed("halo-pipeline")
    click.echo("\nAsk it questions (the README has more):")
    click.echo(f'  {query} query "SELECT agent_id, agent_name, role_name FROM access.admin_agents"')
    click.echo(
        f'  {query} query "SELECT change, resource_name, agent_name, changed_at '
        'FROM access.grant_changes ORDER BY changed_at"'
    )
    click.echo("See the assets, their lineage and these runs in the Dagster UI:")
    click.echo("  make dev")


DESK = {
    "HALO_REQUEST_TICKET_TYPE": "Access Request",
    # What the simulator's TicketApproval results mean; on a real tenant, `doctor` helps to
    # find out before this is set.
    "HALO_APPROVAL_RESULTS": '{"0": "awaiting", "1": "approved", "2": "rejected"}',
}


def _open_demo_tickets(sim: Simulator, warehouse: str) -> list[int]:
    """A person asks in HaloITSM for a privileged role, which someone else approves there, and
    for a role that does not exist: the run takes both in, applies the first and answers the
    second, and closes both."""
    from halo_pipeline.policy.document import DEFAULT_PATH, PolicySettings

    policy = Path(warehouse).with_name("access_policy.demo.yml")
    shipped = (PolicySettings.load().access_policy or DEFAULT_PATH).read_text(encoding="utf-8")
    policy.write_text(shipped.replace("via: cli", "via: either"), encoding="utf-8")
    os.environ.update(DESK, HALO_ACCESS_POLICY=str(policy))
    click.echo(f"\nFrom the service desk ({policy}: the shipped policy with approval.via: "
               "either, and HALO_REQUEST_TICKET_TYPE, HALO_APPROVAL_RESULTS set):")  # fmt: skip
    pat = sim.add_user("Pat Doe", "pat.doe@example.com")
    asked = sim.open_request_ticket(
        pat, "Change Manager for Olga Haddad for the release", "Release weekend, 4 hours.",
        fields={"CFAccessAgent": "agent17@example.com", "CFAccessRole": "Change Manager",
                "CFAccessFor": "4h"},
    )  # fmt: skip
    typo = sim.open_request_ticket(
        pat, "Admin for Olga Haddad", fields={"CFAccessAgent": "17", "CFAccessRole": "Adminstrator"}
    )
    click.echo(f"  Pat Doe opened ticket {asked} (Change Manager for agent17@example.com, 4h) "
               f"and ticket {typo} (role 'Adminstrator')")  # fmt: skip
    # HaloITSM's approval process starts when a ticket is logged; its approver answers there.
    sim.answer_approval(asked, 13, note="fine for the release weekend")
    click.echo(f"  Olga Okafor (agent 13) approved ticket {asked} in HaloITSM")
    return [asked, typo]


def _say_tickets(sim: Simulator, warehouse: str, tickets: list[int]) -> None:
    from halo_pipeline.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        requests = dict(con.execute(
            "SELECT ticket_id, 'request ' || request_id || ' ' || status FROM "
            "provisioning.requests WHERE list_contains(?, ticket_id)", [tickets]
        ).fetchall())  # fmt: skip
    notes = {a["ticket_id"]: a["note"] for a in sim.actions if a["ticket_id"] in tickets}
    click.echo("  provisioning_job, on the tickets:")
    for ticket in tickets:
        said = requests.get(ticket, "no request")
        if ticket in notes:
            said += f"; answered on the ticket and closed: {notes[ticket]}"
        click.echo(f"    ticket {ticket}: {said}")


def _refuse_a_warehouse_without_its_simulator(warehouse: str, new_simulator: bool) -> None:
    """A warehouse synced from a simulator whose state is gone would, synced from a new one,
    record every difference from the seed as a change that never happened."""
    from halo_pipeline.warehouse import connect

    if not new_simulator or not Path(warehouse).exists():
        return
    with connect(warehouse, read_only=True) as con:
        [(syncs,)] = con.execute("SELECT count(*) FROM halo.sync_runs").fetchall()
    if syncs:
        raise click.ClickException(
            f"{warehouse} holds {syncs} syncs of a simulator whose state "
            f"({simulator_state(warehouse)}) is gone; a new one would record false changes. "
            "Run `make clean` to start the demo over."
        )


def _signing_key(warehouse: str) -> None:
    """What `halo-pipeline key init` does, the first time: approvals are signed with it."""
    from halo_pipeline.requests.signing import init_keyring, key_path
    from halo_pipeline.warehouse import connect
    from halo_pipeline.warehouse.migrations import warehouse_id

    path = key_path()
    if path.exists():
        return
    with connect(warehouse) as con:
        ring = init_keyring(warehouse_id(con), path)
    click.echo(
        f"\n{typed('halo-pipeline')} key init: made the signing key {ring.active.key_id} in "
        f"{ring.path} (approvals are signed with it; back it up with the warehouse)."
    )


def _print_tables(warehouse: str) -> None:
    from halo_pipeline.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        [(sync_id, requests)] = con.execute(
            "SELECT sync_id, api_requests FROM halo.sync_runs "
            "WHERE status = 'succeeded' ORDER BY sync_id DESC LIMIT 1"
        ).fetchall()
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('halo', 'access') ORDER BY table_schema DESC, table_name"
        ).fetchall()
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for (t,) in tables}
    click.echo(f"\nSync {sync_id} wrote {warehouse} using {requests} API requests:")
    for table, count in counts.items():
        click.echo(f"  {table:<36} {count:>6} rows")


def _file_demo_requests(warehouse: str) -> list[int]:
    """Grants, a revoke and a team add, one the command refuses and a bad one filed with SQL."""
    from halo_pipeline.halo import HaloClient, HaloSettings
    from halo_pipeline.policy.decisions import approve
    from halo_pipeline.policy.document import parse_duration
    from halo_pipeline.provisioning.filing import file_membership
    from halo_pipeline.requests.rules import RequestRefused
    from halo_pipeline.requests.signing import load_keyring
    from halo_pipeline.warehouse import budget_path, connect

    command = typed("halo-pipeline")
    click.echo(f"\nFiling access requests (as `{command} request` and `approve` do):")
    filed = []
    with connect(warehouse) as con:
        for action, agent, role, team, reason, lasting in ASKS:
            try:
                request = file_membership(
                    con, action, agent=agent, role=role, team=team, reason=reason,
                    requested_by="demo@example.com",
                    ends=parse_duration(lasting) if lasting else None,
                )  # fmt: skip
            except RequestRefused as refused:
                click.echo(f"  refused: {refused}")
                continue
            click.echo(f"  request {request.request_id}: {request.description}")
            if request.warning:
                click.echo(f"    note: {request.warning}")
            if request.awaiting_approval:
                with HaloClient(HaloSettings.load(budget_path=budget_path(warehouse))) as halo:
                    approve(con, halo, load_keyring(), request.request_id, APPROVER,
                            "on the rota this week", lambda shown: True)  # fmt: skip
                click.echo(f"    approved (signed) by {APPROVER}")
            filed.append(request.request_id)
        [(bad,)] = con.execute(
            "INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, "
            "requested_by) VALUES ('grant', 'team:999:member', 9, 'make demo', 'demo@example.com') "
            "RETURNING request_id"
        ).fetchall()
        click.echo(f"  request {bad}: filed with SQL for a team that does not exist")
    return [*filed, bad]


def _print_outcomes(warehouse: str, request_ids: list[int]) -> None:
    from halo_pipeline.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT request_id, status, ticket_id, coalesce(error, '') FROM provisioning.requests "
            "WHERE list_contains(?, request_id) ORDER BY request_id",
            [request_ids],
        ).fetchall()
    click.echo("\nprovisioning_job (HALO_PROVISIONING=true, HALO_TICKETING=true):")
    for request_id, status, ticket_id, error in rows:
        ticket = f"ticket {ticket_id}" if ticket_id else "no ticket"
        click.echo(f"  request {request_id}: {status:<17} {ticket:<12} {error}".rstrip())
