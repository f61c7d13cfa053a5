"""The Dagster UI as a user sees it: `halo-pipeline dev` (what `make dev` runs) against the
simulator, driven by Debian's Chromium through Playwright.

Takes the screenshots the README shows: into a temporary folder, or into HALO_SCREENSHOTS_DIR
(`make screenshots` sets it to docs/ to refresh them on purpose).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from halo_pipeline.simulator import Simulator
from halo_pipeline_tests.helpers import free_port, project_copy, query, wait_for
from halo_pipeline_tests.processes import started

CHROMIUM = shutil.which("chromium")
# As the machine's notes advise: without the background-networking flags Chromium keeps
# trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed: run scripts/install-system-deps.sh",
    ),
]


@dataclass
class Ui:
    url: str
    page: object  # playwright.sync_api.Page
    env: dict[str, str]
    warehouse: Path
    log: Path
    screenshots: Path

    def screenshot(self, name: str) -> None:
        self.page.wait_for_timeout(1500)  # the graph animates into place
        self.page.screenshot(path=str(self.screenshots / name))

    def graph_setting(self, item: str) -> None:
        """An item of the asset graph's settings menu (the cog beside the zoom buttons)."""
        self.page.locator('[aria-label="settings"]').last.click()
        self.page.get_by_role("menuitem", name=item).click()
        self.page.keyboard.press("Escape")

    def graphql(self, query_text: str, variables: dict | None = None) -> dict:
        """The GraphQL API the UI itself uses."""
        body = {"query": query_text, "variables": variables or {}}
        response = httpx.post(f"{self.url}/graphql", json=body, timeout=30)
        response.raise_for_status()
        return response.json()["data"]

    def runs(self, job: str) -> list[dict]:
        """The job's runs, newest first."""
        data = self.graphql(
            "query Runs($job: String!) { runsOrError(filter: {pipelineName: $job}) "
            "{ ... on Runs { results { runId status } } } }",
            {"job": job},
        )
        return data["runsOrError"]["results"]

    def open(self, path: str) -> None:
        # The project's dagster.yaml turns off the "join the community" dialog a new instance
        # would put over the page.
        self.page.goto(f"{self.url}{path}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("ui")
    (tmp / "project").mkdir()
    screenshots = Path(os.environ.get("HALO_SCREENSHOTS_DIR") or tmp)
    sim = Simulator()
    with sim.serve() as halo_url:
        port = free_port()
        env = {
            **os.environ,
            "HALO_BASE_URL": halo_url,
            "HALO_CLIENT_ID": sim.config.client_id,
            "HALO_CLIENT_SECRET": sim.config.client_secret,
            "HALO_DUCKDB_PATH": str(tmp / "warehouse.duckdb"),
            "DAGSTER_HOME": str(tmp / "dagster_home"),
            # What users see: the shipped policy, its checks on access/policy_violations.
            "HALO_ACCESS_POLICY": str(tmp / "project" / "access_policy.yml"),
        }
        log = tmp / "dev.log"
        command = [sys.executable, "-m", "halo_pipeline.cli", "dev", "--port", str(port)]
        ui_url = f"http://127.0.0.1:{port}"
        with started(command, log=log, cwd=project_copy(tmp / "project"), env=env) as dev:
            wait_for(
                "the code location to load",
                lambda: "LOADED" in httpx.post(f"{ui_url}/graphql", json={"query": (
                    "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
                )}).text,
                log,
            )  # fmt: skip
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                yield Ui(ui_url, page, env, tmp / "warehouse.duckdb", log, screenshots)
                browser.close()
    # Stopped as Ctrl-C in the terminal that runs `make dev` stops it.
    assert dev.returncode == 0, log.read_text()[-4000:]


def test_the_asset_graph_shows_the_halo_and_access_assets_and_their_lineage(ui):
    ui.open("/asset-groups")
    page = ui.page
    page.get_by_text("Global asset lineage").wait_for()
    for group in ("halo", "access", "provisioning"):
        page.get_by_text(group, exact=True).first.wait_for()
    # Every asset, not three group boxes: laid out top to bottom so the whole graph fits.
    page.set_viewport_size({"width": 2000, "height": 1300})
    ui.graph_setting("Change graph to vertical orientation")
    ui.graph_setting("Expand all groups")
    page.get_by_role("button", name="Hide navigation").click()
    page.reload()  # the graph fits itself to the window when it loads
    for asset in ("agents", "agent_roles", "entitlements", "grants", "requests"):
        page.get_by_text(asset, exact=True).first.wait_for()
    ui.screenshot("asset-graph.png")
    page.set_viewport_size({"width": 1600, "height": 1000})

    ui.open("/assets/access/grants?view=lineage&lineageScope=upstream&lineageDepth=2")
    graph = page.locator("body")
    for asset in (
        "grants",
        "entitlements",
        "agents",
        "agent_roles",
        "agent_teams",
        "roles",
        "teams",
    ):
        page.get_by_text(asset, exact=True).first.wait_for()
    assert "halo" in graph.inner_text() and "access" in graph.inner_text()
    ui.screenshot("grants-lineage.png")


def test_materializing_halo_sync_job_from_the_ui_shows_row_counts(ui):
    ui.open("/locations/halo_pipeline/jobs/halo_sync_job")
    before = len(ui.runs("halo_sync_job"))
    ui.page.get_by_role("button", name="Materialize all").click()
    # The access models read the request queue, which no provisioning run has written yet.
    dialog = ui.page.get_by_role("dialog")
    dialog.get_by_text("provisioning / requests").wait_for()
    dialog.get_by_role("button", name="Confirm").click()

    wait_for("a halo_sync_job run", lambda: len(ui.runs("halo_sync_job")) > before, ui.log, 60)
    wait_for(
        "halo_sync_job to finish",
        lambda: ui.runs("halo_sync_job")[0]["status"] in ("SUCCESS", "FAILURE"),
        ui.log,
    )
    assert ui.runs("halo_sync_job")[0]["status"] == "SUCCESS"

    ui.open("/assets/halo/agents")
    row_count = ui.page.get_by_text("Row count", exact=True).first
    row_count.wait_for()
    overview = ui.page.locator("body").inner_text()
    assert "Row count\n40" in overview
    assert query(ui.warehouse, "SELECT count(*) FROM halo.agents") == [(40,)]

    # A check per rule of access_policy.yml, evaluated by the run.
    ui.open("/assets/access/policy_violations?view=checks")
    for check in ("read_only_stays_read_only", "privileged_unapproved", "privileged_expired",
                  "disabled_with_access"):  # fmt: skip
        ui.page.get_by_text(check, exact=True).first.wait_for()


def test_the_schedule_and_the_sensors_are_running(ui):
    from playwright.sync_api import expect

    ui.open("/automation")
    for name in ("halo_sync_schedule", "provisioning_request_sensor", "failed_run_recorder"):
        label = ui.page.get_by_text(name, exact=True).first
        label.wait_for()
        # The row holds two checkboxes: the selection box, then the on/off switch.
        switch = label.locator(
            "xpath=(ancestor::*[count(.//input[@type='checkbox'])=2][1]//input[@type='checkbox'])[2]"
        )
        # Waits for the state to load: the switch is drawn before it is known.
        expect(switch, f"{name} is not running").to_be_checked()


def test_the_sensor_picks_up_a_request_filed_on_the_command_line(ui):
    # Nothing to look at until the sensor's next tick (up to 30 s): a page left open would have
    # the browser and the webserver refresh it all that time.
    ui.page.goto("about:blank")
    filed = subprocess.run(
        [sys.executable, "-m", "halo_pipeline.cli", "request", "grant", "--agent", "9",
         "--role", "Read Only", "--reason", "browser test", "--requested-by", "ana@example.com"],
        env=ui.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    assert filed.stdout.startswith("Filed request 1: grant role 'Read Only'")

    wait_for(
        "provisioning_request_sensor to start provisioning_job",
        lambda: any(run["status"] == "SUCCESS" for run in ui.runs("provisioning_job")),
        ui.log,
    )

    # HALO_PROVISIONING is not set: a dry run, which records the write it would make.
    [(status, plan)] = query(ui.warehouse, "SELECT status, plan FROM provisioning.requests")
    assert status == "planned"
    assert plan.startswith('POST /api/agent [{"id": 9, "roles": [{"id": ')
    ui.open("/runs")
    ui.page.get_by_text("provisioning_job").first.wait_for()
    ui.page.get_by_text("provisioning_request_sensor").first.wait_for()
