"""Switches that make the simulator play each HaloITSM variant and failure mode.

Every field is read per request, so tests may change them on a running simulator.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

DEMO_CLIENT_ID = "halo-pipeline-demo"
DEMO_CLIENT_SECRET = "halo-sim-demo-secret"  # a public demo value, not a credential
VALID_SCOPES = frozenset({"all", "admin", "read:tickets", "edit:tickets", "read:customers"})


@dataclass
class SimulatorConfig:
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = field(default=DEMO_CLIENT_SECRET, repr=False)
    tenant: str | None = None  # when set, the token request must name it
    wrong_tenant_status: int = 500
    token_lifetime_s: int = 3600
    latency_s: float = 0.0
    rate_limit_per_5_min: int | None = None
    send_retry_after: bool = True
    error_rate: float = 0.0  # share of /api requests answered with a 500 or 503
    error_seed: int = 0  # read once, when the simulator is built
    can_write: bool = True
    forbidden_paths: tuple[str, ...] = ()
    # "envelope": paged replies are {"results": [...]}; "bare": paged but a bare array;
    # "legacy": paging parameters ignored, everything in one bare array.
    agent_paging: Literal["envelope", "bare", "legacy"] = "envelope"
    include_record_count: bool = True
    max_page_size: int = 100
    stuck_after_page: int | None = None  # pages after this one repeat its content
    omit_memberships: bool = False  # agent list rows carry neither roles nor teams
    omit_teams: bool = False  # rows carry roles (when asked) but no teams, as on older versions
    array_writes: Literal["replace", "merge"] = "replace"
    write_lag_s: float = 0.0
    roles_shape: Literal["bare", "envelope"] = "bare"
    tickettypes_shape: Literal["bare", "envelope"] = "bare"
    clock: Callable[[], float] = time.monotonic
