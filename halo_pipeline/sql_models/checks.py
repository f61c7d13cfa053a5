"""`schema.yml` column tests as Dagster asset checks, one multi-check per table or model."""

from collections import defaultdict
from collections.abc import Iterable, Iterator

import dagster as dg

from halo_pipeline.resources import DuckDBWarehouse
from halo_pipeline.sql_models.schema_tests import ColumnTest

SAMPLE_ROWS = 5


def build_column_checks(tests: Iterable[ColumnTest]) -> list[dg.AssetChecksDefinition]:
    by_relation: dict[tuple[str, str], list[ColumnTest]] = defaultdict(list)
    for test in tests:
        by_relation[(test.schema, test.table)].append(test)
    return [_checks_for(schema, table, group) for (schema, table), group in by_relation.items()]


def _checks_for(schema: str, table: str, tests: list[ColumnTest]) -> dg.AssetChecksDefinition:
    key = dg.AssetKey([schema, table])
    specs = [
        dg.AssetCheckSpec(test.name, asset=key, description=test.description) for test in tests
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"{schema}_{table}_column_tests",
        description=f"Column tests from dbt_like_sql/schema.yml for {schema}.{table}.",
        can_subset=True,
    )
    def column_tests(
        context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse
    ) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        with warehouse.get_connection(read_only=True) as con:
            for test in tests:
                if dg.AssetCheckKey(key, test.name) not in selected:
                    continue
                sql, params = test.failing_rows_sql()
                failing = con.execute(sql, params).df()
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=test.name,
                    passed=failing.empty,
                    severity=(
                        dg.AssetCheckSeverity.WARN
                        if test.warn_only
                        else dg.AssetCheckSeverity.ERROR
                    ),
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

    return column_tests
