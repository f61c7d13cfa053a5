"""What every warehouse asset reports: rows, columns and a preview when it materializes, and
the results of its column tests as asset checks, from inside the step that built it."""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import dagster as dg
import duckdb

from halo_pipeline.query_output import table_cell
from halo_pipeline.sql_models.schema_tests import ColumnTest

OWNERS = ["team:access-governance"]
PREVIEW_ROWS = 10
SAMPLE_ROWS = 5


def table_metadata(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    descriptions: Mapping[str, str] | None = None,
    *,
    view: bool = False,
) -> dict[str, Any]:
    """Row count, column schema (with `schema.yml`'s `descriptions`) and a markdown preview of
    a table or view as committed: its first rows in the order of all their columns.

    The schema is the preview's own columns, as DESCRIBE would give them. A table's rows are
    counted apart (DuckDB reads that from its storage); a `view` is counted in its preview's
    query, so it runs once, not twice. `relation` is a schema-qualified name from the
    project's own definitions, never user input.
    """
    descriptions = descriptions or {}
    if view:
        # A constant first column leaves ORDER BY ALL's order as it was.
        preview = con.execute(
            f"SELECT count(*) OVER (), * FROM {relation} ORDER BY ALL LIMIT ?", [PREVIEW_ROWS]
        )
        counted = preview.fetchall()
        rows = counted[0][0] if counted else 0
        found, columns = [row[1:] for row in counted], (preview.description or [])[1:]
    else:
        [(rows,)] = con.execute(f"SELECT count(*) FROM {relation}").fetchall()
        preview = con.execute(f"SELECT * FROM {relation} ORDER BY ALL LIMIT ?", [PREVIEW_ROWS])
        found, columns = preview.fetchall(), preview.description or []
    return {
        "dagster/row_count": rows,
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(name, str(kind), description=descriptions.get(name))
                for name, kind, *_ in columns
            ]
        ),
        "preview": markdown(found, columns),
    }


def markdown(rows: Sequence[Sequence[Any]], description: Any) -> dg.MetadataValue:
    """Rows as a markdown table, each cell as `halo-pipeline query` shows it (a NULL empty).
    Written out here, not by tabulate or pandas: a markdown table needs no padding, and a run
    then imports neither."""
    headers = [column[0] for column in description or ()]
    if not rows:
        return dg.MetadataValue.md("(none)")
    lines = [
        _markdown_row(headers),
        "|" + "|".join("---" for _ in headers) + "|",
        *(_markdown_row(row) for row in rows),
    ]
    return dg.MetadataValue.md("\n".join(lines))


def _markdown_row(values: Iterable[Any]) -> str:
    return "| " + " | ".join(_markdown_cell(value) for value in values) + " |"


def _markdown_cell(value: Any) -> str:
    """A `|` in a value would end the cell, and a line break the row."""
    cell = str(table_cell(value))
    return cell.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


CHECK_NAME = "column_tests"


def by_relation(tests: Iterable[ColumnTest]) -> dict[tuple[str, str], list[ColumnTest]]:
    grouped: dict[tuple[str, str], list[ColumnTest]] = defaultdict(list)
    for test in tests:
        grouped[(test.schema, test.table)].append(test)
    return dict(grouped)


def check_specs(tests: Iterable[ColumnTest]) -> list[dg.AssetCheckSpec]:
    """One check per table or model: its schema.yml tests, each reported in the metadata. One
    check, not one per test, because every check costs a run three stored events."""
    return [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=list(relation),
            description="schema.yml: " + "; ".join(test.description for test in group),
        )
        for relation, group in by_relation(tests).items()
    ]


def check_results(
    con: duckdb.DuckDBPyConnection,
    relation: tuple[str, str],
    tests: list[ColumnTest],
    selected: AbstractSet[dg.AssetCheckKey],
) -> Iterator[dg.AssetCheckResult]:
    """Run the relation's tests, when its check is selected, and report them as one result:
    failing when any test finds rows, as a warning when only `severity: warn` tests do."""
    key = dg.AssetKey(list(relation))
    if not tests or dg.AssetCheckKey(key, CHECK_NAME) not in selected:
        return
    outcomes, samples = [], {}
    for test in tests:
        sql, params = test.failing_rows_sql()
        result = con.execute(sql, params)
        failing = result.fetchall()
        outcomes.append((test.name, len(failing), "warn" if test.warn_only else "error"))
        if failing:
            samples[f"sample {test.name}"] = markdown(failing[:SAMPLE_ROWS], result.description)
    failed = [name for name, rows, _ in outcomes if rows]
    erring = [name for name, rows, level in outcomes if rows and level == "error"]
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if erring else dg.AssetCheckSeverity.WARN,
        metadata={
            "failed_tests": ", ".join(failed) or "(none)",
            "tests": markdown(outcomes, [("test",), ("failing rows",), ("severity",)]),
            **samples,
        },
    )
