"""The `policy` stage: the access policy file resolved into the warehouse on every sync, a
check per rule on `access/policy_violations`, and the sensor that files the revokes the policy
asks for (ended time-bound grants; leavers, with `leavers.auto_revoke`)."""

import re
from collections.abc import Iterator

import dagster as dg

from halo_pipeline.defs.failures import said_plainly
from halo_pipeline.defs.reporting import OWNERS, markdown, table_metadata
from halo_pipeline.defs.resources import DuckDBWarehouse
from halo_pipeline.defs.ticks import skips_when_busy
from halo_pipeline.policy.document import Policy, PolicyError, load_policy
from halo_pipeline.policy.gate import Gate
from halo_pipeline.policy.resolved import resolve, synced_roles, write_tables
from halo_pipeline.policy.revokes import file_policy_revokes, revokes_due
from halo_pipeline.requests.signing import keyring_or_none
from halo_pipeline.sql_models.project import SqlProject

RULES_KEY = dg.AssetKey(["policy", "rules"])
ROLES_KEY = dg.AssetKey(["policy", "roles"])
VIOLATIONS_KEY = dg.AssetKey(["access", "policy_violations"])
RESOLVES = "policy_resolves"
NOTHING_DUE = "No grant has ended and no leaver's access is due for revoking."


def check_name(rule: str) -> str:
    """A rule as a Dagster check name (letters, digits and underscores)."""
    return re.sub(r"\W", "_", rule)


def access_policy_asset(project: SqlProject) -> dg.AssetsDefinition:
    """The policy file resolved into `policy.rules` and `policy.roles`, described by schema.yml."""

    def table(key: dg.AssetKey) -> dg.AssetSpec:
        return dg.AssetSpec(
            key,
            deps=[dg.AssetKey(["halo", "roles"])],
            description=project.table_description(*key.path),
            group_name="policy",
            kinds={"duckdb", "yaml"},
            owners=OWNERS,
            metadata={"dagster/table_name": ".".join(key.path)},
        )

    @dg.multi_asset(
        name="access_policy",
        specs=[table(RULES_KEY), table(ROLES_KEY)],
        check_specs=[
            dg.AssetCheckSpec(
                RESOLVES,
                asset=RULES_KEY,
                description="The policy file reads and every role it names is in the last sync. "
                "While it fails, grants and approvals wait; syncs and revokes go on.",
            )  # fmt: skip
        ],
        can_subset=False,
        pool="duckdb",
    )
    @said_plainly
    def access_policy(
        warehouse: DuckDBWarehouse,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Reads the policy file when the run starts and resolves its role names against the
        `halo` tables just synced. A policy that does not resolve leaves the tables empty and
        fails its check; it never fails the sync."""
        with warehouse.get_connection() as con:
            try:
                resolved, problem = resolve(load_policy(), synced_roles(con)), None
            except PolicyError as error:
                resolved, problem = None, str(error)
            write_tables(con, resolved)
            for key in (RULES_KEY, ROLES_KEY):
                yield dg.MaterializeResult(
                    asset_key=key,
                    metadata=table_metadata(
                        con, ".".join(key.path), project.column_descriptions(*key.path)
                    ),
                )
        yield dg.AssetCheckResult(
            asset_key=RULES_KEY,
            check_name=RESOLVES,
            passed=problem is None,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"problem": problem or ""},
        )

    return access_policy


def violation_checks(policy: Policy) -> dg.AssetChecksDefinition | None:
    """One check per rule of the policy (as the file said when the definitions loaded) on
    access/policy_violations, failing with the agents that break it."""
    if not policy.rules:
        return None
    by_name = {check_name(rule): rule for rule in policy.rules}

    @dg.multi_asset_check(
        name="policy_checks",
        specs=[
            dg.AssetCheckSpec(
                name,
                asset=VIOLATIONS_KEY,
                description=f"Nobody breaks the policy rule {rule!r} "
                f"(severity {policy.severity_of(rule)}).",
            )  # fmt: skip
            for name, rule in by_name.items()
        ],
        can_subset=True,
        pool="duckdb",
    )
    def policy_checks(
        context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse
    ) -> Iterator[dg.AssetCheckResult]:
        """Reads access.policy_violations once, a result per rule."""
        with warehouse.get_connection(read_only=True) as con:
            cursor = con.execute(
                "SELECT rule, agent_id, agent_name, detail, since FROM access.policy_violations "
                "ORDER BY rule, agent_id"
            )
            rows, description = cursor.fetchall(), cursor.description
        for key in context.selected_asset_check_keys:
            rule = by_name[key.name]
            broken = [row for row in rows if row[0] == rule]
            yield dg.AssetCheckResult(
                asset_key=VIOLATIONS_KEY,
                check_name=key.name,
                passed=not broken,
                severity=dg.AssetCheckSeverity(policy.severity_of(rule).upper()),
                metadata={
                    "violations": len(broken),
                    "agents": [row[1] for row in broken],
                    "rows": markdown(broken, description),
                },
            )

    return policy_checks


@dg.sensor(minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
@skips_when_busy
def grant_expiry_sensor(
    context: dg.SensorEvaluationContext, warehouse: DuckDBWarehouse
) -> dg.SkipReason:
    """Files a revoke request (requested_by policy:expiry) for each time-bound grant that has
    ended and, with `leavers.auto_revoke`, for what disabled agents hold (policy:leaver); the
    provisioning sensor then starts provisioning_job for them. Each is filed once, here or by
    the next provisioning run, whichever comes first."""
    # Read-only first, without waiting: most ticks find nothing due, and a writer would keep
    # `halo-pipeline query` out for the moment it is open.
    ring = keyring_or_none(context.log)
    with warehouse.get_connection(read_only=True, wait_s=0) as con:
        due = revokes_due(con, Gate.load(con), ring)
    if not due:
        return dg.SkipReason(NOTHING_DUE)
    with warehouse.get_connection(wait_s=1) as con:
        filed = file_policy_revokes(con, Gate.load(con), ring, context.log)
    if not filed:
        return dg.SkipReason(NOTHING_DUE)
    said = f"Filed revoke requests {filed.expiries} (expired) and {filed.leavers} (leavers)."
    context.log.info(said)
    return dg.SkipReason(said)


def policy_definitions(project: SqlProject) -> dg.Definitions:
    """Reads the policy file's structure (no warehouse): a malformed one stops the definitions
    from loading, with its file, line and problem."""
    try:
        policy = load_policy()
    except PolicyError as error:
        raise PolicyError(f"The access policy cannot be loaded:\n{error}") from None
    checks = violation_checks(policy)
    return dg.Definitions(
        assets=[access_policy_asset(project)],
        asset_checks=[checks] if checks else [],
        sensors=[grant_expiry_sensor],
    )
