"""How a person types this project's commands, so that what it prints works as printed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from halo_pipeline.environment import FromEnvironment

SCRIPTS = ("halo-pipeline", "dagster", "dg")


def typed(command: str) -> str:
    """`command` (halo-pipeline, dagster, dg) as typed in a new shell here: bare when the shell
    finds this environment's, else its path (`.venv/bin/halo-pipeline` after `make demo`)."""
    launched = Path(sys.argv[0])
    # The path this process was started by, as typed; else the environment's own scripts.
    scripts = launched.parent if launched.name in SCRIPTS else Path(sys.executable).parent
    here = scripts / command
    found = shutil.which(command)
    if found and Path(found).resolve() == here.resolve():
        return command
    if not here.is_absolute():
        return str(here)
    try:
        return str(here.relative_to(Path.cwd()))
    except ValueError:
        return str(here)


class _Where(FromEnvironment):
    base_url: str | None = None


def halo_configured(project_dir: Path | None = None) -> bool:
    """True when a HaloITSM is set for commands run here (or in `project_dir`): HALO_BASE_URL in
    the environment or in the project's `.env`, which the Dagster commands read. Without one,
    only `make dev` (and the demo) bring a HaloITSM, the simulator."""
    if project_dir is None:
        return _Where.load().base_url is not None
    return _Where(_env_file=project_dir / ".env").base_url is not None  # type: ignore[call-arg]
