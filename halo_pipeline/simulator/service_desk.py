"""What people do in HaloITSM around an access request: end users, and the answers approvers
give on a ticket (`TicketApproval`, Halo's `FaultApproval` model)."""

from werkzeug.exceptions import abort
from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.params import integer, path_id
from halo_pipeline.simulator.responses import exception_error, json_response
from halo_pipeline.simulator.state import State

AWAITING, APPROVED, REJECTED = 0, 1, 2
"""How the simulator plays `result`: Halo documents no meaning for its values."""


def get_user(state: State, config: SimulatorConfig, request: Request, id: str) -> Response:
    user = state.users.get(path_id(id))
    if user is None:
        abort(exception_error(404, f"User {id} not found."))
    return json_response(user)


def list_approvals(state: State, config: SimulatorConfig, request: Request) -> Response:
    ticket_id = integer(request.args, "ticket_id", 0)
    rows = [row for row in state.approvals if not ticket_id or row["ticket_id"] == ticket_id]
    return json_response(rows)
