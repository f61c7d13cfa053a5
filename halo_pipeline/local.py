"""Running the pipeline on one machine against the bundled simulator: `make demo`, `make dev`.

The simulator plays a HaloITSM instance on a loopback port; the `HALO_*` variables point at it
and the Dagster instance lives in `.dagster_home/` inside the project, so the runs of
`make demo` show up in the UI that `make dev` opens.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from halo_pipeline.simulator import Simulator, SimulatorConfig, generate_dataset

DAGSTER_HOME = Path(".dagster_home")
DEMO_AGENTS, DEMO_TEAMS, DEMO_ROLES = 250, 12, 8


def prepare_dagster_home(project_dir: Path = Path()) -> Path:
    """A persistent DAGSTER_HOME holding the project's dagster.yaml (unless one is set)."""
    home = Path(os.environ.get("DAGSTER_HOME") or project_dir / DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    project_yaml = project_dir / "dagster.yaml"
    if project_yaml.exists():
        shutil.copyfile(project_yaml, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@contextmanager
def simulated_halo(port: int = 0) -> Iterator[tuple[Simulator, dict[str, str]]]:
    """A running simulator and the `HALO_*` variables that point at it."""
    config = SimulatorConfig()
    simulator = Simulator(
        generate_dataset(agents=DEMO_AGENTS, teams=DEMO_TEAMS, roles=DEMO_ROLES), config
    )
    with simulator.serve("127.0.0.1", port) as url:
        yield (
            simulator,
            {
                "HALO_BASE_URL": url,
                "HALO_CLIENT_ID": config.client_id,
                "HALO_CLIENT_SECRET": config.client_secret,
            },
        )


def real_halo_configured(project_dir: Path = Path()) -> bool:
    """True when HALO_BASE_URL is set in the environment or in the project's `.env`."""
    from dotenv import dotenv_values

    return bool(
        os.environ.get("HALO_BASE_URL") or dotenv_values(project_dir / ".env").get("HALO_BASE_URL")
    )
