"""Tickets and their actions (notes): enough of Halo's ticketing to track provisioning requests."""

from datetime import UTC, datetime

from werkzeug.exceptions import abort
from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.dataset import Status, TicketType
from halo_pipeline.simulator.params import (
    flag,
    integer,
    json_array,
    json_id,
    optional_id,
    page,
    path_id,
)
from halo_pipeline.simulator.responses import exception_error, json_response, message_error
from halo_pipeline.simulator.state import State

UNSET_DATE = "1900-01-01T00:00:00"  # Halo's sentinel for a date that has no value
# Some of the rest of Halo's whole ticket record (a real 201 answer carries about 240 keys):
# what a client does not use must not trip it, a nested priority object and empty dates above
# all. Every ticket carries them, from a create, a detail or a list row.
FAULT_RECORD = {
    "priority_id": 4,
    "priority": {"id": "b1c8d6a2-5a1e-4c33-9f0e-2f6f1d8b7c11", "priorityid": 4, "name": "Low",
                 "responsetime": 8.0, "fixtime": 40.0, "ishidden": False},
    "sla_id": 1, "site_id": 18.0, "site_id_int": 18, "site_name": "Main", "client_id": 12,
    "client_name": "Example Ltd", "category_2": "", "category_3": "", "category_4": "",
    "details_html": "", "tags": [], "ticket_tags": "", "closure_note": "", "source": 0,
    "impact": 3, "urgency": 3, "deadlinedate": UNSET_DATE, "fixbydate": UNSET_DATE,
    "respondbydate": UNSET_DATE, "dateoccurred": UNSET_DATE, "lastactiondate": UNSET_DATE,
    "timetaken": 0.0, "excludefromsla": False, "onhold": False, "inactive": False,
    "child_count": 0, "attachment_count": 0, "_canupdate": True, "_isuser": False,
}  # fmt: skip
UPDATABLE_FIELDS = ("summary", "details", "status_id", "agent_id", "team", "customfields")
# Ids a ticket may be posted with; integral floats among them are stored as integers.
TICKET_ID_FIELDS = ("tickettype_id", "status_id", "team_id", "agent_id", "client_id", "user_id")


def post_tickets(state: State, config: SimulatorConfig, request: Request) -> Response:
    saved = [_saved_version(element, state, config) for element in json_array(request)]
    state.tickets.update((ticket["id"], ticket) for ticket in saved)
    return json_response(saved[0] if len(saved) == 1 else saved, 201)


def get_ticket(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    ticket = state.tickets.get(path_id(id))
    if ticket is None:
        abort(exception_error(404, f"Ticket {id} not found."))
    return json_response(ticket)


def list_tickets(state: State, config: SimulatorConfig, request: Request) -> Response:
    search = request.args.get("search", "").casefold()
    ticket_type = integer(request.args, "tickettype_id", 0)
    open_only = flag(request.args, "open_only")
    tickets = [
        t if config.customfields_in_lists else _list_row(t)
        for t in state.tickets.values()
        if search in t["summary"].casefold()
        and (not ticket_type or t["tickettype_id"] == ticket_type)
        and not (open_only and state.statuses[t["status_id"]].is_closed)
    ]
    if not flag(request.args, "pageinate"):
        return json_response({"record_count": len(tickets), "tickets": tickets})
    page_no, page_size = page(request.args, config.max_page_size)
    start = (page_no - 1) * page_size
    return json_response(
        {
            "page_no": page_no,
            "page_size": page_size,
            "record_count": len(tickets),
            "tickets": tickets[start : start + page_size],
        }
    )


def post_actions(state: State, config: SimulatorConfig, request: Request) -> Response:
    # Every element is checked before any is saved, so a 400 leaves nothing half-written.
    elements = [_checked_action(element, state) for element in json_array(request)]
    saved = [element | {"id": state.new_action_id(), "datetime": now()} for element in elements]
    for action in saved:
        # An action changes the ticket's status and nothing else: the request text stays.
        ticket = state.tickets[action["ticket_id"]] | {"last_update": action["datetime"]}
        if action.get("new_status") is not None:
            ticket = _with_status(ticket, state.statuses[action["new_status"]])
        state.tickets[ticket["id"]] = ticket
    state.actions.extend(saved)
    return json_response(saved[0] if len(saved) == 1 else saved, 201)


def list_actions(state: State, config: SimulatorConfig, request: Request) -> Response:
    ticket_id = integer(request.args, "ticket_id", 0)
    actions = [a for a in state.actions if not ticket_id or a["ticket_id"] == ticket_id]
    return json_response({"record_count": len(actions), "actions": actions})


def _checked_action(element: dict, state: State) -> dict:
    ticket_id = json_id(element.get("ticket_id"), "ticket_id")
    if ticket_id not in state.tickets:
        abort(exception_error(400, f"Ticket {ticket_id} does not exist."))
    checked = element | {"ticket_id": ticket_id}
    new_status = optional_id(element, "new_status")
    if new_status is not None:
        if new_status not in state.statuses:
            abort(exception_error(400, f"Status {new_status} does not exist."))
        checked["new_status"] = new_status
    return checked


def _saved_version(element: dict, state: State, config: SimulatorConfig) -> dict:
    element = element | {
        name: optional_id(element, name) for name in TICKET_ID_FIELDS if name in element
    }
    if "id" in element:
        ticket_id = json_id(element["id"], "id")
        current = state.tickets.get(ticket_id)
        if current is None:
            abort(exception_error(400, f"Ticket {ticket_id} does not exist."))
        ticket = current | {field: element[field] for field in UPDATABLE_FIELDS if field in element}
        ticket["last_update"] = now()
    else:
        ticket = _new_ticket(element, state, config)
    status = state.statuses.get(ticket["status_id"])
    if status is None:
        abort(exception_error(400, f"Status {ticket['status_id']} does not exist."))
    return _with_status(ticket, status)


def _new_ticket(element: dict, state: State, config: SimulatorConfig) -> dict:
    summary = element.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        abort(exception_error(400, "Please enter a summary."))
    ticket_type = state.ticket_types.get(element.get("tickettype_id"))
    if ticket_type is None:
        abort(exception_error(400, f"Ticket type {element.get('tickettype_id')} does not exist."))
    if ticket_type.id in config.approval_at_creation:
        # Halo names the code; the wording around it is the simulator's own.
        abort(exception_error(400, "APP03: this ticket type needs approval before it can be "
                                   "logged, which the API cannot give."))  # fmt: skip
    for field, label in ticket_type.mandatory:
        if element.get(field) in (None, ""):
            abort(message_error(400, f"{label} is required"))
    team = element.get("team", "")
    if element.get("team_id") is not None:
        known = state.teams.get(element["team_id"])
        if known is None:
            abort(exception_error(400, f"Team {element['team_id']} does not exist."))
        team = known.name
    return fault_record(state, ticket_type, element, team)


def fault_record(state: State, ticket_type: TicketType, element: dict, team: str = "") -> dict:
    """A new ticket as Halo keeps it: what Halo makes, every field given (Halo keeps whatever of
    its record was posted: category_1, client_id...), and the rest of its whole record."""
    computed = {
        "id": state.new_ticket_id(),
        "summary": element["summary"],
        "details": element.get("details", ""),
        "status_id": element.get("status_id") or ticket_type.initial_status or 1,
        "tickettype_id": ticket_type.id,
        "agent_id": element.get("agent_id"),
        "team": team,
        "datecreated": now(),
        "last_update": now(),
        "dateclosed": UNSET_DATE,
        "customfields": element.get("customfields", []),
    }
    posted = {name: value for name, value in element.items() if name not in computed}
    return FAULT_RECORD | posted | computed


def _with_status(ticket: dict, status: Status) -> dict:
    """The ticket in `status`; a closing status stamps dateclosed the first time."""
    ticket = ticket | {"status_id": status.id}
    if status.is_closed and ticket["dateclosed"] == UNSET_DATE:
        ticket["dateclosed"] = now()
    return ticket


def _list_row(ticket: dict) -> dict:
    """A ticket as list rows carry it: Halo sends custom fields in the detail only."""
    return {name: value for name, value in ticket.items() if name != "customfields"}


def now() -> str:
    # Halo writes UTC timestamps without an offset.
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
