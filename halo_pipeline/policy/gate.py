"""What the policy asks of one request, wherever it comes from (the command, SQL, the
pipeline): an approval, an end date, no separation-of-duties conflict. A policy that cannot be
used stops grants and approvals, never revokes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline.policy.resolved import Resolved, RoleRow, resolve, role_of, synced_roles
from halo_pipeline.requests.identities import Person, normal, same_person
from halo_pipeline.requests.queue import Request

NEEDS_APPROVAL = {"privileged": ("grant",), "all": ("grant", "create_account")}


@dataclass(frozen=True)
class Gate:
    resolved: Resolved | None
    broken: str | None = None
    """Why the policy cannot be used, when it cannot."""

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Gate:
        """The policy file (HALO_ACCESS_POLICY) resolved against the last sync's roles: what
        filing and reports go by."""
        try:
            return cls.of(synced_roles(con))
        except duckdb.CatalogException:  # no sync yet: nothing to resolve names against
            return cls(None, "no sync has run yet, so the policy's role names cannot be checked")

    @classmethod
    def of(cls, roles: list[RoleRow], where: str = "the last sync") -> Gate:
        """The policy file resolved against `roles`: at apply time, the roles read from
        HaloITSM then, so a role renamed in the warehouse changes no decision."""
        try:
            return cls(resolve(load_policy(), roles, where))
        except PolicyError as error:
            return cls(None, str(error))

    @property
    def blocked(self) -> str | None:
        """Why grants and approvals wait, if they do."""
        if self.broken is None:
            return None
        return f"The access policy cannot be used, so grants and approvals wait: {self.broken}"

    def needs_approval(self, action: str, entitlement_id: str | None) -> bool:
        if self.resolved is None:  # unusable: grants wait anyway; no policy at all: none
            return self.broken is not None and action in NEEDS_APPROVAL["all"]
        required_for = self.resolved.policy.approval_required_for
        if action not in NEEDS_APPROVAL.get(required_for, ()):
            return False
        return required_for == "all" or self.resolved.is_privileged(entitlement_id)

    def duration_problem(
        self, action: str, entitlement_id: str | None, ends: datetime | timedelta | None,
        now: datetime,
    ) -> str | None:  # fmt: skip
        """Why a grant's duration (an end time, or a length from when it is applied) is
        refused; None when it is within the policy."""
        if action != "grant" or self.resolved is None:
            return None
        longest = self.resolved.policy.max_privileged_duration
        if longest is None or not self.resolved.is_privileged(entitlement_id):
            return None
        name = self.resolved.names[role_of(entitlement_id) or ""]
        if ends is None:
            return (f"{name!r} is a privileged role: the policy grants it for at most "
                    f"{say_duration(longest)}. Ask with --for or --until.")  # fmt: skip
        length = ends if isinstance(ends, timedelta) else ends - now
        if length > longest:
            return (f"{name!r} is a privileged role: the policy grants it for at most "
                    f"{say_duration(longest)}, not {say_duration(length)}.")  # fmt: skip
        return None

    def conflict(self, held: set[str], entitlement_id: str | None) -> str | None:
        role = role_of(entitlement_id)
        if self.resolved is None or role is None:
            return None
        return self.resolved.conflict(held, role)

    def approval_problem(
        self, approver: Person, request: Request, requester: int | None
    ) -> str | None:
        """Why `approver` (a HaloITSM agent) may not approve or deny `request`; None when they
        may. `requester` is the agent the requester's email belongs to, if any: people are
        compared as agents, and by normalised email besides."""
        if self.blocked:
            return self.blocked
        if same_person(approver, requester, request.requested_by):
            return f"{approver.label} asked for this request: nobody approves their own request."
        grantee_email = request.account_email if request.action == "create_account" else None
        if same_person(approver, request.agent_id, grantee_email):
            return (f"{approver.label} would gain the access: nobody approves a grant to "
                    "themselves.")  # fmt: skip
        policy = self.resolved.policy if self.resolved else None
        if policy and policy.approvers and approver.email not in map(normal, policy.approvers):
            return (f"{approver.label} is not an approver under {policy.path} "
                    f"(approvers: {', '.join(policy.approvers)}).")  # fmt: skip
        return None


def say_duration(length: timedelta) -> str:
    """8h, 15m, 90s: as the policy file and --for write it."""
    seconds = int(length.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
