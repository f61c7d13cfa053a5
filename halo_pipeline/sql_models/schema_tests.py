"""Column tests from a dbt-style `schema.yml`, as SQL that selects the rows that fail.

Supported, with dbt's meaning: `unique`, `not_null`, `accepted_values` (`values`),
`relationships` (`to: ref('model')` or `source('halo', 'table')`, `field`), and dbt_utils'
`unique_combination_of_columns` at table level. `config: {severity: warn}` makes a test warn
instead of fail. Plain Python: the Dagster layer turns each test into an asset check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from halo_pipeline.warehouse.registry import MODEL_SCHEMA

COLUMN_TESTS = ("unique", "not_null", "accepted_values", "relationships")
TABLE_TESTS = ("unique_combination_of_columns",)
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


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TestEntry = str | dict[str, dict[str, Any] | None]
"""`unique`, or `{accepted_values: {values: [...]}}`: a test's name, alone or with arguments."""


class _Column(_Doc):
    name: str
    description: str = ""
    tests: tuple[TestEntry, ...] = ()
    data_tests: tuple[TestEntry, ...] = ()


class _Table(_Doc):
    name: str
    description: str = ""
    columns: tuple[_Column, ...] = ()
    tests: tuple[TestEntry, ...] = ()
    data_tests: tuple[TestEntry, ...] = ()


class _Source(_Doc):
    name: str
    description: str = ""
    tables: tuple[_Table, ...] = ()


class _SchemaFile(_Doc):
    version: Literal[2]
    sources: tuple[_Source, ...] = ()
    models: tuple[_Table, ...] = ()


@dataclass(frozen=True)
class SchemaDocs:
    """What `schema.yml` says: the column tests, and the descriptions of tables and columns."""

    tests: tuple[ColumnTest, ...]
    tables: dict[tuple[str, str], str]
    """Each (schema, table)'s description; models are described by their SQL's comment."""
    columns: dict[tuple[str, str], dict[str, str]]
    """Each (schema, table)'s column descriptions, shown beside each column in the Dagster UI."""


def load_schema_docs(path: Path) -> SchemaDocs:
    """`schema.yml`, validated once per content (the definitions, each run and each command
    ask for it): a file that does not exist describes and tests nothing."""
    if not path.exists():
        return SchemaDocs((), {}, {})
    return _parse(path, path.read_text(encoding="utf-8"))


@cache
def _parse(path: Path, text: str) -> SchemaDocs:
    try:
        doc = _SchemaFile.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as error:
        raise SchemaFileError(f"{path}: not YAML: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SchemaFileError(f"{path}: {where}: {first['msg']}") from None
    tables = [(source.name, table) for source in doc.sources for table in source.tables]
    tables += [(MODEL_SCHEMA, model) for model in doc.models]
    return SchemaDocs(
        tests=tuple(test for schema, table in tables for test in _table_tests(path, schema, table)),
        tables={(schema, t.name): t.description.strip() for schema, t in tables if t.description},
        columns={
            (schema, t.name): {c.name: c.description.strip() for c in t.columns if c.description}
            for schema, t in tables
        },
    )


def _table_tests(path: Path, schema: str, table: _Table) -> list[ColumnTest]:
    tests = [_build(path, schema, table.name, None, entry) for entry in _entries(table)]
    for column in table.columns:
        tests += [_build(path, schema, table.name, column.name, e) for e in _entries(column)]
    return tests


def _entries(node: _Table | _Column) -> tuple[TestEntry, ...]:
    return node.data_tests or node.tests


def _build(path: Path, schema: str, table: str, column: str | None, entry: TestEntry) -> ColumnTest:
    if isinstance(entry, dict) and len(entry) != 1:
        raise SchemaFileError(f"{path.name}: {schema}.{table}: a test is one name, not {entry}")
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
