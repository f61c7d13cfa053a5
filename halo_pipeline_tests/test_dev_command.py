"""`halo-pipeline dev` (what `make dev` runs): the simulator and `dagster dev` together, and
Ctrl-C (or a SIGTERM to the command) stopping both."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from click.testing import CliRunner
from dagster._cli import cli as dagster_cli

from halo_pipeline_tests.helpers import project_copy, wait_for
from halo_pipeline_tests.processes import started

PROJECT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_make_dev_starts_the_simulator_and_dagster_and_ctrl_c_stops_both(tmp_path):
    """`make dev` as the README has a reader type it, in a copy of the project made by `make`
    (the README's own test leaves this command to this one)."""
    installed = PROJECT / ".venv" / ".installed"
    if not installed.exists():
        pytest.skip("needs the .venv that `make` creates (.venv/.installed)")
    project_copy(tmp_path)
    for name in ("Makefile", "uv.lock"):
        (tmp_path / name).write_text((PROJECT / name).read_text())
    (tmp_path / ".venv").symlink_to(PROJECT / ".venv")
    stamp = installed.stat().st_mtime - 60  # older than the stamp: make installs nothing
    for name in ("pyproject.toml", "uv.lock"):
        os.utime(tmp_path / name, (stamp, stamp))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HALO_", "DAGSTER_"))}
    log = tmp_path / "dev.log"
    with started(["bash", "-c", "make dev"], log=log, cwd=tmp_path, env=env) as dev:
        wait_for(
            "the simulator's address", lambda: "HaloITSM simulator at" in log.read_text(), log, 60
        )
        simulator = re.search(r"HaloITSM simulator at (http://\S+)", log.read_text()).group(1)
        assert httpx.get(f"{simulator}/api/authinfo").status_code == 200
        ui = "http://127.0.0.1:3000"
        assert f"Dagster UI at {ui} (DAGSTER_HOME={tmp_path / '.dagster_home'})" in log.read_text()
        wait_for("the Dagster UI", lambda: httpx.get(f"{ui}/server_info").status_code == 200, log)
        tree = psutil.Process(dev.pid).children(recursive=True)  # dg dev, webserver, daemon...
        os.killpg(dev.pid, signal.SIGINT)  # Ctrl-C in its terminal
        dev.wait(timeout=60)

    # make ends as a shell expects of a Ctrl-C'd job: by the signal, once what it ran stopped.
    assert dev.returncode == -signal.SIGINT, log.read_text()[-3000:]
    assert len(tree) >= 4
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    for url in (simulator, ui):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)


STOPPED_BY_ITS_GROUP = """
import subprocess, sys
from halo_pipeline.local import run_until_stopped
# What `halo-pipeline dev` runs dg dev in: a process group of its own, which starts others.
group = subprocess.Popen(["bash", "-c", "sleep 300 & sleep 300 & wait"], start_new_session=True)
print(group.pid, flush=True)
run_until_stopped(group)
"""


def test_a_sigterm_to_the_dev_command_stops_everything_it_started():
    """The command's own SIGTERM handling (a service manager stopping it): forwarded to the
    process group as a Ctrl-C, and whatever is left killed; no Dagster needed to show it."""
    command = subprocess.Popen(
        [sys.executable, "-c", STOPPED_BY_ITS_GROUP], stdout=subprocess.PIPE, text=True
    )
    try:
        group = int(command.stdout.readline())
        wait_for(
            "the group's children",
            lambda: len(psutil.Process(group).children()) == 2,
            Path(os.devnull),
            10,
        )
        tree = [psutil.Process(group), *psutil.Process(group).children()]
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=60) == 0
    finally:
        command.kill()
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []


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


def test_dev_refuses_a_port_in_use_before_starting_anything(tmp_path, monkeypatch):
    """Dagster's webserver would log one line and serve nothing while the rest ran on."""
    from halo_pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = CliRunner().invoke(main, ["dev", "--port", str(port)])

    assert (done.exit_code, done.output) == (1, (
        f"Error: Cannot serve the Dagster UI on 127.0.0.1:{port}: Address already in use. Stop "
        "what uses it (another `make dev`?) or choose another port: `halo-pipeline dev --port N`.\n"
    ))  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # no instance, no simulator state


# Dagster suggests `dg check defs` (make test runs it too); this is the command that reads
# workspace.yaml as `dagster dev -w` does.
@pytest.mark.filterwarnings("ignore::dagster.SupersessionWarning")
def test_workspace_yaml_still_loads_the_code_location_for_dagster_dev(tmp_path, monkeypatch):
    """`dagster dev -w workspace.yaml` and a shared deployment's services load it this way
    (Dagster's own command, in this process: loading the location is what is tested)."""
    monkeypatch.chdir(project_copy(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    done = CliRunner().invoke(dagster_cli, ["definitions", "validate", "-w", "workspace.yaml"])

    assert done.exit_code == 0, done.output[-3000:]
    assert "halo_pipeline" in done.output
