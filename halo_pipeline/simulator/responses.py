"""Answers in the several formats HaloITSM uses, errors included: its error bodies vary by error."""

import json
from html import escape

from werkzeug.wrappers import Response

JSON = "application/json; charset=utf-8"


def json_response(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, content_type=JSON)


def exception_error(status: int, message: str) -> Response:
    """The .NET-style body of Halo's validation and lookup errors."""
    return json_response({"ClassName": "System.Exception", "Message": message}, status)


def message_error(status: int, message: str) -> Response:
    return json_response({"Message": message}, status)


def oauth_error(code: str) -> Response:
    return json_response({"error": code}, 400)


def html_error(status: int, title: str) -> Response:
    title = escape(title)
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return Response(page, status, content_type="text/html; charset=utf-8")


def text_response(text: str, status: int) -> Response:
    return Response(text, status, content_type="text/plain; charset=utf-8")
