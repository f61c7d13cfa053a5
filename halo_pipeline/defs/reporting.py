"""What every warehouse asset reports: rows, columns and a preview when it materializes, and
the results of its column tests as asset checks, from inside the step that built it."""

from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg
import duckdb

from halo_pipeline.sql_models.schema_tests import ColumnTest

OWNERS = ["team:access-governance"]
PREVIEW_ROWS = 10
SAMPLE_ROWS = 5


def table_metadata(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, Any]:
    """Row count, column schema and a markdown preview of a table or view as committed.

    `relation` is a schema-qualified name from the project's own definitions, never user input.
    """
    [(rows,)] = con.execute(f"SELECT count(*) FROM {relation}").fetchall()
    columns = con.execute(f"DESCRIBE {relation}").fetchall()
    preview = con.execute(f"SELECT * FROM {relation} ORDER BY ALL LIMIT ?", [PREVIEW_ROWS]).df()
    return {
        "dagster/row_count": rows,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, str(kind)) for name, kind, *_ in columns]
        ),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
    }


def check_key(test: ColumnTest) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey([test.schema, test.table]), test.name)


def check_specs(tests: Iterable[ColumnTest]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(test.name, asset=[test.schema, test.table], description=test.description)
        for test in tests
    ]


def check_results(
    con: duckdb.DuckDBPyConnection,
    tests: Iterable[ColumnTest],
    selected: set[dg.AssetCheckKey] | frozenset[dg.AssetCheckKey],
) -> Iterator[dg.AssetCheckResult]:
    """Run each selected test and report it: the failing rows' count and a sample."""
    for test in tests:
        if check_key(test) not in selected:
            continue
        sql, params = test.failing_rows_sql()
        failing = con.execute(sql, params).df()
        yield dg.AssetCheckResult(
            asset_key=check_key(test).asset_key,
            check_name=test.name,
            passed=failing.empty,
            severity=dg.AssetCheckSeverity.WARN if test.warn_only else dg.AssetCheckSeverity.ERROR,
            metadata={
                "failing_rows": len(failing),
                "sample": dg.MetadataValue.md(
                    failing.head(SAMPLE_ROWS).to_markdown(index=False)
                    if not failing.empty
                    else "(none)"
                ),
                "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
            },
        )
