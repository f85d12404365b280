"""``/readyz`` tells "no cloud configured" from "outbox unreadable" (and from a readable one).

The app is served in-process on 127.0.0.1 with its lifespan off: nothing loads, and the
session's runtime is lent to it (never closed by it), alone or with a real escalator whose
outbox is a real file, a directory, or a file that is not SQLite.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from benchmarks.service_process import wait_for
from cloud_client.config import CloudConfig
from edge_runtime.escalation import Escalator
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.service.state import Service

NOWHERE = "http://127.0.0.1:9"  # never called: /readyz reads the outbox, it asks no cloud


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Service]]:
    import uvicorn

    from edge_runtime.service.app import create_app
    from edge_runtime.service.config import ServiceConfig

    def never() -> EdgeRuntime:
        raise AssertionError("the lifespan is off: nothing loads")

    tmp = tmp_path_factory.mktemp("readiness")
    app = create_app(ServiceConfig(port=0, decision_log=str(tmp / "d.jsonl")), never)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app.state.service
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def readyz(
    served_app: tuple[str, Service], runtime: EdgeRuntime
) -> Iterator[Callable[[Escalator | None], requests.Response]]:
    """GET /readyz with the session's model loaded, behind ``escalator`` (None: no cloud)."""
    url, service = served_app

    def get(escalator: Escalator | None) -> requests.Response:
        lent = EdgeRuntime(runtime.engine, runtime.model, runtime.config, escalator)
        service.state.runtime = lent
        return requests.get(f"{url}/readyz", timeout=10)

    yield get
    service.state.runtime = None


def _escalator(cloud_config: Callable[..., CloudConfig], outbox: Path) -> Escalator:
    return Escalator.from_config(cloud_config(NOWHERE, outbox=str(outbox)))


def test_while_loading_the_outbox_is_not_known_yet(served_app: tuple[str, Service]) -> None:
    reply = requests.get(f"{served_app[0]}/readyz", timeout=10)
    assert reply.status_code == 503 and reply.json()["status"] == "loading"
    assert reply.json()["outbox"]["state"] == "not_loaded"


def test_no_cloud_configured_is_said_so(readyz: Callable[..., requests.Response]) -> None:
    reply = readyz(None)
    body: dict[str, Any] = reply.json()
    assert reply.status_code == 200 and body["status"] == "ready"
    assert body["cloud"] == {"breaker": None, "outbox_pending": None}
    assert body["outbox"]["state"] == "no_cloud" and body["outbox"]["error"] is None
    assert "no cloud is configured" in body["outbox"]["reason"]


@pytest.mark.parametrize("damage", ["directory", "not_sqlite"])
def test_an_unreadable_outbox_is_told_apart_from_no_cloud(
    readyz: Callable[..., requests.Response],
    cloud_config: Callable[..., CloudConfig],
    tmp_path: Path,
    damage: str,
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    if damage == "directory":
        outbox.mkdir()
        expected = "EISDIR"
    else:
        outbox.write_text("these are not the pages of a SQLite database\n" * 200)
        expected = "SQLITE_NOTADB" if sys.version_info >= (3, 11) else "DatabaseError"
    with _escalator(cloud_config, outbox) as escalator:
        reply = readyz(escalator)
    body: dict[str, Any] = reply.json()
    assert reply.status_code == 200  # a cloud's trouble never makes the node unready
    assert body["cloud"] == {"breaker": "closed", "outbox_pending": None}
    assert body["outbox"]["state"] == "unreadable" and body["outbox"]["error"] == expected
    assert "/" not in reply.text  # the path stays in the log: /readyz is open


def test_a_readable_outbox_reports_its_pending_count(
    readyz: Callable[..., requests.Response],
    cloud_config: Callable[..., CloudConfig],
    tmp_path: Path,
) -> None:
    with _escalator(cloud_config, tmp_path / "outbox.sqlite3") as escalator:
        reply = readyz(escalator)
    body: dict[str, Any] = reply.json()
    assert body["cloud"] == {"breaker": "closed", "outbox_pending": 0}
    assert body["outbox"] == {
        "state": "readable",
        "reason": "the outbox reads; cloud.outbox_pending counts its pending entries",
        "error": None,
    }
