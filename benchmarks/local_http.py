"""A small threaded HTTP server on 127.0.0.1, shared by the simulated and the fault clouds.

Standard library only (``http.server``); HTTP/1.1 with keep-alive, like real API servers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    state: Any = None  # what the handlers serve from (set by :func:`serve`)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # e.g. a client that timed out and hung up before a slow reply: expected here
        log.debug("request from %s failed", client_address, exc_info=True)


class JSONHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body meet delayed ACKs: +40 ms a reply
    server: LocalServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s %s", self.address_string(), format % args)

    def read_json(self) -> Any:
        """The request body as JSON, or None if it is missing or not JSON."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def send_body(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: Any, **kwargs: Any) -> None:
        self.send_body(status, json.dumps(payload).encode("utf-8"), **kwargs)

    def send_error_json(self, status: int, message: str) -> None:
        """An OpenAI-style error body."""
        self.send_json(status, {"error": {"message": message, "type": "invalid_request_error"}})


@contextmanager
def serve(handler: type[JSONHandler], state: Any, *, port: int = 0) -> Iterator[LocalServer]:
    """Serve ``handler`` on 127.0.0.1:``port`` (0: any free port) in a background thread."""
    server = LocalServer((LOOPBACK, port), handler)
    server.state = state
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-http", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def base_url(server: LocalServer) -> str:
    """The OpenAI-style base URL of a local server (with ``/v1``)."""
    return f"http://{LOOPBACK}:{server.server_address[1]}/v1"
