"""The policy's role names resolved against the last sync (`halo.roles`), and written where
the `access.policy_violations` model reads them (`policy.rules`, `policy.roles`)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from halo_pipeline.policy.document import Policy, PolicyError
from halo_pipeline.warehouse import transaction


@dataclass(frozen=True)
class Resolved:
    policy: Policy
    names: dict[str, str]
    """Role GUID -> name, for every role the policy names."""
    privileged: frozenset[str]
    separation_of_duties: tuple[tuple[str, frozenset[str]], ...]

    def is_privileged(self, entitlement_id: str | None) -> bool:
        return role_of(entitlement_id) in self.privileged

    def conflict(self, held: set[str], granted: str) -> str | None:
        """The separation-of-duties rule that holding `held` and gaining `granted` (role
        GUIDs) breaks, said in words; None when it breaks none."""
        for name, roles in self.separation_of_duties:
            others = sorted(self.names[r] for r in (roles & held) - {granted})
            if granted in roles and others:
                return (
                    f"separation of duties rule {name!r}: nobody holds both "
                    f"{self.names[granted]!r} and {' and '.join(map(repr, others))}"
                )
        return None


def role_of(entitlement_id: str | None) -> str | None:
    """The role GUID of a role entitlement (`role:<guid>:assigned`), else None."""
    parts = (entitlement_id or "").split(":")
    return parts[1] if len(parts) == 3 and parts[0] == "role" else None


RoleRow = tuple[str, int | None, str]
"""A role as (GUID, integer id, name)."""


def synced_roles(con: duckdb.DuckDBPyConnection) -> list[RoleRow]:
    """The roles as the last sync saw them: what filing and reports resolve names against.
    Decisions at apply time resolve against the roles read from HaloITSM then instead."""
    return con.execute("SELECT role_id, role_int_id, name FROM halo.roles").fetchall()


def resolve(policy: Policy, rows: list[RoleRow], where: str = "the last sync") -> Resolved:
    """Every role the policy names, by name, GUID or integer id, among `rows`; PolicyError
    naming each one it does not know."""
    by_ref: dict[str, list[str]] = {}
    for role_id, int_id, name in rows:
        for ref in {str(role_id).casefold(), str(int_id), str(name).casefold()}:
            by_ref.setdefault(ref, []).append(role_id)
    names = {role_id: name for role_id, _, name in rows}
    problems = []

    def ids(place: str, refs: tuple[str, ...]) -> frozenset[str]:
        found = set()
        for ref in refs:
            matches = sorted(set(by_ref.get(ref.strip().casefold(), [])))
            if len(matches) != 1:
                state = "no role" if not matches else f"{len(matches)} roles"
                known = ", ".join(sorted(names.values()))
                problems.append(
                    f"{policy.path}: {place} names {ref!r}, which is {state} in {where} "
                    f"(roles: {known})"
                )
                continue
            found.add(matches[0])
        return frozenset(found)

    privileged = ids("privileged_roles", policy.privileged_roles)
    rules = tuple(
        (rule.name, ids(f"separation_of_duties {rule.name!r}", rule.roles))
        for rule in policy.separation_of_duties
    )
    if problems:
        raise PolicyError("\n".join(problems))
    return Resolved(policy, names, privileged, rules)


def write_tables(con: duckdb.DuckDBPyConnection, resolved: Resolved | None) -> None:
    """Replace `policy.rules` and `policy.roles` in one transaction; a policy that does not
    resolve leaves them empty, so no violation is reported from a policy nobody can read."""
    with transaction(con):
        con.execute("DELETE FROM policy.rules")
        con.execute("DELETE FROM policy.roles")
        if resolved is None:
            return
        policy = resolved.policy
        kinds = {rule.name: "separation_of_duties" for rule in policy.separation_of_duties}
        for rule in policy.rules:
            con.execute(
                "INSERT INTO policy.rules VALUES (?, ?, ?)",
                [rule, kinds.get(rule, rule), policy.severity_of(rule)],
            )
        roles = [("privileged", role) for role in resolved.privileged]
        roles += [(name, role) for name, ids in resolved.separation_of_duties for role in ids]
        for rule, role in sorted(roles):
            con.execute(
                "INSERT INTO policy.roles VALUES (?, ?, ?)", [rule, role, resolved.names[role]]
            )
