"""The dbt-like models in `dbt_like_sql/`: one `.sql` file per table or view in `access`.

A model is a SELECT rendered with jinja2. `{{ ref('name') }}` names another model,
`{{ source('halo', 'table') }}` a table the sync writes, and `{{ config(materialized='view') }}`
(or `'table'`, the default being dbt's `view`) how it is stored. The calls are recorded while
rendering, which is where each model's dependencies, and so Dagster's lineage, come from.
A leading block of `--` comments is the model's description. Plain Python: no Dagster here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from halo_pipeline.environment import FromEnvironment
from halo_pipeline.sql_models.schema_tests import (
    ColumnTest,
    SchemaDocs,
    SchemaFileError,
    load_schema_docs,
    quote,
)
from halo_pipeline.warehouse import transaction
from halo_pipeline.warehouse.halo_tables import finish_loaded_syncs
from halo_pipeline.warehouse.registry import MODEL_SCHEMA, MODEL_SOURCES

PROJECT_MODELS_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"


class ModelSettings(FromEnvironment):
    sql_models_dir: Path = PROJECT_MODELS_DIR
    """HALO_SQL_MODELS_DIR: an installed package (a container image) points at the models."""


def models_dir() -> Path:
    """HALO_SQL_MODELS_DIR, or the project's dbt_like_sql/."""
    return ModelSettings.load().sql_models_dir


MATERIALIZATIONS = ("view", "table")
# ConductorOne's entitlement slugs, so the ids line up with a baton sync of the same tenant.
ENTITLEMENT_SLUGS = {"role": "assigned", "team": "member"}
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class SqlModelError(ValueError):
    """A model file cannot be loaded; the message names the file."""


@dataclass(frozen=True)
class SqlModel:
    name: str
    path: Path
    sql: str
    materialized: str
    refs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    description: str

    @property
    def relation(self) -> str:
        return f"{MODEL_SCHEMA}.{quote(self.name)}"

    @property
    def checksum(self) -> str:
        """Changes whenever the rendered SQL or its materialization does: Dagster's code version."""
        return hashlib.sha256(f"{self.materialized}\n{self.sql}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SqlProject:
    directory: Path
    models: tuple[SqlModel, ...]
    """In dependency order: every model comes after the models it refers to."""
    docs: SchemaDocs
    """`schema.yml`: the column tests, and the descriptions of tables and columns."""

    def model(self, name: str) -> SqlModel:
        return next(model for model in self.models if model.name == name)

    def column_tests(self) -> list[ColumnTest]:
        """The tests of `schema.yml`, each on a model of this project or a synced table."""
        known = {(MODEL_SCHEMA, model.name) for model in self.models} | MODEL_SOURCES
        for test in self.docs.tests:
            for relation in ((test.schema, test.table), test.to):
                if relation is not None and relation not in known:
                    raise SchemaFileError(
                        f"{self.directory / 'schema.yml'}: a test refers to "
                        f"{'.'.join(relation)}, which is neither a model in "
                        f"{self.directory.name}/ nor a table the pipeline writes"
                    )
        return list(self.docs.tests)

    def column_descriptions(self, schema: str, table: str) -> dict[str, str]:
        """What `schema.yml` says of each column of the table or model."""
        return self.docs.columns.get((schema, table), {})

    def table_description(self, schema: str, table: str) -> str | None:
        """What `schema.yml` says of a table the pipeline writes."""
        return self.docs.tables.get((schema, table))


def load_project(
    directory: Path | None = None, sources: frozenset[tuple[str, str]] = MODEL_SOURCES
) -> SqlProject:
    """Every model in `directory`, checked: refs name models, sources name tables the sync
    writes, and no cycles."""
    directory = directory or models_dir()
    paths = sorted(directory.glob("*.sql"))
    if not paths:
        raise SqlModelError(
            f"No SQL models in {directory}: set HALO_SQL_MODELS_DIR to the project's "
            "dbt_like_sql folder."
        )
    models = {
        model.name: model
        for model in (_render(path, path.read_text(encoding="utf-8")) for path in paths)
    }
    for model in models.values():
        for ref in model.refs:
            if ref not in models:
                raise SqlModelError(
                    f"{model.path}: ref({ref!r}) names no model; the models are "
                    f"{', '.join(sorted(models))}."
                )
        for source in model.sources:
            if source not in sources:
                known = ", ".join(f"{s}.{t}" for s, t in sorted(sources))
                raise SqlModelError(
                    f"{model.path}: source{source!r} is not a table the pipeline writes ({known})."
                )
    graph = TopologicalSorter({name: set(model.refs) for name, model in models.items()})
    try:
        order = list(graph.static_order())
    except CycleError as error:
        cycle = error.args[1]
        files = " -> ".join(str(models[name].path.name) for name in cycle)
        raise SqlModelError(
            f"{directory}: the models refer to each other in a cycle: {files}"
        ) from None
    docs = load_schema_docs(directory / "schema.yml")
    return SqlProject(directory, tuple(models[name] for name in order), docs)


def build_model(con: duckdb.DuckDBPyConnection, model: SqlModel) -> None:
    """Create or replace the model's table or view, in one transaction."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {MODEL_SCHEMA}")
    with transaction(con):
        existing = con.execute(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [MODEL_SCHEMA, model.name],
        ).fetchall()
        # DuckDB will not replace a view with a table or back: drop the other kind first.
        if existing and (existing[0][0] == "VIEW") != (model.materialized == "view"):
            kind = "VIEW" if existing[0][0] == "VIEW" else "TABLE"
            con.execute(f"DROP {kind} {model.relation}")
        con.execute(
            f"CREATE OR REPLACE {model.materialized.upper()} {model.relation} AS\n{model.sql}"
        )


def build_models(con: duckdb.DuckDBPyConnection, project: SqlProject) -> None:
    """Every model, in dependency order: what `halo_sync_job` does after a sync, without Dagster.
    The syncs the models now reflect are then `succeeded`."""
    for model in project.models:
        build_model(con, model)
    finish_loaded_syncs(con)


def entitlement_slug(resource_type: str) -> str:
    """`'assigned'` or `'member'`, as a SQL literal."""
    if resource_type not in ENTITLEMENT_SLUGS:
        raise SqlModelError(
            f"entitlement ids exist for {', '.join(ENTITLEMENT_SLUGS)}, not {resource_type!r}"
        )
    return f"'{ENTITLEMENT_SLUGS[resource_type]}'"


def entitlement_id(resource_type: str, id_column: str) -> str:
    """The SQL of an entitlement id: `role:<role_id>:assigned`, `team:<team_id>:member`. The one
    place these ids are built; Python reads them from access.entitlements."""
    slug = entitlement_slug(resource_type).strip("'")
    return f"'{resource_type}:' || {id_column} || ':{slug}'"


def grant_id(entitlement_column: str, agent_column: str) -> str:
    """The SQL of a grant id: `<entitlement_id>:agent:<agent_id>`."""
    return f"{entitlement_column} || ':agent:' || {agent_column}"


@cache
def _render(path: Path, text: str) -> SqlModel:
    """A model file rendered, once per content: the code location, each run and each command
    load the project."""
    name = path.stem
    if not _NAME.match(name):
        raise SqlModelError(
            f"{path}: a model's file name becomes its table name, so it must be lower-case "
            "letters, digits and underscores"
        )
    refs: list[str] = []
    sources: list[tuple[str, str]] = []
    config: dict[str, Any] = {}

    def ref(model: str) -> str:
        refs.append(model)
        return f"{MODEL_SCHEMA}.{quote(model)}"

    def source(schema: str, table: str) -> str:
        sources.append((schema, table))
        return f"{quote(schema)}.{quote(table)}"

    def set_config(**options: Any) -> str:
        config.update(options)
        return ""

    try:
        sql = _JINJA.from_string(text).render(
            ref=ref,
            source=source,
            config=set_config,
            entitlement_id=entitlement_id,
            entitlement_slug=entitlement_slug,
            grant_id=grant_id,
        )
    except jinja2.TemplateSyntaxError as error:
        raise SqlModelError(f"{path}:{error.lineno}: {error.message}") from None
    except (jinja2.UndefinedError, TypeError, SqlModelError) as error:
        raise SqlModelError(f"{path}: {error}") from None
    materialized = config.get("materialized", "view")
    if materialized not in MATERIALIZATIONS:
        raise SqlModelError(
            f"{path}: materialized={materialized!r}; use one of {', '.join(MATERIALIZATIONS)}"
        )
    return SqlModel(
        name=name,
        path=path,
        sql=sql.strip().rstrip(";"),
        materialized=materialized,
        refs=tuple(dict.fromkeys(refs)),
        sources=tuple(dict.fromkeys(sources)),
        description=_description(text),
    )


def _description(text: str) -> str:
    lines = []
    for line in text.lstrip().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines).strip()
