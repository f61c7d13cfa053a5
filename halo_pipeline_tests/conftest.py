"""Shared fixtures: a simulator per test, reachable in-process and over loopback HTTP. And the
suite's own hygiene: no process it started outlives it, and it leaves the checkout as it was."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest

from halo_pipeline import environment
from halo_pipeline.definitions import build_definitions
from halo_pipeline.halo import HaloClient, HaloSettings
from halo_pipeline.requests.signing import KeyRing, init_keyring
from halo_pipeline.simulator import Simulator, SimulatorConfig, generate_dataset
from halo_pipeline.warehouse import connect
from halo_pipeline.warehouse.migrations import warehouse_id
from halo_pipeline_tests.helpers import build_access, sync, synced_copy
from halo_pipeline_tests.policy_support import POLICY

IN_PROCESS_URL = "http://halo.test"
# Every process the suite starts inherits this mark (xdist's workers, servers, killed runs), so
# the ones still running at the end can be found wherever they were reparented.
SESSION_MARK = "PYTEST_HALO_PIPELINE_SESSION"
CHECKOUT = Path(__file__).resolve().parents[1]


NO_POLICY = Path(__file__).parent / "fixtures" / "no_policy.yml"


def pytest_configure(config: pytest.Config) -> None:
    # The tests see only what they set: never the developer's `.env`, HaloITSM or Dagster home.
    environment.ENV_FILE = None
    for name in [name for name in os.environ if name.startswith(("HALO_", "DAGSTER_"))]:
        del os.environ[name]
    os.environ["HALO_ACCESS_POLICY"] = str(NO_POLICY)
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has marked it
        return
    os.environ[SESSION_MARK] = uuid.uuid4().hex
    config.stash[_CHECKOUT_BEFORE] = _checkout_status()


_CHECKOUT_BEFORE = pytest.StashKey[str]()

# The two longest modules, in the order they take: each is a chain of steps on one worker.
LONGEST = ("test_readme_commands.py", "test_ui_browser.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first. `make test` hands whole modules to its workers in this order
    (`--dist loadscope --no-loadscope-reorder`): the two longest, then those that start real
    servers and processes, then the others, those with more tests first. Started last, a long
    module would run on alone at the end while the other workers idle."""
    tests = Counter(item.path for item in items)
    slow = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> tuple[int, int]:
        if item.path.name in LONGEST:
            return LONGEST.index(item.path.name), 0
        if item.path in slow:
            return len(LONGEST), 0
        return len(LONGEST) + 1, -tests[item.path]

    items.sort(key=rank)  # stable: the tests of a module keep their order


@pytest.hookimpl(trylast=True)  # after xdist has stopped its workers
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    problems = []
    left = _processes_left(os.environ[SESSION_MARK])
    if left:
        problems.append(
            "processes the tests started are still running (now killed): "
            + "; ".join(f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in left)
        )
        for process in left:
            process.kill()
    before = set(session.config.stash.get(_CHECKOUT_BEFORE, "").splitlines())
    # `make screenshots` asks for new pictures in docs/: the one change a run may make.
    wanted = os.environ.get("HALO_SCREENSHOTS_DIR")
    changed = [
        line
        for line in _checkout_status().splitlines()
        if line not in before
        and not (wanted and (CHECKOUT / line[3:]).resolve().is_relative_to(Path(wanted).resolve()))
    ]
    if changed:
        problems.append("the tests changed the checkout (git status):\n" + "\n".join(changed))
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for problem in problems:
            reporter.write_line(f"ERROR: {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _processes_left(mark: str) -> list[psutil.Process]:
    me = os.getpid()
    marked = []
    for process in psutil.process_iter():
        try:
            if process.pid != me and process.environ().get(SESSION_MARK) == mark:
                marked.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    # Give processes on their way out (a server just told to stop) a moment.
    _, alive = psutil.wait_procs(marked, timeout=10)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def _checkout_status() -> str:
    try:
        return subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=CHECKOUT, capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
    except OSError:  # no git: nothing to compare
        return ""


@pytest.fixture(scope="session", autouse=True)
def _outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test, and every process it starts, works in an empty directory: no developer's
    `.env` is found there (the Dagster commands read the one where they start), and nothing is
    written into the checkout."""
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(generate_dataset(), SimulatorConfig())


@pytest.fixture(params=["in-process", "loopback"])
def halo_url(request: pytest.FixtureRequest, sim: Simulator) -> Iterator[str]:
    """The simulator's base URL; in-process clients get its WSGI transport from `make_client`."""
    if request.param == "in-process":
        yield IN_PROCESS_URL
    else:
        with sim.serve() as url:
            yield url


@pytest.fixture
def sleeps() -> list[float]:
    """Retry pauses the client asked for; tests record them instead of waiting."""
    return []


@pytest.fixture
def make_client(
    sim: Simulator, halo_url: str, sleeps: list[float]
) -> Iterator[Callable[..., HaloClient]]:
    """`make_client(**settings)`: a client for the simulator whose retries do not sleep."""
    clients: list[HaloClient] = []

    def make(clock: Callable[[], float] = time.monotonic, **overrides: object) -> HaloClient:
        settings = HaloSettings(
            base_url=halo_url,
            client_id=sim.config.client_id,
            client_secret=sim.config.client_secret,
        )
        client = HaloClient(
            HaloSettings(**{**dict(settings), **overrides}),
            transport=sim.transport() if halo_url == IN_PROCESS_URL else None,
            sleep=sleeps.append,
            clock=clock,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture(scope="session")
def _synced_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "warehouse.duckdb"
    sync(Simulator(generate_dataset(), SimulatorConfig()), path)
    build_access(path)
    return path


@pytest.fixture
def path(sim: Simulator, warehouse_path: Path, _synced_template: Path) -> Path:
    """The warehouse (`warehouse_path`) as one sync of `sim` and a build of the models leave
    it: the simulator's data is seeded, so that warehouse is made once per worker and copied."""
    assert sim.config == SimulatorConfig(), "the template is of the default simulator"
    return synced_copy(_synced_template, warehouse_path)


@pytest.fixture
def halo_env(
    sim: Simulator, warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """`HALO_*` variables pointing at the simulator over loopback, as a deployment sets them."""
    with sim.serve() as url:
        env = {
            "HALO_BASE_URL": url,
            "HALO_CLIENT_ID": sim.config.client_id,
            "HALO_CLIENT_SECRET": sim.config.client_secret,
            "HALO_DUCKDB_PATH": str(warehouse_path),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An instance in memory: runs, events and checks as Dagster records them, without the
    SQLite files, log capture processes and commits of one on disk, which cost a run twice its
    work. Tests of what only a stored instance shows start Dagster's own processes."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def run_job(instance: dg.DagsterInstance) -> Callable[..., dg.ExecuteInProcessResult]:
    """`run_job("halo_sync_job", run_config=...)` with definitions built from the environment
    as it is now, the way `dagster dev` builds them."""

    def run(
        name: str, run_config: dict | None = None, sql_dir: Path | None = None
    ) -> dg.ExecuteInProcessResult:
        defs = build_definitions(sql_dir) if sql_dir else build_definitions()
        return defs.resolve_job_def(name).execute_in_process(
            instance=instance, run_config=run_config or {}, raise_on_error=False
        )

    return run


@pytest.fixture
def policy(tmp_path, monkeypatch):
    """`policy(text)` writes an access policy (default: the tests' POLICY) and points
    HALO_ACCESS_POLICY at it."""

    def write(text: str = POLICY) -> Path:
        path = tmp_path / "access_policy.yml"
        path.write_text(text)
        monkeypatch.setenv("HALO_ACCESS_POLICY", str(path))
        return path

    return write


@pytest.fixture
def signing_key(tmp_path, monkeypatch) -> Callable[[Path], KeyRing]:
    """`signing_key(warehouse)`: `halo-pipeline key init` for that warehouse, in a folder of
    this test's, named by HALO_SIGNING_KEY_FILE."""

    def make(warehouse: Path) -> KeyRing:
        with connect(warehouse) as con:
            ring = init_keyring(warehouse_id(con), tmp_path / "keys" / "halo-signing.key")
        monkeypatch.setenv("HALO_SIGNING_KEY_FILE", str(ring.path))
        return ring

    return make


@pytest.fixture
def synced(path, halo_env, policy, signing_key, monkeypatch) -> Path:
    """The simulator synced under POLICY, provisioning and ticketing on, with a signing key."""
    policy()
    monkeypatch.setenv("HALO_PROVISIONING", "true")
    monkeypatch.setenv("HALO_TICKETING", "true")
    assert halo_env["HALO_DUCKDB_PATH"] == str(path)
    signing_key(path)
    return path
