"""The schedule, the sensors being on by default, and failed runs recorded where SQL sees them."""

from __future__ import annotations

import dagster as dg

from halo_pipeline.definitions import build_definitions
from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import grant, hold_write_lock, query


def test_schedule_and_sensors_are_on_by_default(monkeypatch):
    monkeypatch.delenv("HALO_SYNC_CRON", raising=False)
    defs = build_definitions()
    schedule = defs.resolve_schedule_def("halo_sync_schedule")

    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 * * * *", "UTC", "halo_sync_job",
    )  # fmt: skip
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    for name in ("provisioning_request_sensor", "failed_run_recorder", "grant_expiry_sensor",
                 "review_progress_sensor", "ticket_intake_sensor"):  # fmt: skip
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    # Within a minute of a review decision, its campaign's progress shows.
    assert defs.resolve_sensor_def("review_progress_sensor").minimum_interval_seconds == 30
    # Ten approval reads a minute at most: a fifth of HaloITSM's 300 requests per 5 minutes.
    assert defs.resolve_sensor_def("ticket_intake_sensor").minimum_interval_seconds == 60


def test_the_asset_graph_has_no_cycle():
    """The UI cannot draw a graph with a cycle (it says so instead): the review tables read
    the grants, which read the request queue, so closing a campaign is not drawn as lineage."""
    graph = build_definitions().resolve_asset_graph()
    assert len(graph.toposorted_asset_keys) == len(graph.get_all_asset_keys())
    assert graph.get(dg.AssetKey(["reviews", "campaigns"])).group_name == "reviews"


def test_sync_cron_and_timezone_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HALO_SYNC_CRON", "*/15 6-18 * * 1-5")
    monkeypatch.setenv("HALO_SYNC_TIMEZONE", "Europe/London")

    schedule = build_definitions().resolve_schedule_def("halo_sync_schedule")

    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "*/15 6-18 * * 1-5",
        "Europe/London",
    )


def record_failures(instance: dg.DagsterInstance, env: dict, cursor: str | None = None):
    """Evaluate failed_run_recorder against the instance the runs ran on, as the daemon does."""
    sensor = build_definitions().resolve_sensor_def("failed_run_recorder")
    resources = {"warehouse": DuckDBWarehouse(database=env["HALO_DUCKDB_PATH"])}
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        return sensor(context)


def record_failure(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, env: dict
) -> None:
    recorded = record_failures(instance, env)
    assert isinstance(recorded, dg.SensorResult), recorded
    assert (
        float(recorded.cursor)
        == instance.get_run_record_by_id(result.run_id).update_timestamp.timestamp()
    )


def test_a_sync_that_fails_before_it_starts_gets_a_row(
    halo_env, run_job, instance, warehouse_path, monkeypatch
):
    assert run_job("halo_sync_job").success
    monkeypatch.setenv("HALO_BASE_URL", "halo.example.com")  # no scheme: refused before any request

    failed = run_job("halo_sync_job")
    record_failure(instance, failed, halo_env)

    assert not failed.success
    [(status, run_id, error)] = query(
        warehouse_path, "SELECT status, dagster_run_id, error FROM halo.sync_runs WHERE sync_id = 2"
    )
    assert (status, run_id) == ("failed", failed.run_id)
    assert error.startswith("halo_tables: ")
    assert "HALO_BASE_URL must be an http(s) URL such as https://yourcompany.haloitsm.com" in error


def test_a_sync_whose_process_died_is_marked_failed(
    halo_env, run_job, instance, warehouse_path, monkeypatch
):
    monkeypatch.setenv("HALO_CLIENT_SECRET", "wrong")
    failed = run_job("halo_sync_job")
    with connect(warehouse_path) as con:  # what a killed process leaves: a sync still running
        con.execute("UPDATE halo.sync_runs SET status = 'running', error = NULL")

    record_failure(instance, failed, halo_env)

    [(status, error)] = query(warehouse_path, "SELECT status, error FROM halo.sync_runs")
    assert status == "failed"
    assert "HaloITSM rejected the client credentials (invalid_client)" in error


def test_a_failed_provisioning_run_is_an_event_on_each_unfinished_request(
    halo_env, run_job, instance, warehouse_path, monkeypatch, sim
):
    assert run_job("halo_sync_job").success
    first = grant(warehouse_path, "9", role="Read Only")
    second = grant(warehouse_path, "10", team="1")
    monkeypatch.setenv("HALO_CLIENT_SECRET", "wrong")

    failed = run_job("provisioning_job")
    record_failure(instance, failed, halo_env)

    assert not failed.success
    events = query(
        warehouse_path,
        "SELECT request_id, from_status, to_status, detail, run_id FROM provisioning.request_events "
        "WHERE detail LIKE 'provisioning run %' ORDER BY request_id",
    )
    assert [(e[0], e[1], e[2], e[4]) for e in events] == [
        (first, "pending", "pending", failed.run_id), (second, "pending", "pending", failed.run_id),
    ]  # fmt: skip
    assert "HaloITSM rejected the client credentials" in events[0][3]
    assert "wrong" not in str(events)
    assert query(warehouse_path, "SELECT DISTINCT status FROM provisioning.requests") == [
        ("pending",)
    ]


def test_failures_met_while_the_warehouse_is_busy_are_recorded_on_a_later_tick(
    halo_env, run_job, instance, warehouse_path, monkeypatch
):
    assert run_job("halo_sync_job").success
    request = grant(warehouse_path, "9", role="Read Only")
    monkeypatch.setenv("HALO_CLIENT_SECRET", "wrong")
    failed = run_job("provisioning_job")
    holder = hold_write_lock(warehouse_path, 30)
    try:
        busy = record_failures(instance, halo_env)
    finally:
        holder.kill()
        holder.wait()

    assert busy == dg.SkipReason("The warehouse is being written; looking again next tick.")
    record_failure(instance, failed, halo_env)
    record_failures(instance, halo_env)  # a second look at the same run changes nothing
    assert query(
        warehouse_path,
        "SELECT failed_attempts FROM provisioning.requests WHERE request_id = ?",
        [request],
    ) == [(1,)]
    assert record_failures(
        instance, halo_env, cursor=record_failures(instance, halo_env).cursor
    ) == dg.SkipReason("No failed run to record.")
