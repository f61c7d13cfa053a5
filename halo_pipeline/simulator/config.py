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
    rate_window_s: float = 300.0  # the rolling window's length; the 429 text still says 5 minutes
    send_retry_after: bool = False  # whether Halo sends Retry-After is unknown: off by default
    error_rate: float = 0.0  # share of /api requests answered with a 500 or 503
    error_seed: int = 0  # read once, when the simulator is built
    can_write: bool = True
    forbidden_paths: tuple[str, ...] = ()
    # "results": paged replies are {"results": [...]}, as a live tenant answered; "agents": the
    # list is under "agents", as other clients assume; "bare": paged but a bare array; "legacy":
    # paging parameters ignored, everything in one bare array.
    agent_paging: Literal["results", "agents", "bare", "legacy"] = "results"
    include_record_count: bool = True
    max_page_size: int = 100
    stuck_after_page: int | None = None  # pages after this one repeat its content
    # Pages past the end of the agent list: "empty", or "last": the last page again, as a live
    # tenant can answer (a client cannot stop at the first empty page there).
    past_last_page: Literal["empty", "last"] = "empty"
    # "openapi": list rows are Halo's Uname_List (role_list, no roles, is_admin or department);
    # "detailed": rows also carry is_admin, department and (when asked) roles, as older clients
    # assumed.
    agent_rows: Literal["openapi", "detailed"] = "openapi"
    omit_memberships: bool = False  # agent list rows carry no roles, teams or role_list
    omit_teams: bool = False  # rows carry roles (when asked) but no teams, as on older versions
    # Rows carry `roles: []` for every agent, whatever it holds: a tenant that sends the key
    # without filling it (only an agent's detail names its roles).
    empty_row_roles: bool = False
    ignore_role_filter: bool = False  # GET /api/agent?role= answers every agent
    ignore_team_filter: bool = False  # GET /api/agent?team_id= answers every agent
    # "exact": role_list names every role the agent holds; "first": only the first, as a
    # cached column that lags behind the agent's roles would (only the detail is right).
    role_list: Literal["exact", "first"] = "exact"
    send_unassigned: bool = False  # agent lists carry agent 1 even with includeunassigned=false
    array_writes: Literal["replace", "merge"] = "replace"
    # Integral ids rendered as floats (18.0): "some" as a real tenant's recorded answer shows
    # (roles' id_int, department_id), "all" for every id, "none" for none.
    float_ids: Literal["none", "some", "all"] = "some"
    write_lag_s: float = 0.0
    roles_shape: Literal["bare", "envelope"] = "bare"
    tickettypes_shape: Literal["bare", "envelope"] = "bare"
    # Custom fields in ticket list rows too; Halo sends them in a ticket's detail only.
    customfields_in_lists: bool = False
    # Ticket types whose approval process HaloITSM runs when a ticket is logged (CAB approval):
    # a ticket of one created through the API is refused with a 400 naming APP03.
    approval_at_creation: frozenset[int] = frozenset()
    # The largest file `POST /api/Attachment` takes; Halo's own limit is not documented.
    max_attachment_bytes: int = 5_000_000
    clock: Callable[[], float] = time.monotonic
