"""`halo-pipeline dev` (what `make dev` runs): the simulator and `dagster dev` together, and
Ctrl-C (or a SIGTERM to the command) stopping both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from halo_pipeline_tests.helpers import free_port, project_copy, wait_for
from halo_pipeline_tests.processes import started

PROJECT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda dev: os.killpg(dev.pid, signal.SIGINT), id="ctrl-c"),
        pytest.param(lambda dev: dev.send_signal(signal.SIGTERM), id="sigterm-to-the-command"),
    ],
)
def test_dev_starts_the_simulator_and_dagster_and_stopping_it_stops_both(tmp_path, stop):
    project_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALO_")}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    port = free_port()
    log = tmp_path / "dev.log"
    command = [sys.executable, "-m", "halo_pipeline.cli", "dev", "--port", str(port)]
    with started(command, log=log, cwd=tmp_path, env=env) as dev:
        wait_for(
            "the simulator's address", lambda: "HaloITSM simulator at" in log.read_text(), log, 60
        )
        simulator = re.search(r"HaloITSM simulator at (http://\S+)", log.read_text()).group(1)
        assert httpx.get(f"{simulator}/api/authinfo").status_code == 200
        assert f"Dagster UI at http://127.0.0.1:{port}" in log.read_text()
        wait_for(
            "the Dagster UI",
            lambda: httpx.get(f"http://127.0.0.1:{port}/server_info").status_code == 200,
            log,
        )
        tree = psutil.Process(dev.pid).children(recursive=True)  # dg dev, webserver, daemon...
        stop(dev)
        dev.wait(timeout=60)

    assert dev.returncode == 0, log.read_text()[-3000:]
    assert len(tree) >= 3
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    time.sleep(0.5)
    for url in (simulator, f"http://127.0.0.1:{port}"):
        try:
            httpx.get(url, timeout=2)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"{url} still answers after Ctrl-C")


def test_dev_refuses_a_dotenv_that_would_override_the_simulator(tmp_path, monkeypatch):
    import click

    from halo_pipeline.local import real_halo_configured

    monkeypatch.delenv("HALO_BASE_URL", raising=False)
    (tmp_path / ".env").write_text("HALO_CLIENT_ID=\nHALO_PROVISIONING=true\n")

    with pytest.raises(click.ClickException) as error:
        real_halo_configured(tmp_path)

    assert error.value.message == (
        ".env sets HALO_CLIENT_ID but not HALO_BASE_URL. Set HALO_BASE_URL there to use your "
        "HaloITSM, or remove those lines to use the simulator."
    )
    (tmp_path / ".env").write_text("HALO_BASE_URL=https://acme.haloitsm.com\nHALO_CLIENT_ID=x\n")
    assert real_halo_configured(tmp_path) is True
    (tmp_path / ".env").write_text("HALO_PROVISIONING=true\n")
    assert real_halo_configured(tmp_path) is False


def test_workspace_yaml_still_loads_the_code_location_for_dagster_dev(tmp_path):
    """`dagster dev -w workspace.yaml` and a shared deployment's services load it this way."""
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=project_copy(tmp_path), env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    assert "halo_pipeline" in done.stdout + done.stderr
