"""Where this tenant's roles and teams come from (`halo.ladder`), proved on the first page of
agents, and what reading them costs under the request budget: a first full read, each sync
after it, and whether the schedule reads every agent within HALO_ROLES_MAX_AGE."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from croniter import croniter

from halo_pipeline.doctor.finding import Finding
from halo_pipeline.halo import HaloClient
from halo_pipeline.halo.ladder import PROOF_SAMPLE, read_memberships
from halo_pipeline.halo.models import AgentRecord, Role, Team
from halo_pipeline.policy.freshness import RolesAgeSettings
from halo_pipeline.policy.gate import say_duration
from halo_pipeline.sync import ScheduleSettings


def memberships(
    client: HaloClient, page: list[AgentRecord], agents: int, roles: list[Role], teams: list[Team]
) -> list[Finding]:
    """`page`: the first page of agents, on which the sources are proved; `agents`: how many
    the tenant lists."""
    if not page:
        return [Finding("memberships", "not tried: no agents")]
    found = read_memberships(client, page, roles, teams, allowance=PROOF_SAMPLE)
    settings = client.settings
    budget = settings.max_requests_per_5_min
    # A token, the agent pages, roles, teams and ticket types: what every sync reads.
    base = 1 + math.ceil(agents / settings.page_size) + 3
    per_item = found.source.count("per role") * (1 + len(roles)) + found.source.count(
        "per team"
    ) * (1 + len(teams))
    why = f" ({found.why})" if found.why else ""
    source = found.source.split(" (")[0]
    said = [
        Finding("memberships", f"{source}{why}; chosen on {found.detail_reads} agents' details")
    ]
    if found.read is None:
        requests = base + per_item + min(PROOF_SAMPLE, agents)
        said.append(Finding("sync time", f"a full sync reads every agent's roles in about "
                            f"{requests} requests: {_pace(requests, budget)}"))  # fmt: skip
        return said
    allowance = settings.detail_allowance
    first, steady = base + agents, base + allowance
    said.append(
        Finding(
            "sync time",
            f"a first full read of {agents} agents' details takes about {first} requests: "
            f"{_pace(first, budget)}; then each sync reads {allowance} "
            f"(HALO_DETAIL_READS_PER_SYNC) in about {steady} requests: {_pace(steady, budget)}",
        )
    )
    said.append(_upkeep(agents, allowance, budget, base))
    return said


def _upkeep(agents: int, allowance: int, budget: int, base: int) -> Finding:
    """Whether the syncs HALO_SYNC_CRON starts read every agent within HALO_ROLES_MAX_AGE."""
    cron = ScheduleSettings.load().sync_cron
    max_age = RolesAgeSettings.load().roles_max_age
    turns = math.ceil(agents / allowance)
    # From one sync, the time until the agent it read is due again: `turns` syncs later.
    fires = croniter(cron, datetime.now(UTC))
    now = fires.get_next(datetime)
    for _ in range(turns):
        last = fires.get_next(datetime)
    limit = f"{say_duration(max_age)} (HALO_ROLES_MAX_AGE)"
    seen = f"every agent read within {turns} syncs: {_say(last - now)} at HALO_SYNC_CRON {cron!r}"
    if last - now <= max_age:
        return Finding("roles' upkeep", f"{seen}, within {limit}")
    fires, syncs = croniter(cron, now), 0
    while fires.get_next(datetime) <= now + max_age:
        syncs += 1
    needed = math.ceil(agents / max(syncs, 1))
    advice = f"set HALO_DETAIL_READS_PER_SYNC={needed}"
    gap = max_age / max(syncs, 1)
    if _windows(base + needed, budget) * timedelta(minutes=5) > gap:
        advice += (
            f", though a sync that size outlasts the {_say(gap)} between syncs under the "
            "budget: raise HALO_ROLES_MAX_AGE instead"
        )
    return Finding("roles' upkeep", f"{seen}, longer than {limit}", advice)


def _windows(requests: int, budget: int) -> int:
    """Rolling 5-minute windows to wait: `budget` requests go at once, each later `budget` a
    window after."""
    return max(0, math.ceil(requests / budget - 1))


def _pace(requests: int, budget: int) -> str:
    windows = _windows(requests, budget)
    if not windows:
        return f"within one 5-minute window under the budget of {budget}"
    return f"at least {_say(timedelta(minutes=5 * windows))} under the budget of {budget}"


def _say(length: timedelta) -> str:
    """A length in the units a person plans with: 45 minutes, 3 hours 5 minutes, 2 days 4
    hours (to the minute, rounded up)."""
    minutes = math.ceil(length.total_seconds() / 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    said = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " ".join(said[:2]) or "0 minutes"
