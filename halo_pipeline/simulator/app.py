"""The WSGI application: Halo's routes, behind what every request goes through first
(scripted faults, the rate limit, random server errors, the bearer token, permissions)."""

import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator import agents, auth, directory, service_desk, tickets
from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.faults import Fault, FaultQueue
from halo_pipeline.simulator.rate_limit import RollingWindow
from halo_pipeline.simulator.responses import (
    FLOAT_ID_KEYS,
    JsonResponse,
    exception_error,
    html_error,
    message_error,
    text_response,
)
from halo_pipeline.simulator.state import State

logger = logging.getLogger(__name__)
Endpoint = Callable[..., Response]
GET, POST, DELETE = ["GET"], ["POST"], ["DELETE"]

ROUTES = Map(
    [
        Rule("/auth/token", methods=POST, endpoint=auth.token),
        Rule("/api/authinfo", methods=GET, endpoint=auth.authinfo),
        Rule("/api/agent", methods=GET, endpoint=agents.list_agents),
        Rule("/api/agent", methods=POST, endpoint=agents.post_agents),
        Rule("/api/agent/me", methods=GET, endpoint=agents.get_me),
        Rule("/api/agent/<id>", methods=GET, endpoint=agents.get_agent),
        Rule("/api/agent/<id>", methods=DELETE, endpoint=agents.delete_agent),
        Rule("/api/roles", methods=GET, endpoint=directory.list_roles),
        Rule("/api/team", methods=GET, endpoint=directory.list_teams),
        Rule("/api/team/<id>", methods=GET, endpoint=directory.get_team),
        Rule("/api/team/<id>", methods=DELETE, endpoint=directory.delete_team),
        Rule("/api/tickettype", methods=GET, endpoint=directory.list_ticket_types),
        Rule("/api/status", methods=GET, endpoint=directory.list_statuses),
        Rule("/api/tickets", methods=GET, endpoint=tickets.list_tickets),
        Rule("/api/tickets", methods=POST, endpoint=tickets.post_tickets),
        Rule("/api/tickets/<id>", methods=GET, endpoint=tickets.get_ticket),
        Rule("/api/actions", methods=GET, endpoint=tickets.list_actions),
        Rule("/api/actions", methods=POST, endpoint=tickets.post_actions),
        Rule("/api/users/<id>", methods=GET, endpoint=service_desk.get_user),
        Rule("/api/TicketApproval", methods=GET, endpoint=service_desk.list_approvals),
        Rule("/api/Attachment", methods=POST, endpoint=service_desk.post_attachments),
    ]
)


class HaloApp:
    def __init__(self, state: State, config: SimulatorConfig) -> None:
        self.state = state
        self.config = config
        self.faults = FaultQueue()
        self.after_write: Callable[[], None] | None = None
        """Called, under the state's lock, after each write the simulator accepted."""
        self._window = RollingWindow()
        self._errors = random.Random(config.error_seed)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        request.get_data()  # read before taking the lock: a slow client must not stall the others
        route, endpoint, values = _route(request)
        with self.state.lock:
            entry = self.state.log_request(
                request.method, route, request.path, _loggable(request), _written(request)
            )
        time.sleep(self.config.latency_s)  # outside the lock, so concurrent requests overlap
        with self.state.lock:
            fault = self.faults.take(request.method, request.path, request.args)
            response = self._answer(request, endpoint, values, fault)
            if isinstance(response, JsonResponse):
                # Under the lock: bodies may hold the state's own records.
                response.serialise(FLOAT_ID_KEYS[self.config.float_ids])
            if fault is not None and fault.rows is not None and response.status_code == 200:
                _cut_list(response, fault.rows)
            entry.status = response.status_code
            if self.after_write and request.method != "GET" and response.status_code < 300:
                self.after_write()
        return response(environ, start_response)

    def _answer(
        self, request: Request, endpoint: Endpoint, values: dict, fault: Fault | None
    ) -> Response:
        if fault is not None and fault.expire_tokens:
            self.state.expire_tokens()
        elif fault is not None and fault.rows is None:
            return Response(
                fault.body, fault.status, fault.headers, content_type=fault.content_type
            )
        for check in (self._rate_limit, self._server_error, self._authenticate, self._authorise):
            refusal = check(request, endpoint)
            if refusal is not None:
                return refusal
        try:
            return endpoint(self.state, self.config, request, **values)
        except HTTPException as error:  # handlers abort() with the response to send
            return error.get_response()
        except Exception:
            # Input of an unexpected type fails as on Halo (.NET): a 500, the same in-process as
            # over HTTP. The traceback is logged, so a simulator bug still shows.
            logger.exception("simulator failed on %s %s", request.method, request.path)
            return exception_error(500, "Object reference not set to an instance of an object.")

    def _rate_limit(self, request: Request, endpoint: Endpoint) -> Response | None:
        limit = self.config.rate_limit_per_5_min
        wait_s = (
            None
            if limit is None
            else self._window.admit(limit, self.config.rate_window_s, self.config.clock())
        )
        if wait_s is None:
            return None
        refusal = text_response(
            f"Rate Limit Reached - {limit} Requests per rolling 5 minute window", 429
        )
        if self.config.send_retry_after:
            refusal.headers["Retry-After"] = str(wait_s)
        return refusal

    def _server_error(self, request: Request, endpoint: Endpoint) -> Response | None:
        # No draw when errors are off, so turning them on later replays the seeded sequence.
        if self.config.error_rate <= 0 or not request.path.startswith("/api/"):
            return None
        if self._errors.random() >= self.config.error_rate:
            return None
        if self._errors.random() < 0.5:
            return exception_error(500, "An error has occurred.")
        return html_error(503, "Service Unavailable")

    def _authenticate(self, request: Request, endpoint: Endpoint) -> Response | None:
        if not request.path.startswith("/api/") or endpoint is auth.authinfo:
            return None
        credentials = request.authorization
        if (
            credentials is not None
            and credentials.type == "bearer"
            and self.state.token_valid(credentials.token or "", self.config.clock())
        ):
            return None
        return Response(status=401)  # Halo's 401 has no body

    def _authorise(self, request: Request, endpoint: Endpoint) -> Response | None:
        if any(request.path.startswith(path) for path in self.config.forbidden_paths):
            return message_error(403, "You do not have permission to access this resource.")
        writing = request.method in ("POST", "DELETE") and request.path.startswith("/api/")
        if writing and not self.config.can_write:
            return message_error(403, "The application does not have permission to edit.")
        return None


def _route(request: Request) -> tuple[str, Endpoint, dict]:
    """The matched rule's pattern (the key of request_counts), its endpoint and path values."""
    try:
        rule, values = ROUTES.bind_to_environ(request.environ).match(return_rule=True)
    except HTTPException as error:  # unknown path or method: werkzeug's own HTML error page
        return request.path, partial(_routing_error, error), {}
    return rule.rule, rule.endpoint, values


def _routing_error(
    error: HTTPException, state: State, config: SimulatorConfig, request: Request
) -> Response:
    return error.get_response(request.environ)


def _cut_list(response: Response, rows: int) -> None:
    """The answer with only the first `rows` rows of its list: a bare array, or the list an
    envelope holds (its other keys, record_count included, as they were)."""
    body = json.loads(response.get_data())
    if isinstance(body, list):
        body = body[:rows]
    else:
        key = next(key for key, value in body.items() if isinstance(value, list))
        body[key] = body[key][:rows]
    response.set_data(json.dumps(body, ensure_ascii=False))


def _written(request: Request) -> Any:
    """A write's JSON body (never a token request's form, which holds the secret)."""
    if request.method == "GET" or not request.is_json:
        return None
    return request.get_json(silent=True)


def _loggable(request: Request) -> dict[str, str]:
    # A client that wrongly puts its secret in the URL must not get it logged.
    return {
        name: "(redacted)" if name == "client_secret" else value
        for name, value in request.args.items()
    }
