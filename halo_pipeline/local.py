"""Running the pipeline on one machine against the bundled simulator: `make demo`, `make dev`.

The simulator plays a HaloITSM instance on a loopback port; the `HALO_*` variables point at it
and the Dagster instance lives in `.dagster_home/` inside the project, so the runs of
`make demo` show up in the UI that `make dev` opens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import click

from halo_pipeline.shell import halo_configured
from halo_pipeline.simulator import Simulator, SimulatorConfig, generate_dataset
from halo_pipeline.warehouse.connection import DEFAULT_PATH, configured_path

DAGSTER_HOME = Path(".dagster_home")
DEMO_AGENTS, DEMO_TEAMS, DEMO_ROLES = 250, 12, 8
CONNECTION_VARIABLES = (
    "HALO_BASE_URL", "HALO_AUTH_URL", "HALO_TENANT", "HALO_CLIENT_ID", "HALO_CLIENT_SECRET",
    "HALO_SCOPE",
)  # fmt: skip
# Dagster's console logger defaults to DEBUG, which buries the demo's own output.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def prepare_dagster_home(project_dir: Path = Path()) -> Path:
    """The Dagster instance directory: `$DAGSTER_HOME` if set, else `.dagster_home/` in the
    project. The project's own directory always gets the project's dagster.yaml; one the user
    chose gets it only if it has none, so their instance settings are never overwritten."""
    chosen = os.environ.get("DAGSTER_HOME")
    home = Path(chosen or project_dir / DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    project_yaml = project_dir / "dagster.yaml"
    if project_yaml.exists() and not (chosen and (home / "dagster.yaml").exists()):
        shutil.copyfile(project_yaml, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def simulator_state(warehouse: str | Path) -> Path:
    """The simulator's state file: beside the warehouse it syncs into (`make clean` removes
    both), so the two stay a pair."""
    path = Path(warehouse)
    if str(warehouse).startswith("md:") or str(warehouse) == ":memory:":
        path = Path(DEFAULT_PATH)
    return path.with_name(f"{path.stem}.simulator.json")


@contextmanager
def simulated_halo(
    state_file: Path | None = None, port: int = 0
) -> Iterator[tuple[Simulator, dict[str, str]]]:
    """A running simulator, continuing from `state_file` when it exists, and the `HALO_*`
    variables that point at it."""
    config = SimulatorConfig()
    simulator = Simulator(
        generate_dataset(agents=DEMO_AGENTS, teams=DEMO_TEAMS, roles=DEMO_ROLES),
        config,
        state_file=state_file,
    )
    with simulator.serve("127.0.0.1", port) as url:
        # Every connection variable, the optional ones blank, so none set for a real
        # HaloITSM (an auth URL, a tenant) sends the simulator's credentials elsewhere.
        yield (
            simulator,
            {
                **dict.fromkeys(CONNECTION_VARIABLES, ""),
                "HALO_BASE_URL": url,
                "HALO_CLIENT_ID": config.client_id,
                "HALO_CLIENT_SECRET": config.client_secret,
            },
        )


def real_halo_configured(project_dir: Path = Path()) -> bool:
    """True when HALO_BASE_URL is set in the environment or in the project's `.env`.

    Without it `make dev` uses the simulator, and refuses a `.env` that sets other connection
    variables: `dagster dev` applies `.env` over its environment, so they would reach the
    code location in place of the simulator's.
    """
    from dotenv import dotenv_values

    if halo_configured(project_dir):
        return True
    dotenv = dotenv_values(project_dir / ".env")
    clashing = [name for name in CONNECTION_VARIABLES if name in dotenv]
    if clashing:
        raise click.ClickException(
            f".env sets {', '.join(clashing)} but not HALO_BASE_URL. Set HALO_BASE_URL there to "
            "use your HaloITSM, or remove those lines to use the simulator."
        )
    return False


def run_dev(host: str, port: int) -> None:
    """What `make dev` does: `dg dev` (Dagster's webserver and daemon, for the `dg` project in
    pyproject.toml) with the simulator (unless a real HaloITSM is configured) and the project's
    Dagster instance, until Ctrl-C or SIGTERM."""
    refuse_busy_port(host, port)
    home = prepare_dagster_home()
    use_simulator = not real_halo_configured()
    state = simulator_state(configured_path())
    with simulated_halo(state) if use_simulator else nullcontext((None, {})) as (_, env):
        if use_simulator:
            click.echo(
                f"HaloITSM simulator at {env['HALO_BASE_URL']} "
                "(set HALO_BASE_URL to use a real instance)"
            )
        click.echo(f"Dagster UI at http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it.")
        # The dg beside this interpreter: the project's environment, activated or not.
        dg = Path(sys.executable).with_name("dg")
        command = [str(dg), "dev", "-h", host, "-p", str(port)]
        # A process group of its own, so that everything dg dev starts can be ended together.
        process = subprocess.Popen(command, env={**os.environ, **env}, start_new_session=True)
        run_until_stopped(process)


def refuse_busy_port(host: str, port: int) -> None:
    """Dagster's webserver that cannot bind its port logs one line and serves nothing while
    `dagster dev` goes on running: say so before starting anything."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family) as probe:
            # As uvicorn binds: a port left in TIME_WAIT by the last `make dev` is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except socket.gaierror as error:
        raise click.ClickException(
            f"Cannot serve the Dagster UI on {host}: {error.strerror}. Check --host."
        ) from None
    except OSError as error:
        raise click.ClickException(
            f"Cannot serve the Dagster UI on {host}:{port}: {error.strerror or error}. Stop "
            "what uses it (another `make dev`?) or choose another port: "
            "`halo-pipeline dev --port N`."
        ) from None


STOP_GRACE_S = 30.0


def run_until_stopped(process: subprocess.Popen) -> None:
    """Wait for `process`, the leader of its own process group. Ctrl-C or SIGTERM to this
    process reaches the group as a Ctrl-C, as dg dev expects; whatever of the group is left
    `STOP_GRACE_S` later, or after the leader ends, is killed, so nothing outlives `make dev`."""
    stopping: list[float] = []

    def stop(*_: object) -> None:
        stopping.append(time.monotonic())
        _signal_group(process.pid, signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while process.poll() is None:
            if stopping and time.monotonic() - stopping[0] > STOP_GRACE_S:
                _signal_group(process.pid, signal.SIGKILL)
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
    finally:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(group: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):  # none of the group is left
        os.killpg(group, sig)
