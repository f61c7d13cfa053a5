"""What every warehouse asset reports when it materializes: rows, columns and a preview."""

from typing import Any

import dagster as dg
import duckdb

OWNERS = ["team:access-governance"]
PREVIEW_ROWS = 10


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
