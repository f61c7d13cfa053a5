"""Every query under "Questions you can ask" in the README, run with `halo-pipeline query`, for
exact rows on a warehouse made for it. That each has some rows on the demo's data is tested
beside the demo, in test_readme_commands.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from halo_pipeline.cli import main
from halo_pipeline.simulator import Simulator, generate_dataset
from halo_pipeline.warehouse import connect
from halo_pipeline_tests.helpers import build_access, sync

README = Path(__file__).resolve().parents[1] / "README.md"
ADMINISTRATOR = generate_dataset().roles[0].id


def readme_questions() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Questions you can ask", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"### (.+?)\n.*?```sql\n(.*?)```", section, flags=re.DOTALL))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Simulator]:
    """Three syncs: a baseline on 25 October, agent 5 leaving team 6 on 5 November, and
    yesterday Priya Patel (9) made an administrator and an unused Auditor role created."""
    sim = Simulator()
    path = tmp_path_factory.mktemp("readme") / "warehouse.duckdb"
    sync(sim, path)
    sim.set_agent_teams(5, [2])
    sync(sim, path)
    sim.set_agent_roles(9, [ADMINISTRATOR])
    sim.add_role("Auditor")
    sync(sim, path)
    with connect(path) as con:
        con.execute(
            "UPDATE halo.sync_runs SET synced_at = CASE sync_id "
            "WHEN 1 THEN TIMESTAMPTZ '2026-10-25 09:00:00+00' "
            "WHEN 2 THEN TIMESTAMPTZ '2026-11-05 09:00:00+00' "
            "ELSE now() - INTERVAL 1 DAY END"
        )
    build_access(path)
    return path, sim


def ask(path: Path, sql: str) -> list[list]:
    result = CliRunner().invoke(main, ["query", sql, "--format", "json", "--warehouse", str(path)])
    assert result.exit_code == 0, result.output
    return [list(row.values()) for row in json.loads(result.output)]


def test_every_readme_question_is_tested():
    assert sorted(readme_questions()) == sorted(EXPECTED)


def members_of_team_2(sim: Simulator) -> list[list]:
    return [
        [agent_id, agent["name"], agent["isdisabled"]]
        for agent_id in range(2, 42)
        for agent in [sim.get_agent(agent_id)]
        if 2 in [team["team_id"] for team in agent["teams"]]
    ]


EXPECTED = {
    "Who is an administrator?": lambda rows, sim: rows
    == [[2, "Zoë Müller", "Administrator"], [9, "Priya Patel", "Administrator"]],
    "Who gained an administrator role this week?": lambda rows, sim: [r[:3] for r in rows]
    == [[9, "Priya Patel", "Administrator"]],
    "What did agent 5 hold on 1 November 2026?": lambda rows, sim: [r[:2] for r in rows]
    == [["role", "Agent"], ["team", "2nd Line Support"], ["team", "Закупки"]]
    and rows[2][3].startswith("2026-11-05 09:00:00"),
    "Which disabled agents still have access?": lambda rows, sim: [r[0] for r in rows]
    == [6, 29, 40]
    and rows[0][2:] == [["Agent", "Change Manager"], ["1st Line Support"]],
    "Which agents hold no role?": lambda rows, sim: rows
    == [
        [7, "Aoife D'Angelo", True],
        [13, "Aoife Novák", False],
        [19, "Kwame Иванов", False],
        [34, "Björn Müller", False],
        [40, "Björn Müller", True],
    ],
    "Which teams are empty and which roles does nobody hold?": lambda rows, sim: rows
    == [["role", "Auditor", False]],
    "What changed in the last sync?": lambda rows, sim: rows
    == [["added", "role", "Administrator", "Priya Patel"]],
    "Who is in the 2nd Line Support team?": lambda rows, sim: rows == members_of_team_2(sim),
    "Everyone's access, one line per agent": lambda rows, sim: len(rows) == 40
    and rows[0]
    == [2, "Zoë Müller", ["Administrator", "Agent", "Change Manager"],
        ["1st Line Support", "Service Desk – Café"]],
}  # fmt: skip


@pytest.mark.parametrize("question", sorted(EXPECTED))
def test_readme_question(warehouse, question):
    path, sim = warehouse
    rows = ask(path, readme_questions()[question])

    assert EXPECTED[question](rows, sim), rows
