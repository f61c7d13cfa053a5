"""`halo-pipeline doctor`: what a HaloITSM instance speaks, read without writing anything.

A first-time user runs it against a real tenant before the first sync. It reads a token, one
agent page, one agent's detail, roles, teams, ticket types and statuses, and reports each of
the variants the client copes with (halo_api.md lists them), and what to set where the
instance and the settings do not fit. Plain Python: the command only prints its findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from halo_pipeline.doctor.finding import Finding
from halo_pipeline.doctor.memberships import memberships
from halo_pipeline.doctor.roles_age import last_sync
from halo_pipeline.doctor.service_desk import api_tickets, approvals, request_tickets
from halo_pipeline.halo import HaloClient
from halo_pipeline.halo.client import UNASSIGNED_AGENT_ID
from halo_pipeline.halo.models import MEMBERSHIP_FLAGS, Agent, AgentRecord, TicketType
from halo_pipeline.halo.paging import LIST_KEYS
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.requests.ticketing import DEFAULT_TICKET_TYPE, find_ticket_type


def diagnose(
    client: HaloClient, provisioning: ProvisioningSettings, warehouse: Path | None = None
) -> list[Finding]:
    settings = client.settings
    roles = client.list_roles()
    findings = [Finding("token", f"issued by {settings.token_url} (scope {settings.scope!r})")]
    page = client.agent_page(1)
    findings.append(_envelope(page, settings.page_size))
    rows = _rows(page)
    findings += _list_rows(rows)
    agent_id = next(
        (r["id"] for r in rows if isinstance(r, dict) and r.get("id") != UNASSIGNED_AGENT_ID),
        None,
    )
    if agent_id is not None:
        findings.append(_detail(client, int(agent_id)))
    teams = client.list_teams()
    findings.append(Finding("roles and teams", f"{len(roles)} roles, {len(teams)} teams"))
    findings += memberships(client, _agents(rows), _listed(page, rows), roles, teams)
    types = client.list_ticket_types()
    findings.append(_ticket_type(types, provisioning))
    findings.append(_statuses(client, provisioning))
    if warehouse is not None:
        findings.append(api_tickets(warehouse))
        findings += last_sync(warehouse, settings.max_requests_per_5_min)
    tickets, found = request_tickets(client, types, provisioning)
    findings += found
    findings += approvals(client, provisioning, tickets)
    findings.append(_retry_after(client.http.rate_limited))
    findings.append(_budget(client))
    return findings


def render(findings: Sequence[Finding]) -> str:
    width = max(len(f.topic) for f in findings) + 2
    lines = []
    for finding in findings:
        lines.append(f"  {finding.topic + ' ':.<{width}} {finding.seen}")
        if finding.advice:
            lines.append(f"  {'':<{width}} -> {finding.advice}")
    return "\n".join(lines)


def _rows(page: Any) -> list[Any]:
    if isinstance(page, list):
        return page
    if isinstance(page, dict):
        for value in page.values():
            if isinstance(value, list):
                return value
    return []


def _envelope(page: Any, page_size: int) -> Finding:
    if isinstance(page, list):
        if len(page) > page_size:
            return Finding(
                "agent list", "one bare array of every agent: this version ignores paging"
            )
        return Finding("agent list", "paged, each page a bare array (no record_count)")
    if not isinstance(page, dict):
        return Finding("agent list", f"a {type(page).__name__}", "this is not Halo's agent list: "
                       "check HALO_BASE_URL")  # fmt: skip
    lists = [key for key, value in page.items() if isinstance(value, list)]
    key = next((k for k in LIST_KEYS if k in lists), lists[0] if len(lists) == 1 else None)
    if key is None:
        return Finding("agent list", f"an object with keys {sorted(page)}",
                       "no list of agents in it: the sync cannot read this instance")  # fmt: skip
    count = (
        "record_count sent" if "record_count" in page else "no record_count (pages read in turn)"
    )
    return Finding("agent list", f"paged, rows under {key!r}, {count}")


def _list_rows(rows: list[Any]) -> list[Finding]:
    agents = [row for row in rows if isinstance(row, dict)]
    if not agents:
        return [Finding("list rows", "no agents on the first page")]

    def share(key: str) -> str:
        having = sum(1 for row in agents if key in row)
        return "all" if having == len(agents) else "none" if having == 0 else f"{having}"

    roles_seen = "roles included" if share("roles") == "all" else "no roles"
    teams = [team for row in agents for team in row.get("teams") or () if isinstance(team, dict)]
    flags = [flag for flag in MEMBERSHIP_FLAGS if teams and all(flag in t for t in teams)]
    teams_seen = (
        "no teams" if share("teams") != "all"
        else f"teams with {', '.join(flags) or 'no flags'}"
    )  # fmt: skip
    unknown = [key for key in ("is_admin", "department") if share(key) != "all"]
    floats = _has_float(agents)
    return [
        Finding("list rows", f"{roles_seen}; {teams_seen}"),
        Finding(
            "role_list",
            "present (read for roles where it names them exactly; a check on the others)"
            if share("role_list") == "all"
            else "not sent",
        ),
        Finding(
            "unknown fields",
            f"{', '.join(unknown)} not in list rows: stored as NULL in halo.agents"
            if unknown
            else "none: is_admin and department come with the rows",
        ),
        Finding("ids", "integral floats (18.0) seen, accepted" if floats else "integers"),
    ]


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    return isinstance(value, list) and any(_has_float(item) for item in value)


def _detail(client: HaloClient, agent_id: int) -> Finding:
    agent = client.get_agent(agent_id)
    has = [name for name in ("roles", "teams", "is_admin", "department")
           if getattr(agent, name) is not None]  # fmt: skip
    missing = sorted({"roles", "teams"} - set(has))
    advice = (
        f"agent details lack {', '.join(missing)}: provisioning cannot write them safely"
        if missing
        else None
    )
    return Finding("agent detail", f"agent {agent_id} read with {', '.join(has)}", advice)


def _agents(rows: list[Any]) -> list[AgentRecord]:
    """The page's agents as a sync reads them; rows it cannot read the other findings name."""
    agents = []
    for row in rows:
        try:
            agent = Agent.model_validate(row)
        except ValidationError:
            continue
        if agent.id != UNASSIGNED_AGENT_ID:
            agents.append(AgentRecord.of(agent))
    return agents


def _listed(page: Any, rows: list[Any]) -> int:
    """How many agents the tenant lists: its record_count, or the page's rows."""
    count = page.get("record_count") if isinstance(page, dict) else None
    return count if isinstance(count, int) and count >= len(rows) else len(rows)


def _ticket_type(types: list[TicketType], provisioning: ProvisioningSettings) -> Finding:
    wanted = provisioning.ticket_type or DEFAULT_TICKET_TYPE
    chosen = find_ticket_type(types, wanted)
    if chosen is None:
        known = ", ".join(f"{t.name} ({t.id})" for t in types) or "none"
        return Finding(
            "ticket type", f"no type {wanted!r}", f"set HALO_TICKET_TYPE to one of: {known}"
        )
    seen = f"{chosen.name!r} ({chosen.id})"
    if not chosen.hasmandatorytechfields:
        return Finding("ticket type", f"{seen}: no mandatory fields reported")
    fields = f"fields {chosen.fieldidlist}" if chosen.fieldidlist else "fields"
    seen += f": has mandatory {fields}"
    if provisioning.ticket_fields:
        return Finding("ticket type", f"{seen}; HALO_TICKET_FIELDS sets "
                       f"{', '.join(sorted(provisioning.ticket_fields))}")  # fmt: skip
    return Finding(
        "ticket type",
        seen,
        "set HALO_TICKET_FIELDS to a JSON object with their values, e.g. "
        '{"category_1": "Access"}: HaloITSM refuses a ticket without them (HTTP 400 naming '
        "the field)",
    )


def _statuses(client: HaloClient, provisioning: ProvisioningSettings) -> Finding:
    ids = {status.name: status.id for status in client.list_statuses()}
    wanted = {
        "HALO_TICKET_OPEN_STATUS": provisioning.ticket_open_status,
        "HALO_TICKET_CLOSED_STATUS": provisioning.ticket_closed_status,
    }
    missing = [f"{variable}={name!r}" for variable, name in wanted.items() if name not in ids]
    seen = ", ".join(f"{name} ({ids[name]})" for name in wanted.values() if name in ids)
    if missing:
        return Finding(
            "ticket statuses",
            seen or "none of the configured ones",
            f"no ticket status for {', '.join(missing)}; the statuses are {', '.join(sorted(ids))}",
        )
    return Finding("ticket statuses", seen)


def _retry_after(seen: list[float | None]) -> Finding:
    if not seen:
        return Finding("Retry-After", "unknown: no 429 met")
    if any(value is not None for value in seen):
        return Finding("Retry-After", "sent with 429 answers: waits as told")
    return Finding(
        "Retry-After", "not sent: a 429 waits for the rolling 5-minute window to free up"
    )


def _budget(client: HaloClient) -> Finding:
    settings = client.settings
    where = (
        f"shared by this installation in {settings.budget_path}"
        if settings.budget_path
        else "in this process only"
    )
    used = len(client.http.budget_in_use())
    return Finding(
        "request budget",
        f"{settings.max_requests_per_5_min} per 5 minutes, {where}; {used} spent in the last "
        "5 minutes",
        "HALO_MAX_REQUESTS_PER_5_MIN is above the 300 hosted tenants allow"
        if settings.max_requests_per_5_min > 300
        else None,
    )
