"""The HaloITSM API client: one method per endpoint this project uses, returning typed models."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from halo_pipeline.halo.errors import HaloMalformedResponseError
from halo_pipeline.halo.http import HaloHttp
from halo_pipeline.halo.models import (
    Agent,
    AgentRecord,
    Role,
    Status,
    Team,
    Ticket,
    TicketApproval,
    TicketType,
    User,
    halo_id,
)
from halo_pipeline.halo.paging import Page, Progress, fetch_all_pages, parse_page
from halo_pipeline.halo.settings import HaloSettings

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

UNASSIGNED_AGENT_ID = 1
# Disabled and API-only agents are left out of `GET /api/agent` unless asked for; Halo's
# Unassigned pseudo-agent (1) is in unless asked not to be, and dropped if sent anyway.
ALL_AGENTS = {"includeenabled": "true", "includedisabled": "true", "includeapiagents": "true",
              "includeunassigned": "false"}  # fmt: skip


class HaloClient:
    """Typed access to one HaloITSM instance. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        settings: HaloSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        logger: Any = None,
        **http_options: Any,
    ) -> None:
        self.http = HaloHttp(settings, transport=transport, logger=logger, **http_options)
        self.settings = settings
        self.log = self.http.log

    def __enter__(self) -> HaloClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @property
    def request_count(self) -> int:
        """Requests sent so far, token requests and retries included."""
        return self.http.request_count

    # Agents

    def agent_page(self, page_no: int) -> Any:
        """One page of the agent list, as HaloITSM sent it."""
        params = {
            **ALL_AGENTS,
            "includeroles": "true",
            # Newer versions leave teams out unless asked; older ones ignore the parameter.
            "include_membership_info": "true",
            "pageinate": "true",
            "page_size": self.settings.page_size,
            "page_no": page_no,
        }
        return self.http.get("/agent", params)

    def list_agents(self, progress: Progress | None = None) -> list[Agent]:
        """Every agent (enabled, disabled, API-only) except the Unassigned placeholder."""
        return self._every_agent(progress, lambda rows, where: _validate(Agent, rows, where))

    def agent_records(self, progress: Progress | None = None) -> list[AgentRecord]:
        """`list_agents`, each agent kept as the sync needs it: a tenth of the memory."""

        def records(rows: list[dict[str, Any]], where: str) -> list[AgentRecord]:
            return [AgentRecord.of(agent) for agent in _validate(Agent, rows, where)]

        return self._every_agent(progress, records)

    def _every_agent(
        self, progress: Progress | None, convert: Callable[[list[dict[str, Any]], str], list[T]]
    ) -> list[T]:
        where = "GET /api/agent"

        def fetch(page_no: int) -> Page:
            return parse_page(self.agent_page(page_no), where)

        rows = fetch_all_pages(
            fetch,
            page_size=self.settings.page_size,
            concurrency=self.settings.concurrency,
            where=where,
            progress=progress,
            convert=convert,
        )
        return [agent for agent in rows if getattr(agent, "id", None) != UNASSIGNED_AGENT_ID]

    def list_agents_where(self, **filters: str) -> list[Agent]:
        """All agents matching Halo's list filters (`search=`, `role=<id_int>`, `team_id=`),
        unpaged: one request, however many agents match."""
        where = f"GET /api/agent?{'&'.join(f'{k}={v}' for k, v in filters.items())}"
        payload = self.http.get("/agent", {**ALL_AGENTS, **filters})
        rows = parse_page(payload, where).rows
        return [a for a in _validate(Agent, rows, where) if a.id != UNASSIGNED_AGENT_ID]

    def member_ids(self, **filters: str) -> set[int]:
        """The ids of the agents a filter (`role=<id_int>`, `team_id=<id>`) answers: one
        request per role or team, which is what makes memberships read per role cheap. Only
        the ids are read from the rows."""
        where = f"GET /api/agent?{'&'.join(f'{k}={v}' for k, v in filters.items())}"
        payload = self.http.get("/agent", {**ALL_AGENTS, **filters})
        ids = set()
        for row in parse_page(payload, where).rows:
            try:
                ids.add(halo_id(row.get("id") if isinstance(row, dict) else None))
            except ValueError:
                raise HaloMalformedResponseError(
                    f"{where}: a row has no integer 'id' (got {str(row)[:120]!r})"
                ) from None
        return ids - {UNASSIGNED_AGENT_ID}

    def get_agent(self, agent_id: int) -> Agent:
        """One agent with its roles and teams; `HaloNotFoundError` when it does not exist."""
        payload = self.http.get(f"/agent/{agent_id}", {"includedetails": "true"})
        return _validate_one(Agent, payload, f"GET /api/agent/{agent_id}")

    def save_agent(self, agent: dict[str, Any]) -> Agent:
        """POST one agent: with `id` an update, without one a new agent. Halo has no PUT: the
        fields sent replace the stored ones; whether posted `roles` and `teams` replace the
        agent's or are merged into them differs between instances, so callers read back."""
        saved = self.http.post("/agent", [agent])
        return _validate_one(Agent, _single(saved), "POST /api/agent")

    # Tickets

    def save_ticket(self, ticket: dict[str, Any]) -> Ticket:
        """POST one ticket: with `id` an update, without one a new ticket."""
        return _validate_one(
            Ticket, _single(self.http.post("/tickets", [ticket])), "POST /api/tickets"
        )

    def get_ticket(self, ticket_id: int) -> Ticket:
        return _validate_one(
            Ticket, self.http.get(f"/tickets/{ticket_id}"), f"GET /api/tickets/{ticket_id}"
        )

    def search_tickets(self, text: str) -> list[Ticket]:
        """Tickets whose summary contains `text`, every page."""
        return self._tickets({"search": text})

    def open_tickets(self, tickettype_id: int) -> list[Ticket]:
        """The open tickets of one type, every page (list rows: no custom fields)."""
        return self._tickets({"tickettype_id": tickettype_id, "open_only": "true"})

    def _tickets(self, filters: dict[str, Any]) -> list[Ticket]:
        where = "GET /api/tickets"
        params = {"pageinate": "true", "page_size": self.settings.page_size, **filters}

        def fetch(page_no: int) -> Page:
            payload = self.http.get("/tickets", {**params, "page_no": page_no})
            return parse_page(payload, where, ("tickets",))

        rows = fetch_all_pages(fetch, page_size=self.settings.page_size, concurrency=1, where=where)
        return _validate(Ticket, rows, where)

    def get_user(self, user_id: int) -> User:
        return _validate_one(User, self.http.get(f"/users/{user_id}"), f"GET /api/users/{user_id}")

    def ticket_approvals(self, ticket_id: int) -> list[TicketApproval]:
        """Every approver's row on the ticket (steps, votes, delegations, overrides)."""
        return self._list(TicketApproval, "/TicketApproval", ("approvals", "records"),
                          {"ticket_id": str(ticket_id)})  # fmt: skip

    def me(self) -> Agent:
        """The agent this application logs in as (`GET /api/agent/me`)."""
        return _validate_one(Agent, self.http.get("/agent/me"), "GET /api/agent/me")

    def add_action(self, ticket_id: int, note: str, new_status: int | None = None) -> None:
        """A note on a ticket, and optionally a new status, as an action: the ticket's own
        text (what was asked) stays as it was."""
        action: dict[str, Any] = {
            "ticket_id": ticket_id,
            "outcome": "halo-pipeline",
            "note": note,
            "hiddenfromuser": False,
        }
        if new_status is not None:
            action["new_status"] = new_status
        self.http.post("/actions", [action])

    def add_attachment(self, ticket_id: int, filename: str, content: bytes) -> None:
        """A file on a ticket (`POST /api/Attachment`, the content base64-encoded)."""
        data = base64.b64encode(content).decode("ascii")
        self.http.post(
            "/Attachment", [{"ticket_id": ticket_id, "filename": filename, "data_base64": data}]
        )

    # Reference data

    def list_roles(self) -> list[Role]:
        return self._list(Role, "/roles", ("roles",))

    def list_teams(self) -> list[Team]:
        """All teams, inactive ones included."""
        return self._list(
            Team, "/team", ("teams",), {"includeenabled": "true", "includedisabled": "true"}
        )

    def list_ticket_types(self) -> list[TicketType]:
        return self._list(TicketType, "/tickettype", ("tickettypes",))

    def list_statuses(self) -> list[Status]:
        """Ticket statuses: names repeat across types (a project's "Closed"), so only these."""
        return self._list(Status, "/status", ("statuses",), {"type": "ticket"})

    def _list(
        self,
        model: type[M],
        path: str,
        list_keys: tuple[str, ...],
        params: dict[str, str] | None = None,
    ) -> list[M]:
        """An unpaged list: a bare array, or an object holding the array."""
        where = f"GET /api{path}"
        return _validate(
            model, parse_page(self.http.get(path, params), where, list_keys).rows, where
        )


def _single(payload: Any) -> Any:
    """Halo answers a one-element POST with the object, or (some versions) a one-element array."""
    return payload[0] if isinstance(payload, list) and len(payload) == 1 else payload


def _validate(model: type[M], rows: Sequence[Any], where: str) -> list[M]:
    try:
        return TypeAdapter(list[model]).validate_python(rows)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise HaloMalformedResponseError(f"{where}: {_first_problem(exc, rows)}") from None


def _validate_one(model: type[M], payload: Any, where: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise HaloMalformedResponseError(f"{where}: {_first_problem(exc, [payload])}") from None


def _first_problem(exc: ValidationError, rows: Sequence[Any]) -> str:
    error = exc.errors()[0]
    loc = list(error["loc"])
    row_no = loc.pop(0) if loc and isinstance(loc[0], int) else 0
    row = rows[row_no] if row_no < len(rows) else None
    row_id = row.get("id") if isinstance(row, dict) else None
    field = ".".join(str(part) for part in loc) or "(row)"
    return (
        f"row {row_no} (id {row_id!r}) field {field!r}: {error['msg']} "
        f"(got {str(error.get('input'))[:80]!r}); {exc.error_count()} problem(s) in all"
    )
