"""Printing query results as a table, CSV or JSON.

A list (a role list, a team list) reads as `Agent, Change Manager` in a table and as a JSON
array in a CSV cell, so a machine can split it without guessing; a struct is JSON in both.
Wide characters (Chinese, Japanese) take two columns, and the borders stay aligned (tabulate
measures with wcwidth).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any


def table_cell(value: Any) -> Any:
    """A value as a person reads it in a table: NULL empty, a list comma-separated."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(table_cell(item)) for item in value)
    if isinstance(value, dict):
        return _json(value)
    return value


def csv_cell(value: Any) -> Any:
    """A value in a CSV cell: lists and structs as JSON, the rest as csv writes them."""
    return _json(value) if isinstance(value, list | tuple | dict) else value


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], output_format: str) -> str:
    if output_format == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        return json.dumps(records, default=str, ensure_ascii=False, indent=2) + "\n"
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([csv_cell(value) for value in row] for row in rows)
        return buffer.getvalue()
    # Here, not at the top: the Dagster reporting imports table_cell, and tabulate (wcwidth's
    # patterns) is a tenth of a second that only a printed table needs.
    from tabulate import tabulate

    table = tabulate(
        [[table_cell(value) for value in row] for row in rows],
        headers=columns,
        tablefmt="simple_outline",
        disable_numparse=True,
    )
    return f"{table}\n({len(rows)} row{'s' if len(rows) != 1 else ''})\n"
