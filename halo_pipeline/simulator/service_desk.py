"""What people do in HaloITSM around an access request: end users, the answers approvers give
on a ticket (`TicketApproval`, Halo's `FaultApproval` model), and files attached to tickets."""

import base64
import binascii

from werkzeug.exceptions import abort
from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.params import integer, json_array, json_id, path_id
from halo_pipeline.simulator.responses import exception_error, json_response
from halo_pipeline.simulator.state import State
from halo_pipeline.simulator.tickets import now

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


def post_attachments(state: State, config: SimulatorConfig, request: Request) -> Response:
    # Every file is checked before any is saved, so a 400 leaves nothing half-attached.
    checked = [_checked_attachment(element, state, config) for element in json_array(request)]
    saved = [element | {"id": state.new_attachment_id(), "datecreated": now()}
             for element in checked]  # fmt: skip
    state.attachments.extend(saved)
    answers = [{k: v for k, v in row.items() if k != "data_base64"} for row in saved]
    return json_response(answers[0] if len(answers) == 1 else answers, 201)


def _checked_attachment(element: dict, state: State, config: SimulatorConfig) -> dict:
    ticket_id = json_id(element.get("ticket_id"), "ticket_id")
    if ticket_id not in state.tickets:
        abort(exception_error(400, f"Ticket {ticket_id} does not exist."))
    filename = element.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        abort(exception_error(400, "Please enter a filename."))
    try:
        data = base64.b64decode(str(element.get("data_base64") or ""), validate=True)
    except binascii.Error:
        abort(exception_error(400, "data_base64 is not base64."))
    if len(data) > config.max_attachment_bytes:
        abort(exception_error(400, f"The file {filename} is larger than the maximum allowed "
                                   f"size ({config.max_attachment_bytes} bytes)."))  # fmt: skip
    return {"ticket_id": ticket_id, "filename": filename, "filesize": len(data),
            "data_base64": element["data_base64"]}  # fmt: skip
