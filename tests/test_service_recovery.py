"""The service across failures: readiness while loading, kill -9 under load, the outbox."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from benchmarks.service_process import serve, wait_for
from edge_runtime.mcq import load_questions
from edge_runtime.service.decision_log import read_log
from tests.threads import TEST_THREADS


def test_readiness_flips_only_when_the_model_is_warm(model_home: Path, tmp_path: Path) -> None:
    """In-process app with a loader the test holds back: /healthz at once, /readyz 503 -> 200."""
    import uvicorn

    from edge_runtime.config import RuntimeConfig
    from edge_runtime.runtime import EdgeRuntime
    from edge_runtime.service.app import create_app
    from edge_runtime.service.config import ServiceConfig

    release = threading.Event()

    def loader() -> EdgeRuntime:
        release.wait(60)
        return EdgeRuntime.load(RuntimeConfig(n_threads=TEST_THREADS), home=model_home)

    config = ServiceConfig(port=0, decision_log=str(tmp_path / "d.jsonl"))
    server = uvicorn.Server(uvicorn.Config(create_app(config, loader), log_config=None))
    sock = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        loading = requests.get(f"{url}/readyz", timeout=10)
        assert loading.status_code == 503 and loading.json()["status"] == "loading"
        early = requests.post(f"{url}/v1/answer", json={"question": "q", "choices": ["a", "b"]})
        assert early.status_code == 503 and early.headers["Retry-After"] == "1"
        release.set()
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200)
        body = {"question": "2 + 2 = ?", "choices": ["3", "4"]}
        assert requests.post(f"{url}/v1/answer", json=body, timeout=60).status_code == 200
    finally:
        release.set()
        server.should_exit = True
        thread.join(60)
    assert not thread.is_alive()


def _readyz(url: str) -> dict[str, Any]:
    reply: dict[str, Any] = requests.get(f"{url}/readyz", timeout=10).json()
    return reply


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load(url: str, stop: threading.Event, acked: dict[str, dict[str, object]]) -> None:
    """Post bundled science questions with unique ids until ``stop``; note every 200."""
    questions = load_questions("science", "eval")
    n = 0
    while not stop.is_set():
        question = questions[n % len(questions)]
        record_id = f"{threading.get_ident()}-{n}"
        body = {"question": question.text, "choices": list(question.choices), "id": record_id}
        n += 1
        try:
            reply = requests.post(f"{url}/v1/answer", json=body, timeout=60)
        except requests.RequestException:
            return  # the server was killed
        if reply.status_code == 200:
            acked[record_id] = reply.json()


def test_kill_9_under_load_loses_no_acknowledged_decision(
    cli_env: dict[str, str], tmp_path: Path, sim_cloud: object
) -> None:
    log_path, outbox_path = tmp_path / "decisions.jsonl", tmp_path / "outbox.sqlite3"
    env = {**cli_env, "FOGGEN_DECISION_LOG": str(log_path), "FOGGEN_OUTBOX": str(outbox_path),
           "FOGGEN_TAU": "1.0", "FOGGEN_CLOUD_RETRIES": "0", "FOGGEN_CLOUD_DEADLINE": "2",
           "FOGGEN_QUEUE_SIZE": "8"}  # fmt: skip
    dead_cloud = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens: every escalation queues
    acked: dict[str, dict[str, object]] = {}
    stop = threading.Event()
    with serve("--cloud-url", dead_cloud, env=env, log_dir=tmp_path) as service:
        clients = [
            threading.Thread(target=_load, args=(service.url, stop, acked)) for _ in range(4)
        ]
        for client in clients:
            client.start()
        wait_for(lambda: len(acked) >= 8)
        metrics = requests.get(f"{service.url}/metrics", timeout=30).text
        os.kill(service.process.pid, signal.SIGKILL)
        assert service.process.wait(30) == -signal.SIGKILL
        stop.set()
        for client in clients:
            client.join(60)
    assert "foggen_escalation_errors_total{" in metrics  # connection refused, then circuit open
    assert float(metrics.split("\nfoggen_outbox_depth ")[1].split()[0]) >= 1
    logged = {entry["id"] for entry in read_log(log_path)}
    assert set(acked) <= logged
    queued = {i for i, record in acked.items() if record["escalation"] == "queued"}
    assert queued, "tau 1.0 and a dead cloud: acknowledged decisions were queued"
    with sqlite3.connect(outbox_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        in_outbox = {row[0] for row in db.execute("SELECT record_id FROM outbox")}
    assert queued <= in_outbox

    # restart with the cloud back: the log goes on, the outbox is flushed in the background
    env.update(FOGGEN_FLUSH_INTERVAL="0.2")
    cloud_url = sim_cloud.url  # type: ignore[attr-defined]
    with serve("--cloud-url", cloud_url, env=env, log_dir=tmp_path) as service:
        body = {"question": "2 + 2 = ?", "choices": ["3", "4"], "id": "after-restart"}
        assert requests.post(f"{service.url}/v1/answer", json=body, timeout=60).status_code == 200
        wait_for(lambda: _readyz(service.url)["cloud"]["outbox_pending"] == 0)
        metrics = requests.get(f"{service.url}/metrics", timeout=30).text
    assert 'answer_source="cloud",escalation="sent",route="cloud"} 1.0' in metrics
    ids = [entry["id"] for entry in read_log(log_path)]
    assert set(acked) <= set(ids) and ids[-1] == "after-restart"
    with sqlite3.connect(outbox_path) as db:
        statuses = dict(db.execute("SELECT record_id, status FROM outbox").fetchall())
    assert all(statuses[i] == "answered" for i in queued)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux /dev/full")
def test_a_full_disk_is_a_503_never_an_unlogged_200(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "FOGGEN_DECISION_LOG": "/dev/full"}  # every write: ENOSPC
    with serve(env=env, log_dir=tmp_path) as service:
        body = {"question": "2 + 2 = ?", "choices": ["3", "4"]}
        reply = requests.post(f"{service.url}/v1/answer", json=body, timeout=60)
        assert reply.status_code == 503 and reply.json()["error_kind"] == "decision_log"
        assert "disk" in reply.json()["error"]
        assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200
