"""Each model in `dbt_like_sql/` as a Dagster asset keyed `access/<name>`.

Dependencies come from the model's own `ref` and `source` calls, so the lineage in the UI runs
from the `halo` tables to every answer with nothing declared by hand.
"""

import dagster as dg

from halo_pipeline.assets.metadata import OWNERS, table_metadata
from halo_pipeline.resources import DuckDBWarehouse
from halo_pipeline.sql_models.project import SqlModel, SqlProject, build_model
from halo_pipeline.sql_models.schema_tests import MODEL_SCHEMA


def build_model_assets(project: SqlProject) -> list[dg.AssetsDefinition]:
    return [_model_asset(model, project) for model in project.models]


def _model_asset(model: SqlModel, project: SqlProject) -> dg.AssetsDefinition:
    deps = [dg.AssetKey([MODEL_SCHEMA, ref]) for ref in model.refs]
    deps += [dg.AssetKey([schema, table]) for schema, table in model.sources]

    @dg.asset(
        key=[MODEL_SCHEMA, model.name],
        deps=deps,
        description=model.description or None,
        group_name=MODEL_SCHEMA,
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        pool="duckdb",
        code_version=model.checksum,
        metadata={
            "dagster/table_name": f"{MODEL_SCHEMA}.{model.name}",
            "materialized": model.materialized,
            "sql_file": str(model.path.relative_to(project.directory.parent)),
            "sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```"),
        },
    )
    def sql_model(warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            build_model(con, model)
            return dg.MaterializeResult(metadata=table_metadata(con, model.relation))

    return sql_model
