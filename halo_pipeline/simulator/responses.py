"""Answers in the several formats HaloITSM uses, errors included: its error bodies vary by error."""

import json
from html import escape

from werkzeug.wrappers import Response

JSON = "application/json; charset=utf-8"
# Keys whose integral values a tenant may render as floats (18.0), by the float_ids switch: a
# real tenant's recorded answers show it for the first two, so "some" is what a client meets.
SOME_FLOAT_IDS = frozenset({"id_int", "department_id"})
FLOAT_ID_KEYS = {
    "none": frozenset[str](),
    "some": SOME_FLOAT_IDS,
    "all": SOME_FLOAT_IDS
    | {"id", "team_id", "status_id", "tickettype_id", "ticket_id", "agent_id"},
}


class JsonResponse(Response):
    """A JSON answer whose body the app serialises, once it knows how the tenant renders ids:
    endpoints build plain bodies and the float_ids switch is applied in one place for all."""

    def __init__(self, body: object, status: int = 200) -> None:
        super().__init__(status=status, content_type=JSON)
        self.body = body

    def serialise(self, float_keys: frozenset[str] = frozenset()) -> None:
        body = with_float_ids(self.body, float_keys) if float_keys else self.body
        self.set_data(json.dumps(body, ensure_ascii=False))


def with_float_ids(body: object, keys: frozenset[str]) -> object:
    """A copy of `body` with the integers under `keys` as floats, at any depth (bools stay).

    Exact type checks, and recursing only into containers, keep this cheaper than serialising.
    """
    if type(body) is list:
        return [with_float_ids(item, keys) for item in body]
    if type(body) is not dict:
        return body
    copy = dict(body)
    for key, value in body.items():
        if type(value) is int:
            if key in keys:
                copy[key] = float(value)
        elif type(value) is dict or type(value) is list:
            copy[key] = with_float_ids(value, keys)
    return copy


def json_response(body: object, status: int = 200) -> JsonResponse:
    return JsonResponse(body, status)


def exception_error(status: int, message: str) -> JsonResponse:
    """The .NET-style body of Halo's validation and lookup errors."""
    return json_response({"ClassName": "System.Exception", "Message": message}, status)


def message_error(status: int, message: str) -> JsonResponse:
    return json_response({"Message": message}, status)


def oauth_error(code: str) -> JsonResponse:
    return json_response({"error": code}, 400)


def html_error(status: int, title: str) -> Response:
    title = escape(title)
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return Response(page, status, content_type="text/html; charset=utf-8")


def text_response(text: str, status: int) -> Response:
    return Response(text, status, content_type="text/plain; charset=utf-8")
