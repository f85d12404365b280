"""``foggen serve`` as a real subprocess on 127.0.0.1 with the real embedded model."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from benchmarks.data import load_questions
from benchmarks.service_process import ServiceProcess, serve
from edge_runtime.service.decision_log import read_log

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY_LIMIT = 200_000


def _env(cli_env: dict[str, str], tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **cli_env,
        "FOGGEN_DECISION_LOG": str(tmp / "decisions.jsonl"),
        "FOGGEN_OUTBOX": str(tmp / "outbox.sqlite3"),
        **extra,
    }


@pytest.fixture(scope="module")
def service_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service")


@pytest.fixture(scope="module")
def served(model_home: Path, service_dir: Path) -> Iterator[ServiceProcess]:
    """One service for the module: token on, queue size 1, a 200 kB body limit."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("FOGGEN_")}
    env.update(FOGGEN_HOME=str(model_home), FOGGEN_THREADS="2", FOGGEN_API_TOKEN=TOKEN)
    env = _env(env, service_dir, FOGGEN_LOG_QUESTIONS="redact")
    args = ("--queue-size", "1", "--max-body-bytes", str(BODY_LIMIT))
    with serve(*args, env=env, log_dir=service_dir) as service:
        yield service


def _ask(url: str, body: dict[str, Any], **kwargs: Any) -> requests.Response:
    return requests.post(f"{url}/v1/answer", json=body, headers=AUTH, timeout=120, **kwargs)


# -- answers, health, auth ---------------------------------------------------------------------
def test_answers_with_a_decision_record_and_logs_it(
    served: ServiceProcess, service_dir: Path, model_path: Path, model_home: Path
) -> None:
    from edge_runtime.models import file_sha256

    body = {"question": "Mail ann@example.com: which gas do plants absorb?", "id": "plants-1",
            "choices": ["Oxygen", "Carbon dioxide", "Nitrogen"], "domain": "science"}  # fmt: skip
    reply = _ask(served.url, body)
    assert reply.status_code == 200, reply.text
    record = reply.json()
    assert record["schema_version"] == 1 and record["id"] == "plants-1"
    assert record["answer"] in "ABC" and record["domain"] == "science"
    assert record["model_sha256"] == file_sha256(model_path, home=model_home)
    assert record["escalation"] in ("none", "unavailable")  # no cloud configured
    entries = {e["id"]: e for e in read_log(service_dir / "decisions.jsonl")}
    assert entries["plants-1"]["answer"] == record["answer"]
    assert entries["plants-1"]["question"].startswith("Mail [email]:")  # redacted in the log


def test_tau_and_signal_per_request(served: ServiceProcess) -> None:
    body = {"question": "2 + 2 = ?", "choices": ["3", "4", "5"], "tau": 0.0, "signal": "letter"}
    record = _ask(served.url, body).json()
    assert (record["tau"], record["signal"], record["route"]) == (0.0, "letter", "local")


def test_health_and_readiness_are_open_and_reveal_nothing(served: ServiceProcess) -> None:
    health = requests.get(f"{served.url}/healthz", timeout=10)
    ready = requests.get(f"{served.url}/readyz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["cloud"] == {"breaker": None, "outbox_pending": None}
    for text in (health.text, ready.text):
        assert "sha256" not in text and "/" not in text and TOKEN not in text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": TOKEN}])  # fmt: skip
def test_token_is_required_on_the_api_and_metrics(
    served: ServiceProcess, headers: dict[str, str]
) -> None:
    body = {"question": "2 + 2 = ?", "choices": ["3", "4"]}
    answer = requests.post(f"{served.url}/v1/answer", json=body, headers=headers, timeout=30)
    metrics = requests.get(f"{served.url}/metrics", headers=headers, timeout=30)
    for reply in (answer, metrics):
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == "Bearer"
        assert reply.json()["error_kind"] == "unauthorized"


# -- bad input is a 4xx with a JSON error ------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"{not json", 400, "bad_json"),
        (b'{"question": "q"}', 422, "invalid_request"),
        (b'{"question": "q", "choices": "ab"}', 422, "invalid_request"),
        (b'{"question": "q", "choices": ["only one"]}', 422, "invalid_question"),
        (b'{"question": "q", "choices": ["same", "same"]}', 422, "invalid_question"),
        (b'{"question": " ", "choices": ["a", "b"]}', 422, "invalid_question"),
        (b'{"question": "q", "choices": ["a", "b"], "tau": 2}', 422, "invalid_request"),
        (b'{"question": "q", "choices": ["a", "b"], "signal": "calibrated"}', 400, "config"),
        (json.dumps({"question": "word " * 5000, "choices": ["a", "b"]}).encode(), 422,
         "prompt_too_long"),
    ],
)  # fmt: skip
def test_bad_requests_get_json_errors(
    served: ServiceProcess, body: bytes, status: int, kind: str
) -> None:
    reply = requests.post(f"{served.url}/v1/answer", data=body, headers=AUTH, timeout=60)
    assert reply.status_code == status, reply.text
    assert reply.json()["error_kind"] == kind and reply.json()["error"]


def test_calibrated_without_calibrator_says_what_to_do(served: ServiceProcess) -> None:
    body = {"question": "q", "choices": ["a", "b"], "signal": "calibrated"}
    assert "calibrator" in _ask(served.url, body).json()["error"]


@pytest.mark.parametrize("chunked", [False, True])
def test_body_over_the_limit_is_413(served: ServiceProcess, chunked: bool) -> None:
    body = json.dumps({"question": "x" * BODY_LIMIT, "choices": ["a", "b"]}).encode()
    data: Any = iter([body[i : i + 8192] for i in range(0, len(body), 8192)]) if chunked else body
    reply = requests.post(f"{served.url}/v1/answer", data=data, headers=AUTH, timeout=60)
    assert reply.status_code == 413 and reply.json()["error_kind"] == "body_too_large"


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_report_requests_latency_routing_and_model(served: ServiceProcess) -> None:
    assert _ask(served.url, {"question": "1 + 1 = ?", "choices": ["2", "3"]}).status_code == 200
    text = requests.get(f"{served.url}/metrics", headers=AUTH, timeout=30).text
    assert 'foggen_requests_total{endpoint="/v1/answer",status="200"}' in text
    assert 'foggen_request_duration_seconds_bucket{endpoint="/v1/answer",le="+Inf"}' in text
    assert "foggen_decisions_total{" in text and "foggen_routed_fraction " in text
    assert "foggen_outbox_depth 0.0" in text and "foggen_ready 1.0" in text
    assert 'foggen_model_info{file="gemma-3-270m-q4_k_m.gguf"' in text
    assert 'quantization="MOSTLY_Q4_K_M"' in text
    decisions = [line for line in text.splitlines() if line.startswith("foggen_decisions_total")]
    counts = {line: float(line.rsplit(" ", 1)[1]) for line in decisions}
    routed = sum(n for line, n in counts.items() if 'route="cloud"' in line)
    assert _value(text, "foggen_routed_fraction") == pytest.approx(routed / sum(counts.values()))


# -- the bounded queue -------------------------------------------------------------------------
def _long_question(n: int) -> dict[str, Any]:
    """A slow request: a law question of ~1,000 prompt tokens (no sleeps in product code)."""
    question = max(load_questions("law", "eval"), key=lambda q: len(q.text))
    return {"question": f"({n}) {question.text}", "choices": list(question.choices)}


def test_queue_full_is_429_with_retry_after(served: ServiceProcess) -> None:
    n = 6  # capacity is 2 (one answered, queue size 1)
    barrier = threading.Barrier(n)

    def post(i: int) -> requests.Response:
        barrier.wait()
        return _ask(served.url, _long_question(i))

    with ThreadPoolExecutor(n) as pool:
        replies = list(pool.map(post, range(n)))
    statuses = sorted(r.status_code for r in replies)
    assert set(statuses) == {200, 429}, statuses
    assert statuses.count(200) >= 1 and statuses.count(429) >= n - 2 - 1
    refused = next(r for r in replies if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1" and refused.json()["error_kind"] == "queue_full"


# -- SIGTERM drain ----------------------------------------------------------------------------
def _wait_for(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def test_sigterm_finishes_in_flight_requests_then_exits_0(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    with serve(env=_env(cli_env, tmp_path), log_dir=tmp_path) as service:
        with ThreadPoolExecutor(1) as pool:
            body = {**_long_question(0), "id": "in-flight"}
            pending = pool.submit(requests.post, f"{service.url}/v1/answer", json=body, timeout=120)
            _wait_for(lambda: _metric(service.url, "foggen_queue_depth") >= 1)
            service.process.send_signal(signal.SIGTERM)
            reply = pending.result()
        assert reply.status_code == 200 and reply.json()["id"] == "in-flight"
        assert service.process.wait(timeout=60) == 0
    assert [e["id"] for e in read_log(tmp_path / "decisions.jsonl")] == ["in-flight"]
    assert "Traceback" not in service.stderr.read_text()


def _metric(url: str, name: str) -> float:
    return _value(requests.get(f"{url}/metrics", timeout=10).text, name)


def _value(text: str, name: str) -> float:
    return float(text.split(f"\n{name} ")[1].split()[0])
