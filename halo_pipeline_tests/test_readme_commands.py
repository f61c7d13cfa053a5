"""What a newcomer types: `make demo` twice in a fresh shell, then every command the demo prints
and every command in the README's `sh` blocks, as printed, each exiting 0 or as the README says
(`# exits N`). The simulator is started, checked and stopped. Left out: `make test` (this
suite), `make dev` (test_dev_command runs it) and the benchmarks (scripts that print figures)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from halo_pipeline.local import simulated_halo
from halo_pipeline_tests.helpers import query, wait_for
from halo_pipeline_tests.processes import started
from halo_pipeline_tests.test_readme_questions import ask, readme_questions

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
# `make test` is this suite; `make dev` is started, checked and stopped by test_dev_command;
# the benchmarks are scripts that print figures.
NOT_RUN = ("make test", "make dev", ".venv/bin/python benchmarks/")
# From this section on the README has the reader configure a HaloITSM in `.env`.
CONFIGURED_FROM = "## Point it at a real HaloITSM"


@dataclass(frozen=True)
class Command:
    line: str
    exits: int = 0
    configured: bool = False  # typed once `.env` names a HaloITSM
    shown: str = ""  # the output the README shows right below it


def readme_commands() -> list[Command]:
    """The lines of every `sh` block, with the `text` block right after one, if any."""
    text = README.read_text(encoding="utf-8")
    blocks = list(re.finditer(r"^( *)```(\w*)\n(.*?)^\1```\n", text, re.MULTILINE | re.DOTALL))
    commands = []
    for block, after in zip(blocks, [*blocks[1:], None], strict=True):
        if block.group(2) != "sh":
            continue
        lines = [line.strip() for line in block.group(3).splitlines() if line.strip()]
        for n, line in enumerate(lines):
            typed, _, comment = line.partition("  # ")
            exits = re.match(r"exits (\d+)", comment)
            shown = ""
            last = n == len(lines) - 1
            if (
                last
                and after
                and after.group(2) == "text"
                and not text[block.end() : after.start()].strip()
            ):
                shown = after.group(3).strip()
            commands.append(
                Command(
                    typed.strip(),
                    int(exits.group(1)) if exits else 0,
                    block.start() > text.index(CONFIGURED_FROM),
                    shown,
                )
            )
    return commands


def test_the_readme_commands_are_found():
    """The parser sees what a reader sees: the commands to type, their documented exits."""
    commands = readme_commands()
    lines = [c.line for c in commands]

    assert lines[:3] == ["make demo", "make test", "make dev"]
    assert ".venv/bin/halo-pipeline doctor" in lines
    assert all(c.line.startswith((".venv/bin/", "make ")) for c in commands), lines
    refusals = [c for c in commands if c.exits]
    assert [(c.exits, bool(c.shown)) for c in refusals] == [
        (1, False), (1, True), (1, False), (1, False), (1, True), (1, True)
    ]  # fmt: skip
    assert refusals[1].shown.startswith("Error: Unknown team '2nd Line Suport'")
    assert refusals[2].line == ".venv/bin/halo-pipeline key init"
    assert refusals[4].shown.startswith("Error: Refused by the separation of duties rule")
    assert refusals[5].shown.startswith("Error: 1 of 9 grants have nobody to review them")


COPIED = ("Makefile", "pyproject.toml", "uv.lock", "workspace.yaml", "dagster.yaml",
          ".env.example", "access_policy.yml")  # fmt: skip
LINKED = ("halo_pipeline", "dbt_like_sql", ".venv")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two clones of the project (`once`, `twice`) after `make` made `.venv` (linked there,
    older than its stamp so make installs nothing), and a new shell's environment: no HALO_*
    or DAGSTER_*, no environment activated."""
    installed = PROJECT / ".venv" / ".installed"
    if not installed.exists():
        pytest.skip("needs the .venv that `make` creates (.venv/.installed)")
    clones = tmp_path_factory.mktemp("clones")
    for project in (clones / "once", clones / "twice"):
        project.mkdir()
        for name in COPIED:
            shutil.copy(PROJECT / name, project / name)
        for name in LINKED:
            (project / name).symlink_to(PROJECT / name)
        # Older than the stamp: make installs nothing into the linked .venv.
        stamp = installed.stat().st_mtime - 60
        for name in ("pyproject.toml", "uv.lock"):
            os.utime(project / name, (stamp, stamp))
    venv_bin = str(Path(sys.executable).parent)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HALO_", "DAGSTER_", "VIRTUAL_ENV"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin
    )
    assert shutil.which("halo-pipeline", path=env["PATH"]) is None
    return clones, env


def shell(line: str, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


CHANGES = (
    "SELECT strftime(changed_at, '%Y-%m-%d') AS day, change, resource_name, principal_id "
    "FROM access.grant_changes ORDER BY ALL"
)


@pytest.fixture(scope="module")
def demo(fresh) -> tuple[Path, dict[str, str], list[str], list[tuple], list[tuple], dict]:
    """`make demo` twice: what each printed, access.grant_changes after each, and the README's
    questions answered after the first. Its data and runs are then copied into the other clone
    (`demo_once`)."""
    clones, env = fresh
    project = clones / "twice"
    printed, changes, answers = [], [], {}
    for n in range(2):
        done = shell("make demo", project, env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        printed.append(done.stdout)
        changes.append(query(project / "data" / "warehouse.duckdb", CHANGES))
        if n == 0:  # a third demo would only take time
            warehouse = project / "data" / "warehouse.duckdb"
            answers = {
                question: ask(warehouse, sql) for question, sql in readme_questions().items()
            }
            for name in ("data", ".dagster_home"):
                shutil.copytree(project / name, clones / "once" / name, symlinks=True)
            for name in ("halo-signing.key", "halo-signing.key.used"):  # the demo's key
                shutil.copy2(project / name, clones / "once" / name)
    return project, env, printed, *changes, answers


@pytest.fixture(scope="module")
def demo_once(fresh, demo) -> tuple[Path, dict[str, str]]:
    """What a reader has after `make demo`: the README's request ids follow from it."""
    clones, env = fresh
    return clones / "once", env


def test_a_second_demo_records_only_what_the_demo_did(demo):
    project, _, printed, first, second, _ = demo

    assert second == first
    october = [row for row in first if row[0].startswith("2026-10")]
    assert sorted({row[0] for row in october}) == ["2026-10-08", "2026-10-15", "2026-10-22",
                                                    "2026-10-29"]  # fmt: skip
    assert sorted(row[1:] for row in first if row not in october) == [
        ("added", "2nd Line Support", 10),
        ("added", "Administrator", 9),
        ("added", "Change Manager", 17),  # asked on a ticket, approved in HaloITSM
        ("removed", "Administrator", 2),
    ]
    assert "A new simulator: replaying its October 2026" in printed[0]
    assert "replaying" not in printed[1]
    # The three requests, and the ticket's: held already, it is answered so on the ticket.
    assert printed[1].count("already_satisfied") == 3 + 2
    assert (
        "request 10 already_satisfied; answered on the ticket and closed: Outcome: "
        "already_satisfied" in printed[1]
    )
    assert (project / "data" / "warehouse.simulator.json").exists()


def printed_commands(output: str) -> list[str]:
    return [
        line.strip() for line in output.splitlines() if line.startswith(("  .venv/bin/", "  make"))
    ]


def test_every_command_the_demo_prints_works_as_printed(demo):
    project, env, printed, *_ = demo
    commands = printed_commands(printed[1])

    assert commands == printed_commands(printed[0])
    assert [c.split()[0] for c in commands] == [".venv/bin/halo-pipeline"] * 2 + ["make"]
    for line in commands:
        if line == "make dev":  # the README gives it too; test_dev_command runs it
            assert line in [c.line for c in readme_commands()]
            continue
        done = shell(line, project, env)
        assert done.returncode == 0, (line, done.stderr)
        assert int(re.search(r"\((\d+) rows?\)", done.stdout).group(1)) > 0, done.stdout


@pytest.mark.parametrize("question", sorted(readme_questions()))
def test_readme_question_has_an_answer_on_demo_data(demo, question):
    *_, answers = demo
    assert answers[question] != []


def test_every_readme_command_works_as_typed(demo_once):
    project, env = demo_once
    commands = [c for c in readme_commands() if not c.line.startswith(NOT_RUN)]
    with simulated_halo(project / "data" / "warehouse.simulator.json") as (_, halo):
        for command in commands:
            dotenv = project / ".env"
            if command.configured and not dotenv.exists():  # as the README has the reader do
                dotenv.write_text("".join(f"{k}={v}\n" for k, v in halo.items()))
            if command.line == "make demo":
                continue  # run by the fixture
            if command.line.startswith(".venv/bin/halo-pipeline simulator"):
                check_simulator(command.line, project, env)
            else:
                if command.line.startswith(".venv/bin/halo-pipeline review import"):
                    fill_in(project / command.line.split()[4])
                done = shell(command.line, project, env)
                assert done.returncode == command.exits, (command, done.stdout, done.stderr)
                if command.shown:
                    assert done.stderr.strip() == command.shown
    assert not (project / "answer.csv").exists()
    # What the walk-through leaves is what `git status` ignores (.gitignore: data/,
    # .dagster_home/, .env, the signing key and its ledger): nothing else was added.
    added = {path.name for path in project.iterdir()} - {*COPIED, *LINKED}
    assert added <= {"data", ".dagster_home", ".env", "halo-signing.key",
                     "halo-signing.key.used"}, added  # fmt: skip
    # The review's evidence: the revoke applied with its ticket, and confirmed by a sync.
    with (project / "data" / "review-evidence" / "report.csv").open(encoding="utf-8") as report:
        reviewed = {row["agent_id"]: row for row in csv.DictReader(report)}
    smith = reviewed["46"]
    assert (smith["decision"], smith["note"], smith["request_status"]) == (
        "revoke",
        "left the admin rota",
        "applied",
    )
    assert smith["ticket_id"] and smith["removed_in_sync_id"]
    assert {row["decision"] for agent, row in reviewed.items() if agent != "46"} == {"keep"}


def fill_in(sheet: Path) -> None:
    """What the README has the reviewer do in a spreadsheet: revoke José Smith's (46) grant,
    keep the rest."""
    with sheet.open(encoding="utf-8") as exported:
        rows = list(csv.DictReader(exported))
    assert [row["decision"] for row in rows] == [""] * 9
    for row in rows:
        revoke = row["agent_id"] == "46"
        row.update(decision="revoke" if revoke else "keep",
                   note="left the admin rota" if revoke else "")  # fmt: skip
    with sheet.open("w", encoding="utf-8", newline="") as filled:
        writer = csv.DictWriter(filled, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def check_simulator(line: str, project: Path, env: dict[str, str]) -> None:
    log = project.parent / "simulator.log"
    with started(["bash", "-c", line], log=log, cwd=project, env=env):
        wait_for("the simulator", lambda: "HALO_BASE_URL=" in log.read_text(), log, 120)
        url = re.search(r"HALO_BASE_URL=(\S+)", log.read_text()).group(1)
        token = httpx.post(
            f"{url}/auth/token",
            data={"grant_type": "client_credentials", "client_id": "halo-pipeline-demo",
                  "client_secret": secret_in(log.read_text()), "scope": "all"},
        ).json()["access_token"]  # fmt: skip
        agents = httpx.get(
            f"{url}/api/agent",
            params={"pageinate": "true", "page_size": 1, "page_no": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
        # 10,000 made; the list leaves out disabled and API-only agents unless asked for them.
        assert 9_000 < agents.json()["record_count"] < 10_000
    assert not answers(url), "the simulator still answers after Ctrl-C"


def secret_in(log: str) -> str:
    return re.search(r"HALO_CLIENT_SECRET=(\S+)", log).group(1)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False
