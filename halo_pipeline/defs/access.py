"""The `access` stage: every model in `dbt_like_sql/` built in one step, as dagster-dbt's
`@dbt_assets` builds a dbt project: an output per model, subsettable, the model's column tests
run inside the step and reported as that model's asset checks."""

from collections.abc import Iterator

import dagster as dg

from halo_pipeline.defs.failures import said_plainly
from halo_pipeline.defs.reporting import (
    OWNERS,
    by_relation,
    check_results,
    check_specs,
    table_metadata,
)
from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline.sql_models.project import SqlModel, SqlProject, build_model
from halo_pipeline.warehouse.halo_tables import finish_loaded_syncs
from halo_pipeline.warehouse.registry import MODEL_SCHEMA


def model_spec(model: SqlModel, project: SqlProject) -> dg.AssetSpec:
    """Lineage from the model's own `ref` and `source` calls: nothing declared by hand."""
    deps = [dg.AssetKey([MODEL_SCHEMA, ref]) for ref in model.refs]
    deps += [dg.AssetKey([schema, table]) for schema, table in model.sources]
    return dg.AssetSpec(
        [MODEL_SCHEMA, model.name],
        deps=deps,
        description=model.description or None,
        group_name=MODEL_SCHEMA,
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        code_version=model.checksum,
        # A model whose parents were not built in this run is skipped, not failed.
        skippable=True,
        metadata={
            "dagster/table_name": f"{MODEL_SCHEMA}.{model.name}",
            "materialized": model.materialized,
            "sql_file": str(model.path.relative_to(project.directory.parent)),
            "sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```"),
        },
    )


def access_definitions(project: SqlProject) -> dg.Definitions:
    tests = by_relation(test for test in project.column_tests() if test.schema == MODEL_SCHEMA)

    @dg.multi_asset(
        name="access_models",
        specs=[model_spec(model, project) for model in project.models],
        check_specs=check_specs(test for group in tests.values() for test in group),
        can_subset=True,
        pool="duckdb",
    )
    @said_plainly
    def access_models(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Builds the selected models of dbt_like_sql/ from the `halo` tables, in dependency
        order, each in its own transaction, then runs their column tests. When every model
        was rebuilt, the syncs they now reflect are marked `succeeded`."""
        selected = context.selected_asset_keys
        with warehouse.get_connection() as con:
            for model in project.models:  # dependency order
                key = dg.AssetKey([MODEL_SCHEMA, model.name])
                if key in selected:
                    build_model(con, model)
                    described = project.column_descriptions(MODEL_SCHEMA, model.name)
                    view = model.materialized == "view"
                    yield dg.MaterializeResult(
                        asset_key=key,
                        metadata=table_metadata(con, model.relation, described, view=view),
                    )
                relation = (MODEL_SCHEMA, model.name)
                yield from check_results(
                    con, relation, tests.get(relation, []), context.selected_asset_check_keys
                )
            # Only a rebuild of every model brings access.* level with the halo tables.
            if len(selected) == len(project.models) and (finished := finish_loaded_syncs(con)):
                context.log.info(f"syncs {finished} succeeded: access.* is rebuilt from them")

    return dg.Definitions(assets=[access_models])
