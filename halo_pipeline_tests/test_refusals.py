"""What the commands and jobs refuse, each in one line that says what to fix: audit fields that
are not real, input too long to echo, and warehouse files that are no warehouse."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from halo_pipeline.cli import main
from halo_pipeline.requests import rules
from halo_pipeline.requests.queue import adopt_sql_filed
from halo_pipeline.warehouse import WarehouseError, connect
from halo_pipeline.warehouse.migrations import migrations
from halo_pipeline.warehouse.registry import MODEL_SCHEMA, SCHEMAS
from halo_pipeline_tests.helpers import query, sync

AUDIT = ["--reason", "on call", "--requested-by", "ana@example.com"]


def request(path: Path, *args: str):
    return CliRunner().invoke(main, ["request", *args, "--warehouse", str(path)])


GRANT = ["grant", "--agent", "9", "--role", "Read Only"]
LONG = "x" * 100_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*GRANT, "--reason", "", "--requested-by", "ana@example.com"],
         "Say why: --reason cannot be blank; it goes on the ticket."),
        ([*GRANT, "--reason", " \t ", "--requested-by", "ana@example.com"],
         "Say why: --reason cannot be blank; it goes on the ticket."),
        ([*GRANT, "--reason", "\u200b\u2060\ufeff", "--requested-by", "ana@example.com"],
         "Say why: --reason cannot be blank; it goes on the ticket."),
        ([*GRANT, "--reason", "on call", "--requested-by", "policy:expiry"],
         "'policy:expiry' is the pipeline's own name for what a policy files: say who asks with "
         "--requested-by EMAIL."),
        ([*GRANT, "--reason", "on call", "--requested-by", ""],
         "Say who asks: --requested-by needs the requester's email address."),
        ([*GRANT, "--reason", "on call", "--requested-by", "ana"],
         "The requester 'ana' is not an email address: An email address must have an @-sign."),
        ([*GRANT, "--reason", "on call", "--requested-by", "policy:"],
         "The requester 'policy:' is not an email address: An email address must have an @-sign."),
        (["create-account", "--name", "New Person", "--email", "not-an-email", *AUDIT],
         "The new agent's email 'not-an-email' is not an email address: An email address must "
         "have an @-sign."),
        (["grant", "--agent", LONG, "--role", "Read Only", *AUDIT],
         f"Unknown agent {'x' * 80!r}... (100000 characters): not in the last sync."),
        (["grant", "--agent", "9", "--team", LONG, *AUDIT],
         f"Unknown team {'x' * 80!r}... (100000 characters): not in the last sync."),
    ],
    ids=["empty-reason", "blank-reason", "invisible-reason", "policy-requester", "no-requester", "requester-not-email", "empty-policy",
         "account-email", "long-agent", "long-team"],
)  # fmt: skip
def test_each_refusal_is_one_line_and_files_nothing(path, args, message):
    result = request(path, *args)

    assert (result.exit_code, result.output) == (1, f"Error: {message} Nothing was filed.\n")
    assert query(path, "SELECT count(*) FROM provisioning.requests") == [(0,)]


def test_a_requester_is_a_lower_cased_email_or_a_policy_of_the_pipeline(path):
    result = request(path, *GRANT, "--reason", "on call", "--requested-by", " Ana@Example.COM ")

    assert result.exit_code == 0, result.output
    assert query(path, "SELECT requested_by, reason FROM provisioning.requests") == [
        ("ana@example.com", "on call")
    ]
    # A policy's name is the pipeline's own: a row filed as one (by the pipeline, or with SQL)
    # meets the rules; the command line refuses it (test_each_refusal_is_one_line...).
    assert rules.requester("policy:leavers") == "policy:leavers"
    assert rules.problem("revoke", "on call", "policy:leavers", None) is None


def test_long_input_that_is_accepted_is_still_cut_where_it_is_echoed(path):
    result = request(path, "create-account", "--name", LONG, "--email", "new@example.com", *AUDIT)

    assert result.output.splitlines()[0] == (
        f"Filed request 1: create an agent account for {'x' * 80!r}... (100000 characters) "
        "<new@example.com>."
    )
    assert query(path, "SELECT length(account_name) FROM provisioning.requests") == [(100_000,)]


def not_a_warehouse(kind: str, tmp_path: Path, path: Path) -> tuple[Path, str]:
    """A file HALO_DUCKDB_PATH may point at by mistake, and what DuckDB says of it."""
    bad = tmp_path / f"{kind}.duckdb"
    if kind == "directory":
        bad.mkdir()
        return bad, (
            f"HALO_DUCKDB_PATH={bad} is a directory, not a warehouse file: point it at a file "
            "such as data/warehouse.duckdb."
        )
    if kind == "truncated":
        data = path.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
        why = "Could not read enough bytes from file"
    else:
        bad.write_text("" if kind == "empty" else "agent_id,name\n2,Zoë\n")
        why = f'The file "{bad}" exists, but it is not a valid DuckDB database file!'
    return bad, (
        f"{bad} is not a DuckDB warehouse, or it is damaged ({why}"
        if kind == "truncated"
        else f"{bad} is not a DuckDB warehouse, or it is damaged ({why}). Point HALO_DUCKDB_PATH "
        "at the warehouse, or move this file away to start a new one."
    )


KINDS = ["directory", "empty", "truncated", "text"]


@pytest.mark.parametrize("kind", KINDS)
def test_request_and_query_say_in_one_line_what_is_wrong_with_the_file(path, tmp_path, kind):
    bad, message = not_a_warehouse(kind, tmp_path, path)

    filed = request(bad, *GRANT, *AUDIT)
    # A whole table: a count alone may be answered from what is left of a truncated file.
    asked = CliRunner().invoke(
        main, ["query", "SELECT * FROM halo.agent_team_history", "--warehouse", str(bad)]
    )

    for result, ending in ((filed, " Nothing was filed.\n"), (asked, "\n")):
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: {message}"), result.output
        assert result.output.endswith(ending) and result.output.count("\n") == 1
    assert bad.is_dir() or bad.stat().st_size < path.stat().st_size  # nothing written to it


@pytest.mark.parametrize("kind", KINDS)
def test_a_sync_fails_in_one_line_on_a_file_that_is_no_warehouse(
    path, tmp_path, halo_env, run_job, monkeypatch, kind
):
    bad, message = not_a_warehouse(kind, tmp_path, path)
    monkeypatch.setenv("HALO_DUCKDB_PATH", str(bad))

    result = run_job("halo_sync_job")

    [failure] = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert error.cls_name == "Failure"
    # A truncated file may take the sync's first row, then fail its write.
    said = error.message.removeprefix("dagster._core.definitions.events.Failure: ")
    assert said.removeprefix("sync 2 failed: ").startswith(message), said
    assert error.message.count("\n") == 1
    if kind in ("empty", "text"):
        with pytest.raises(duckdb.Error):  # still not a warehouse: nothing replaced it
            duckdb.connect(str(bad)).execute("SELECT count(*) FROM halo.agent_team_history")


@pytest.mark.parametrize(
    ("team", "hint"),
    [
        ("Securty", 'Security "Red" Team (4)'),
        ("2nd Lien Support", "2nd Line Support (2); 1st Line Support (1)"),
        ("Service Desk - Cafe", "Service Desk – Café (3)"),
        ("Закупкі", "Закупки (6)"),
    ],
)
def test_an_unknown_team_suggests_close_matches_as_a_role_does(path, team, hint):
    result = request(path, "grant", "--agent", "9", "--team", team, *AUDIT)

    assert result.output == (
        f"Error: Unknown team {team!r}: not in the last sync. Did you mean: {hint}? "
        "Nothing was filed.\n"
    )


@pytest.mark.parametrize(
    ("args", "state"),
    [
        (["grant", "--agent", "9", "--team", "3"], "already holds team 'Service Desk – Café'"),
        (["revoke", "--agent", "9", "--role", "Administrator"],
         "does not hold role 'Administrator'"),
    ],
)  # fmt: skip
def test_a_request_with_nothing_to_change_is_filed_with_a_warning(path, args, state):
    result = request(path, *args, *AUDIT)

    assert result.exit_code == 0
    assert result.stderr == (
        f"Warning: as of the last sync, agent 9 (Priya Patel) {state}: nothing to change unless "
        "that changed since. The job checks HaloITSM when it runs.\n"
    )
    assert result.stdout.startswith("Filed request 1: ")
    assert query(path, "SELECT status FROM provisioning.requests") == [("pending",)]


@pytest.mark.parametrize(
    ("base_url", "next_step"),
    [
        ("", "No HaloITSM is set here (HALO_BASE_URL): `make dev` runs the simulator, and its "
             "provisioning_request_sensor starts provisioning_job for it."),
        ("https://acme.haloitsm.com", "provisioning_request_sensor starts provisioning_job for it; "
         "to run it now: dagster job execute -m halo_pipeline.definitions -j provisioning_job"),
    ],
    ids=["no-halo-set", "halo-set"],
)  # fmt: skip
def test_the_next_step_printed_works_where_it_is_printed(
    path, base_url, next_step, monkeypatch, tmp_path
):
    """Without a HaloITSM set, a job run from this shell could not reach one: the command
    points at `make dev` instead of a command that would fail."""
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("HALO_BASE_URL", base_url)
    monkeypatch.setattr("halo_pipeline.provisioning.cli.typed", lambda command: command)

    result = request(path, *GRANT, *AUDIT)

    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:] == [next_step]


def test_a_warehouse_named_after_any_schema_the_project_creates_is_refused(tmp_path):
    """DuckDB names the catalog after the file: `reviews.duckdb` would make `reviews.items`
    ambiguous. The registry names every schema the migrations and the models create."""
    created = {MODEL_SCHEMA}
    for migration in migrations():
        created |= set(re.findall(r"CREATE SCHEMA IF NOT EXISTS (\w+)", migration.sql))
    assert created == set(SCHEMAS)

    for schema in sorted(created):
        path = tmp_path / f"{schema}.duckdb"
        done = CliRunner().invoke(main, ["query", "SELECT 1", "--warehouse", str(path)])
        assert done.exit_code == 1
        assert done.output == (
            f"Error: HALO_DUCKDB_PATH={path}: DuckDB names the catalog after the file, so "
            f"'{schema}.duckdb' makes '{schema}.<table>' ambiguous with the schema '{schema}'. "
            "Use another file name, such as data/warehouse.duckdb.\n"
        )
        with pytest.raises(WarehouseError), connect(path):
            pass
        assert not path.exists()


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_a_file_that_is_not_our_warehouse_is_refused_by_every_command_and_left_as_it_was(
    sim, tmp_path, kind
):
    foreign = tmp_path / f"theirs.{kind}"
    if kind == "duckdb":
        with duckdb.connect(str(foreign)) as con:
            con.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders AS SELECT 1 AS order_id")
        message = (
            f"{foreign} is a DuckDB file this project did not make (it holds sales and no "
            "halo-pipeline marker); nothing was changed in it. Point HALO_DUCKDB_PATH at the "
            "warehouse, or at a new file such as data/warehouse.duckdb."
        )
    else:
        with sqlite3.connect(foreign) as con:
            con.execute("CREATE TABLE orders (order_id INTEGER)")
        con.close()
        message = (
            f"{foreign} is a SQLite database, not a DuckDB warehouse: point HALO_DUCKDB_PATH at "
            "the warehouse, or at a new file such as data/warehouse.duckdb."
        )
    before = foreign.read_bytes()

    for args in (
        ["request", *GRANT, *AUDIT],
        ["review", "start", "q4", "--scope", "all", "--reviewer", "ana@example.com"],
        ["query", "SELECT 1"],
        ["policy", "check"],
        ["approve", "1", "--by", "ben@example.com"],
    ):
        done = CliRunner().invoke(main, [*args, "--warehouse", str(foreign)])
        assert done.exit_code == 1, (args, done.output)
        assert done.output.startswith(f"Error: {message}"), (args, done.output)
    with pytest.raises(WarehouseError) as refused:
        sync(sim, foreign)
    assert str(refused.value) == message
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("theirs")) == [
        foreign.name,
        *([f"{foreign.name}.writer.lock"] if kind == "duckdb" else []),
    ]


def test_the_request_id_sequence_never_lags_behind_ids_inserted_with_sql(path):
    insert = (
        "INSERT INTO provisioning.requests ({}action, entitlement_id, agent_id, reason, "
        "requested_by) VALUES ({}'revoke', 'team:1:member', 3, 'sql', 'ana@example.com') "
        "RETURNING request_id"
    )
    with connect(path) as con:
        con.execute(insert.format("request_id, ", "50, "))
    assert request(path, *GRANT, *AUDIT).output.startswith("Filed request 51:")
    with connect(path) as con:  # SQL's own default comes after both
        assert con.execute(insert.format("", "")).fetchall() == [(52,)]
        con.execute(insert.format("request_id, ", "80, "))
    with connect(path) as con:
        adopt_sql_filed(con, None)  # what every provisioning run does first
        assert con.execute(insert.format("", "")).fetchall() == [(81,)]
