"""Approvals given in HaloITSM's own approval process (`approval.via: halo`): read from the
request's ticket just before the change is applied, so the warehouse's copy is a record and
never the authority.

Each `TicketApproval` row is one approver's answer (a step, a vote, a delegation, an
override). What its `result` number means is not documented, so only HALO_APPROVAL_RESULTS
says; a row whose result it does not name counts for nothing. Any rejected row denies the
request. An approval counts only when no row still waits, and at least one approved row was
given (a real `dateapproved`), not by an admin override, by an agent the policy allows (and,
when delegated, whose delegator it allows too), and not by the application's own agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from halo_pipeline.halo import HaloClient, HaloConfigError, HaloNotFoundError
from halo_pipeline.halo.models import TicketApproval, is_empty_date
from halo_pipeline.policy.gate import Gate
from halo_pipeline.requests.identities import Person, normal, person
from halo_pipeline.requests.queue import Request
from halo_pipeline.requests.rules import RequestRefused

ApprovalResults = dict[int, str]
"""HALO_APPROVAL_RESULTS: each result number -> awaiting, approved or rejected."""


@dataclass(frozen=True)
class Approved:
    row: TicketApproval
    by: Person


@dataclass(frozen=True)
class Rejected:
    row: TicketApproval

    @property
    def why(self) -> str:
        note = f": {self.row.approver_note}" if self.row.approver_note else ""
        return f"rejected in HaloITSM by {self.row.agent_name} (agent {self.row.agent_id}){note}"


@dataclass
class HaloApprovers:
    """Who may approve, as HaloITSM agents, looked up once per run."""

    client: HaloClient
    gate: Gate
    results: ApprovalResults | None
    _me: int | None = None
    _listed: set[int] | None = None
    _people: dict[int, Person | None] = field(default_factory=dict)

    def check_setup(self) -> None:
        """`via: halo` cannot approve anything without knowing what `result` means."""
        if self.results is None:
            raise HaloConfigError(
                "The access policy takes approvals from HaloITSM (approval.via), but "
                "HALO_APPROVAL_RESULTS is not set, so no approval can count: set it to what "
                'each TicketApproval result means, e.g. {"0": "awaiting", "1": "approved", '
                '"2": "rejected"} (`halo-pipeline doctor` lists the results it sees).'
            )

    def verdict(self, request: Request, requesters: set[int]) -> Approved | Rejected | str:
        """The answer HaloITSM's approval process gives on the request's ticket now: approved
        (by whom), rejected, or why it still waits."""
        assert self.results is not None
        if request.ticket_id is None:
            return "it waits for its ticket, where HaloITSM's approvers answer"
        rows = self.client.ticket_approvals(request.ticket_id)
        if not rows:
            return f"no approval on ticket {request.ticket_id} yet"
        outcomes = [(row, self.results.get(row.result if row.result is not None else -1))
                    for row in rows]  # fmt: skip
        unknown = [row for row, outcome in outcomes if outcome is None]
        if unknown:
            row = unknown[0]
            return (
                f"ticket {request.ticket_id}: result {row.result} (row {row.seq}) is not in "
                "HALO_APPROVAL_RESULTS, so nothing counts"
            )
        for row, outcome in outcomes:
            if outcome == "rejected":
                return Rejected(row)
        if any(outcome == "awaiting" for _, outcome in outcomes):
            return f"approvers on ticket {request.ticket_id} have not all answered"
        reasons = []
        for row, _ in outcomes:
            problem = self._problem(row, request, requesters)
            if problem is None:
                return Approved(row, self._person(row.agent_id or 0))  # type: ignore[arg-type]
            reasons.append(f"the approval by {row.agent_name} (agent {row.agent_id}) does not "
                           f"count: {problem}")  # fmt: skip
        return "; ".join(reasons)

    def _problem(self, row: TicketApproval, request: Request, requesters: set[int]) -> str | None:
        if row.admin_overridden:
            return "it was an administrator's override, not an approver's answer"
        if is_empty_date(row.dateapproved):
            return "it carries no date it was given"
        if row.agent_id is None:
            return "it names no agent"
        if row.agent_id == self._my_id():
            return "it was given by this application's own agent"
        if row.agent_id in requesters:
            return "they asked for this request: nobody approves their own request"
        if row.agent_id == request.agent_id:
            return "they would gain the access: nobody approves a grant to themselves"
        for agent_id in (row.agent_id, row.delegated_by_uid):
            if agent_id is None:
                continue
            who = self._person(agent_id)
            if who is None:
                return f"agent {agent_id} is not an enabled HaloITSM agent"
            listed = self._listed_ids()
            if listed is not None and agent_id not in listed:
                role = "the delegating approver" if agent_id != row.agent_id else "they"
                return f"{role} ({who.label}) is not on the policy's approvers"
        return None

    def _my_id(self) -> int:
        if self._me is None:
            self._me = self.client.me().id
        return self._me

    def _listed_ids(self) -> set[int] | None:
        """The policy's approvers as agent ids; None when the policy names none (any enabled
        agent other than the people concerned may approve)."""
        policy = self.gate.resolved.policy if self.gate.resolved else None
        if policy is None or not policy.approvers:
            return None
        if self._listed is None:
            ids = set()
            for email in policy.approvers:
                try:
                    ids.add(person(self.client, email, "The approver").agent_id)
                except RequestRefused:
                    continue  # a listed email with no enabled agent approves nothing
            self._listed = ids
        return self._listed

    def _person(self, agent_id: int) -> Person | None:
        if agent_id not in self._people:
            try:
                agent = self.client.get_agent(agent_id)
            except HaloNotFoundError:
                agent = None
            self._people[agent_id] = (
                Person(agent.id, agent.name or "", normal(agent.email))
                if agent is not None and not agent.isdisabled
                else None
            )
        return self._people[agent_id]
