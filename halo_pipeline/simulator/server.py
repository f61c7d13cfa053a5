"""Serving the simulator over real HTTP on a loopback port, from a background thread."""

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import WSGIRequestHandler, make_server

from halo_pipeline.simulator.app import HaloApp

# How often the serving loop looks for a stop request: short, so tests do not wait on shutdown.
POLL_INTERVAL_S = 0.05
SECRET_IN_QUERY = re.compile(r"(client_secret=)[^&\s]*")


class RedactingRequestHandler(WSGIRequestHandler):
    """Werkzeug's access log, less any client secret a client wrongly put in the URL."""

    def log(self, type: str, message: str, *args: object) -> None:
        super().log(type, message, *(SECRET_IN_QUERY.sub(r"\1(redacted)", str(a)) for a in args))


class QuietRequestHandler(RedactingRequestHandler):
    """No line per request (tests, demos, benchmarks); errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serve_in_background(
    app: HaloApp, host: str, port: int, access_log: bool = False
) -> Iterator[str]:
    """Serve `app` (port 0 picks a free one) and yield its base URL; stop and join on exit."""
    handler = RedactingRequestHandler if access_log else QuietRequestHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    thread = threading.Thread(
        target=server.serve_forever, args=(POLL_INTERVAL_S,), name="halo-simulator", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
