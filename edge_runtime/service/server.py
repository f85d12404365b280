"""Run the kiosk service: bind the socket, run uvicorn until SIGTERM, drain, report how it ended.

FastAPI, uvicorn and prometheus-client (the ``[serve]`` extra) are imported only here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import socket
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any

from cloud_client.config import CloudConfig
from edge_runtime.config import RuntimeConfig
from edge_runtime.errors import ConfigError
from edge_runtime.service.config import ServiceConfig

log = logging.getLogger(__name__)

INSTALL_HINT = "foggen serve needs the [serve] extra: pip install 'foggen-edge[serve]'"


class ServeOutcome(str, Enum):
    DRAINED = "drained"  # stopped by SIGTERM (or Ctrl-C) after in-flight requests finished
    NOT_STARTED = "not_started"  # uvicorn could not start the app
    MODEL_FAILED = "model_failed"  # the model could not be loaded or died


class MissingServeExtraError(ConfigError):
    kind = "missing_extra"


def check_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingServeExtraError(f"{INSTALL_HINT} ({exc.name} is missing)") from exc


def serve(
    service: ServiceConfig,
    runtime_config: RuntimeConfig,
    cloud: CloudConfig,
    *,
    announce: Callable[[str], None],
) -> ServeOutcome:
    """Serve until SIGTERM; ``announce`` gets the URL once the socket is bound."""
    check_extra()
    import uvicorn

    from edge_runtime.service.app import create_app

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
    announce(_url(sock))
    with _sigterm_exits_cleanly():
        server.run(sockets=[sock])
    if failed:
        return ServeOutcome.MODEL_FAILED
    return ServeOutcome.DRAINED if server.started else ServeOutcome.NOT_STARTED


def _load(runtime_config: RuntimeConfig, cloud: CloudConfig) -> Any:
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
