"""Reading query parameters and JSON bodies the way Halo's API does."""

import json

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import abort
from werkzeug.wrappers import Request

from halo_pipeline.simulator.responses import exception_error


def flag(args: MultiDict[str, str], name: str, default: bool = False) -> bool:
    value = args.get(name)
    return default if value is None else value.lower() == "true"


def integer(args: MultiDict[str, str], name: str, default: int) -> int:
    value = args.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        abort(exception_error(400, f"The value '{value}' is not valid for {name}."))


def page(args: MultiDict[str, str], max_page_size: int) -> tuple[int, int]:
    """(page_no, page_size) with the page size silently capped, as Halo does."""
    page_size = min(max(integer(args, "page_size", max_page_size), 1), max_page_size)
    return max(integer(args, "page_no", 1), 1), page_size


def json_array(request: Request) -> list:
    """The body of a Halo write, which is always a JSON array of records."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, list) or not all(isinstance(element, dict) for element in body):
        abort(exception_error(400, "The request body must be a JSON array of objects."))
    return body


def path_id(value: str) -> int:
    """A record id from the URL; Halo's routes only know numeric ids, so others are not found."""
    if not value.isdigit():
        abort(exception_error(404, f"No record with id '{value}'."))
    return int(value)


def json_id(value: object, name: str) -> int:
    """A posted id. Halo's own answers render some ids as floats (18.0), so clients echo them
    back that way: an integral float is the integer; anything else that is not one is a 400."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    abort(exception_error(400, f"The value {json.dumps(value)} is not valid for {name}."))


def optional_id(element: dict, name: str) -> int | None:
    """A posted id that may be left out or null."""
    value = element.get(name)
    return None if value is None else json_id(value, name)
