"""``foggen serve``: build the configs, bind the socket, run uvicorn until SIGTERM.

FastAPI, uvicorn and prometheus-client (the ``[serve]`` extra) are imported only when the
command runs, so ``foggen`` works without them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3
INSTALL_HINT = "foggen serve needs the [serve] extra: pip install 'foggen-edge[serve]'"


def add_serve_command(commands: Any) -> None:
    from cloud_client.config import CloudConfig
    from edge_runtime.config import RuntimeConfig, add_config_arguments
    from edge_runtime.service.config import ServiceConfig

    serve = commands.add_parser(
        "serve",
        help="run the kiosk HTTP service (POST /v1/answer, /healthz, /readyz, /metrics)",
        description="Serve the model over HTTP on 127.0.0.1 (another address only with --host). "
        "Set FOGGEN_API_TOKEN to require a bearer token on /v1/* and /metrics. Prints "
        "'listening on URL' once bound; SIGTERM drains in-flight requests, then exits 0.",
    )
    add_config_arguments(serve, ServiceConfig)
    add_config_arguments(serve, RuntimeConfig)
    add_config_arguments(serve, CloudConfig, only=("url", "model", "outbox"))
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError as exc:
        print(f"foggen: {INSTALL_HINT} ({exc.name} is missing)", file=sys.stderr)
        return EXIT_USAGE
    from cloud_client.config import CloudConfig
    from edge_runtime.config import RuntimeConfig, build_config
    from edge_runtime.service.app import create_app
    from edge_runtime.service.config import ServiceConfig

    flags, env = vars(args), os.environ
    service = build_config(ServiceConfig, flags=flags, env=env)
    runtime_config = build_config(RuntimeConfig, flags=flags, env=env)
    cloud = build_config(CloudConfig, flags=flags, env=env)
    failed = False

    def fatal() -> None:
        nonlocal failed
        failed = True
        server.should_exit = True

    app = create_app(service, lambda: _load(runtime_config, cloud), on_fatal=fatal)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, server_header=False, lifespan="on",
            timeout_graceful_shutdown=math.ceil(service.shutdown_timeout),
        )
    )  # fmt: skip
    sock = _bind(service.host, service.port)
    print(f"foggen serve: listening on {_url(sock)}", flush=True)
    with _sigterm_exits_cleanly():
        server.run(sockets=[sock])
    if failed:
        return EXIT_MODEL
    return EXIT_OK if server.started else EXIT_FAILED


def _load(runtime_config: Any, cloud: Any) -> Any:
    """The runtime, with an escalator when a cloud URL is configured."""
    from edge_runtime.escalation import Escalator
    from edge_runtime.runtime import EdgeRuntime

    escalator = Escalator.from_config(cloud) if cloud.enabled else None
    try:
        return EdgeRuntime.load(runtime_config, escalator=escalator)
    except BaseException:
        if escalator is not None:
            escalator.close()
        raise


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket: connections queue from here on, while the app starts."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def _sigterm_exits_cleanly() -> Iterator[None]:
    """uvicorn drains on SIGTERM, then raises it again for the previous handler; make that
    handler a no-op so a drained shutdown exits 0 (the systemd convention for a clean stop)."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
