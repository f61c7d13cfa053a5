"""Column tests from a dbt-style `schema.yml`, as SQL that selects the rows that fail.

Supported, with dbt's meaning: `unique`, `not_null`, `accepted_values` (`values`),
`relationships` (`to: ref('model')` or `source('halo', 'table')`, `field`), and dbt_utils'
`unique_combination_of_columns` at table level. `config: {severity: warn}` makes a test warn
instead of fail. Plain Python: the Dagster layer turns each test into an asset check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

COLUMN_TESTS = ("unique", "not_null", "accepted_values", "relationships")
TABLE_TESTS = ("unique_combination_of_columns",)
MODEL_SCHEMA = "access"
_RELATION = re.compile(
    r"""^\s*(?:ref\(\s*['"](?P<ref>\w+)['"]\s*\)"""
    r"""|source\(\s*['"](?P<src>\w+)['"]\s*,\s*['"](?P<table>\w+)['"]\s*\))\s*$"""
)


class SchemaFileError(ValueError):
    """`schema.yml` names a test or relation this project does not understand."""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class ColumnTest:
    schema: str
    table: str
    kind: str
    columns: tuple[str, ...]
    values: tuple[str, ...] = ()
    to: tuple[str, str] | None = None
    field: str | None = None
    warn_only: bool = False

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def name(self) -> str:
        """A check name Dagster accepts: `unique_agent_id`, `relationships_role_id__roles`."""
        name = f"{self.kind}_{'_'.join(self.columns)}"
        return f"{name}__{self.to[1]}" if self.to else name

    @property
    def description(self) -> str:
        cols = ", ".join(self.columns)
        return {
            "unique": f"{cols} is unique in {self.relation}",
            "not_null": f"{cols} is never null in {self.relation}",
            "accepted_values": f"{cols} is one of {', '.join(self.values)}",
            "relationships": f"every {cols} exists in "
            f"{self.to[0] if self.to else ''}.{self.to[1] if self.to else ''}.{self.field}",
            "unique_combination_of_columns": f"({cols}) is unique in {self.relation}",
        }[self.kind]

    def failing_rows_sql(self) -> tuple[str, list[Any]]:
        """A query returning the failing rows (or values with their counts), and its params."""
        table = f"{quote(self.schema)}.{quote(self.table)}"
        cols = ", ".join(quote(c) for c in self.columns)
        col = quote(self.columns[0])
        if self.kind in ("unique", "unique_combination_of_columns"):
            return (
                f"SELECT {cols}, count(*) AS occurrences FROM {table} "
                f"WHERE {' AND '.join(f'{quote(c)} IS NOT NULL' for c in self.columns)} "
                f"GROUP BY ALL HAVING count(*) > 1 ORDER BY occurrences DESC",
                [],
            )
        if self.kind == "not_null":
            return f"SELECT * FROM {table} WHERE {col} IS NULL", []
        if self.kind == "accepted_values":
            return (
                f"SELECT {col}, count(*) AS occurrences FROM {table} "
                f"WHERE {col} IS NOT NULL AND NOT list_contains(?::VARCHAR[], {col}::VARCHAR) "
                "GROUP BY ALL ORDER BY occurrences DESC",
                [list(self.values)],
            )
        assert self.to and self.field
        parent = f"{quote(self.to[0])}.{quote(self.to[1])}"
        return (
            f"SELECT child.{col}, count(*) AS occurrences FROM {table} AS child "
            f"ANTI JOIN {parent} AS parent ON child.{col} = parent.{quote(self.field)} "
            f"WHERE child.{col} IS NOT NULL GROUP BY ALL ORDER BY occurrences DESC",
            [],
        )


def load_schema_tests(path: Path) -> list[ColumnTest]:
    """Every test in `schema.yml`: sources keep their schema, models live in `access`."""
    if not path.exists():
        return []
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tests: list[ColumnTest] = []
    for source in doc.get("sources") or []:
        for table in source.get("tables") or []:
            tests += _table_tests(path, source["name"], table)
    for model in doc.get("models") or []:
        tests += _table_tests(path, MODEL_SCHEMA, model)
    return tests


def load_column_descriptions(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Each table's and model's column descriptions in `schema.yml`, by (schema, table): what
    the Dagster UI shows beside each column."""
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tables = [
        (source["name"], table)
        for source in doc.get("sources") or []
        for table in source.get("tables") or []
    ]
    tables += [(MODEL_SCHEMA, model) for model in doc.get("models") or []]
    return {
        (schema, table["name"]): {
            column["name"]: column["description"].strip()
            for column in table.get("columns") or []
            if column.get("description")
        }
        for schema, table in tables
    }


def _table_tests(path: Path, schema: str, table: dict[str, Any]) -> list[ColumnTest]:
    name = table["name"]
    tests = [_build(path, schema, name, None, entry) for entry in _entries(table)]
    for column in table.get("columns") or []:
        tests += [_build(path, schema, name, column["name"], entry) for entry in _entries(column)]
    return tests


def _entries(node: dict[str, Any]) -> list[Any]:
    return list(node.get("data_tests") or node.get("tests") or [])


def _build(path: Path, schema: str, table: str, column: str | None, entry: Any) -> ColumnTest:
    kind, args = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
    args = dict(args or {})
    where = f"{path.name}: {schema}.{table}" + (f".{column}" if column else "")
    allowed = COLUMN_TESTS if column else TABLE_TESTS
    if kind not in allowed:
        raise SchemaFileError(f"{where}: unknown test {kind!r}; use one of {', '.join(allowed)}")
    warn_only = (args.pop("config", None) or {}).get("severity", "error").lower() == "warn"
    if kind == "unique_combination_of_columns":
        columns = tuple(args.get("combination_of_columns") or ())
        if not columns:
            raise SchemaFileError(f"{where}: {kind} needs combination_of_columns")
        return ColumnTest(schema, table, kind, columns, warn_only=warn_only)
    assert column is not None
    if kind == "accepted_values":
        values = tuple(str(v) for v in args.get("values") or ())
        if not values:
            raise SchemaFileError(f"{where}: accepted_values needs values")
        return ColumnTest(schema, table, kind, (column,), values=values, warn_only=warn_only)
    if kind == "relationships":
        match = _RELATION.match(str(args.get("to", "")))
        if not match or not args.get("field"):
            raise SchemaFileError(
                f"{where}: relationships needs `to: ref('model')` or "
                "`to: source('halo', 'table')` and `field`"
            )
        to = (MODEL_SCHEMA, match["ref"]) if match["ref"] else (match["src"], match["table"])
        return ColumnTest(
            schema, table, kind, (column,), to=to, field=args["field"], warn_only=warn_only
        )
    return ColumnTest(schema, table, kind, (column,), warn_only=warn_only)
