"""What the policy asks of one request, wherever it comes from (the command, SQL, the
pipeline): an approval, an end date, no separation-of-duties conflict. A policy that cannot be
used stops grants and approvals, never revokes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from halo_pipeline.policy.document import PolicyError, load_policy
from halo_pipeline.policy.resolved import Resolved, resolve, role_of

NEEDS_APPROVAL = {"privileged": ("grant",), "all": ("grant", "create_account")}


@dataclass(frozen=True)
class Gate:
    resolved: Resolved | None
    broken: str | None = None
    """Why the policy cannot be used, when it cannot."""

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Gate:
        """The policy file (HALO_ACCESS_POLICY) resolved against the warehouse."""
        try:
            return cls(resolve(load_policy(), con))
        except PolicyError as error:
            return cls(None, str(error))
        except duckdb.CatalogException:  # no sync yet: nothing to resolve names against
            return cls(None, "no sync has run yet, so the policy's role names cannot be checked")

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
        self, approver: str, requested_by: str | None, grantee_email: str | None
    ) -> str | None:
        """Why `approver` may not approve this request; None when they may."""
        if self.blocked:
            return self.blocked
        if approver == (requested_by or "").lower():
            return f"{approver} asked for this request: nobody approves their own request."
        if approver == (grantee_email or "").lower():
            return f"{approver} would gain the access: nobody approves a grant to themselves."
        policy = self.resolved.policy if self.resolved else None
        if policy and policy.approvers and approver not in policy.approvers:
            return (f"{approver} is not an approver under {policy.path} "
                    f"(approvers: {', '.join(policy.approvers)}).")  # fmt: skip
        return None


def say_duration(length: timedelta) -> str:
    """8h, 15m, 90s: as the policy file and --for write it."""
    seconds = int(length.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
