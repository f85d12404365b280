"""A FAULT-INJECTING test cloud on 127.0.0.1: real sockets that misbehave on cue.

For the fault matrix (``testkit.fault_matrix``) and the tests: the failures a real server
cannot be asked to produce. :func:`fault_cloud` is an HTTP server that answers the n-th chat
completion with the n-th scripted :class:`Fault` (the last one repeats); :func:`refused_url`
is a bound port nobody listens on; :func:`full_backlog_url` is a listening socket whose
accept queue is full, so a connect times out - all on loopback, never a non-routable address.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from benchmarks.local_http import LOOPBACK, JSONHandler, base_url, serve

STALL_SECONDS = 30.0  # how long a stalled reply hangs at most (cut short when the server stops)

# CloudConfig settings sized for these servers, so a fault costs a second, not a minute:
# 3 attempts at most, 3 failed attempts open the breaker
FAST_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {
        "connect_timeout": 0.25,
        "read_timeout": 0.5,
        "deadline": 3.0,
        "retries": 2,
        "backoff": 0.02,
        "backoff_max": 0.1,
        "breaker_failures": 3,
        "breaker_cooldown": 30.0,
    }
)


@dataclass(frozen=True)
class Fault:
    """One scripted reply to a chat completion."""

    status: int = 200
    content: str = "Final answer: B"  # the assistant's message, in a well-formed completion
    body: bytes | None = None  # a raw body instead (malformed or wrong-shape JSON, errors)
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before the reply starts
    stall: bool = False  # send the headers and part of the body, then stop
    echo_auth: bool = False  # put the request's Authorization header in the body (leak test)


OK = Fault()


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() when the request arrived
    headers: dict[str, str]
    body: object


@dataclass
class FaultCloud:
    faults: Sequence[Fault]
    models: tuple[str, ...] = ("fault-model",)  # what GET /v1/models lists
    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, hit: Hit) -> Fault:
        with self.lock:
            self.hits.append(hit)
            return self.faults[min(len(self.hits), len(self.faults)) - 1]


def completion_body(content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    payload = {
        "object": "chat.completion",
        "model": "fault-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    return json.dumps(payload).encode("utf-8")


class _Handler(JSONHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        cloud: FaultCloud = self.server.state
        self.send_json(200, {"object": "list", "data": [{"id": m} for m in cloud.models]})

    def do_POST(self) -> None:  # noqa: N802
        cloud: FaultCloud = self.server.state
        hit = Hit(time.monotonic(), dict(self.headers.items()), self.read_json())
        fault = cloud.next_fault(hit)
        if fault.delay and cloud.stop.wait(fault.delay):
            self.close_connection = True
            return
        body = fault.body if fault.body is not None else completion_body(fault.content)
        if fault.echo_auth:
            body += b" " + self.headers.get("Authorization", "").encode("utf-8")
        if not fault.stall:
            return self.send_body(fault.status, body, headers=fault.headers)
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 3])
        self.wfile.flush()
        cloud.stop.wait(STALL_SECONDS)
        self.close_connection = True


@contextmanager
def fault_cloud(
    faults: Sequence[Fault], *, models: tuple[str, ...] = ("fault-model",)
) -> Iterator[FaultCloud]:
    """Serve ``faults`` in order on 127.0.0.1 (the last one repeats) while in the block."""
    if not faults:
        raise ValueError("give at least one fault")
    cloud = FaultCloud(tuple(faults), models)
    with serve(_Handler, cloud) as server:
        cloud.url = base_url(server)
        try:
            yield cloud
        finally:
            cloud.stop.set()  # release stalled and delayed replies


@contextmanager
def refused_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: every connect is refused."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}/v1"


@contextmanager
def full_backlog_url() -> Iterator[str]:
    """A loopback port whose accept queue is full: a connect waits until it times out."""
    with ExitStack() as stack:
        server = stack.enter_context(socket.socket())
        server.bind((LOOPBACK, 0))
        server.listen(0)  # room for one pending connection, never accepted
        filler = stack.enter_context(socket.socket())
        filler.connect(server.getsockname())
        yield f"http://{LOOPBACK}:{server.getsockname()[1]}/v1"
