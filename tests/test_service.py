"""``foggen serve`` as a real subprocess on 127.0.0.1 with the real embedded model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from benchmarks.service_process import ServiceProcess, serve, wait_for
from edge_runtime.errors import InvalidQuestionError
from edge_runtime.mcq import load_questions
from edge_runtime.question import make_question
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.schema import LETTERS
from edge_runtime.service.decision_log import read_log
from tests.threads import TEST_THREADS

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
    env.update(
        FOGGEN_HOME=str(model_home), FOGGEN_THREADS=str(TEST_THREADS), FOGGEN_API_TOKEN=TOKEN
    )
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
    assert record["schema_version"] == 5 and record["id"] == "plants-1"
    assert record["answer"] in ("A", "B", "C") and record["domain"] == "science"
    assert record["model_sha256"] == file_sha256(model_path, home=model_home)
    # no cloud configured: a question routed up keeps its local answer, marked unavailable
    assert record["escalation"] == ("none" if record["route"] == "local" else "unavailable")
    entries = {e["id"]: e for e in read_log(service_dir / "decisions.jsonl")}
    assert entries["plants-1"]["answer"] == record["answer"]
    assert entries["plants-1"]["question"].startswith("Mail [email]:")  # redacted in the log
    shown = subprocess.run(
        [sys.executable, "-m", "foggen", "log", "--json", "--last", "0",
         "--decision-log", str(service_dir / "decisions.jsonl")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert {json.loads(x)["id"]: json.loads(x) for x in shown.stdout.splitlines()} == entries


def test_tau_and_signal_per_request(served: ServiceProcess) -> None:
    body = {"question": "2 + 2 = ?", "choices": ["3", "4", "5"], "tau": 0.0, "signal": "letter"}
    record = _ask(served.url, body).json()
    assert (record["tau"], record["signal"], record["route"]) == (0.0, "letter", "local")
    assert (record["orders"], record["order_answers"]) == (1, None)
    thorough = _ask(served.url, {**body, "orders": 3}).json()  # thorough mode, per request
    assert thorough["orders"] == 3 and len(thorough["order_answers"]) == 3
    assert thorough["score"] == thorough["letter_probs"][thorough["answer"]]
    assert _ask(served.url, {**body, "orders": 5}).status_code == 422  # at most 4 orders


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
    info = next(line for line in text.splitlines() if line.startswith("foggen_model_info{"))
    assert 'file="gemma-3-270m-q4_k_m.gguf"' in info and 'adaptive_threads="true"' in info
    assert 'quantization="MOSTLY_Q4_K_M"' in info and f'threads_max="{TEST_THREADS}"' in info
    assert 1 <= _value(text, "foggen_llama_threads") <= TEST_THREADS  # fewer on a busy machine
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
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1
    refused = next(r for r in replies if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1" and refused.json()["error_kind"] == "queue_full"


# -- SIGTERM drain ----------------------------------------------------------------------------
def test_sigterm_finishes_in_flight_requests_then_exits_0(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    with serve(env=_env(cli_env, tmp_path), log_dir=tmp_path) as service:
        with ThreadPoolExecutor(1) as pool:
            body = {**_long_question(0), "id": "in-flight"}
            pending = pool.submit(requests.post, f"{service.url}/v1/answer", json=body, timeout=120)
            wait_for(lambda: _metric(service.url, "foggen_queue_depth") >= 1)
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


# -- fuzz: malformed and hostile requests ------------------------------------------------------
ODD = [
    *("\u200b", "\u202e", "\ufeff", "\x00", "e\u0301", "\U0001f600", "\U0010ffff", "\r\n"),
    *("<start_of_turn>", "<end_of_turn>", "\\", '"', "Final answer: A", "Confidence: 1.0"),
]


def _odd_text() -> Any:
    from hypothesis import strategies as st

    pieces = st.one_of(st.sampled_from(ODD), st.text(max_size=20))
    return st.lists(pieces, min_size=1, max_size=6).map("".join)


def _repeat(char: str, limit: int) -> Any:
    """A string just over ``limit``, up to about twice it (built lazily: short reprs)."""
    from hypothesis import strategies as st

    return st.integers(limit + 1, 2 * limit).map(lambda n: char * n)


def _broken_fields() -> Any:
    """JSON objects that break at least one rule each (types, counts, lengths, names)."""
    from hypothesis import strategies as st

    from edge_runtime.question import MAX_OPTION_CHARS, MAX_QUESTION_CHARS
    from edge_runtime.service.app import AnswerRequest

    junk = st.one_of(
        st.booleans(),
        st.integers(),
        st.floats(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    )
    text, valid = _odd_text(), st.just(["Oxygen", "Carbon dioxide"])
    bad_tau = st.one_of(st.floats(min_value=1.0001), st.floats(max_value=-0.0001), st.text())
    bad_signal = st.text(max_size=12).filter(lambda s: s not in ("bucket", "letter", "calibrated"))
    unknown = text.filter(lambda k: k not in AnswerRequest.model_fields)
    dicts = st.fixed_dictionaries
    return st.one_of(
        dicts({"question": junk, "choices": valid}),
        dicts({"question": text, "choices": junk}),
        dicts({"choices": valid}),
        dicts({"question": text}),
        dicts({"question": text, "choices": st.lists(text, max_size=1)}),
        dicts({"question": text, "choices": st.lists(text, min_size=27, max_size=60)}),
        dicts({"question": _repeat("x", MAX_QUESTION_CHARS), "choices": valid}),
        dicts(
            {"question": text, "choices": _repeat("a", MAX_OPTION_CHARS).map(lambda a: [a, "b"])}
        ),
        dicts({"question": text, "choices": valid, "id": st.one_of(junk, _repeat("i", 300))}),
        dicts({"question": text, "choices": valid, "tau": bad_tau}),
        dicts({"question": text, "choices": valid, "signal": bad_signal}),
        st.tuples(unknown, junk).map(
            lambda kv: {"question": "q", "choices": ["a", "b"], kv[0]: kv[1]}
        ),
    )


def _hostile_bodies() -> Any:
    """Bodies that are wrong by construction: broken objects, bytes, hostile JSON."""
    from hypothesis import strategies as st

    return st.one_of(
        _broken_fields().map(lambda body: json.dumps(body).encode()),
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        st.just(b'{"question": "q", "choices": ["a", "b"], "tau": NaN}'),
        st.integers(1000, 5000).map(lambda n: b"[" * n + b"]" * n),
        st.just(b'{"question": "\\ud800", "choices": ["a", "b"]}'),
    )


@pytest.mark.slow
def test_fuzz_never_gives_a_5xx_and_the_service_keeps_answering(served: ServiceProcess) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    probe = {"question": "Which gas do plants absorb?", "choices": ["Oxygen", "Carbon dioxide"]}
    before = _ask(served.url, probe).json()
    session = requests.Session()
    session.headers.update(AUTH)
    seen: dict[int, int] = {}

    @settings(max_examples=1000, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(body=_hostile_bodies(), path=st.sampled_from(["/v1/answer"] * 9 + ["/v1/other"]))
    def hostile(body: bytes, path: str) -> None:
        reply = session.post(f"{served.url}{path}", data=body, timeout=60)
        seen[reply.status_code] = seen.get(reply.status_code, 0) + 1
        assert reply.status_code < 500, (body[:200], reply.text)
        assert reply.status_code != 200, body[:200]
        assert "error_kind" in reply.json() or reply.status_code in (404, 405)

    hostile()
    assert sum(seen.values()) >= 1000 and {400, 422} <= set(seen)
    after = _ask(served.url, probe).json()
    for key in ("answer", "confidence", "bucket_probs", "letter_probs"):
        assert after[key] == before[key]
    assert served.process.poll() is None


def test_odd_but_valid_questions_are_answered(served: ServiceProcess) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=12, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(question=_odd_text(), choices=st.lists(_odd_text(), min_size=2, max_size=5))
    def odd(question: str, choices: list[str]) -> None:
        try:  # the oracle: the library's own validation (empty after strip, duplicates: 422)
            make_question(question, choices)
        except InvalidQuestionError:
            expected = 422
        else:
            expected = 200
        reply = _ask(served.url, {"question": question, "choices": choices})
        assert reply.status_code == expected, reply.text
        statuses.append(reply.status_code)
        if expected == 200:
            assert reply.json()["answer"] in LETTERS[: len(choices)]

    statuses: list[int] = []
    odd()
    assert statuses.count(200) >= len(statuses) // 2, statuses  # most of them are answered


def test_a_named_model_of_another_family_serves_the_same_records(
    smollm2_runtime: EdgeRuntime, model_home: Path, tmp_path: Path
) -> None:
    """`foggen serve --model smollm2-135m`: the same API, log and `foggen log`, on a Llama."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("FOGGEN_")}
    env.update(
        FOGGEN_HOME=str(model_home), FOGGEN_THREADS=str(TEST_THREADS), FOGGEN_API_TOKEN=TOKEN
    )
    env = _env(env, tmp_path)
    with serve("--model", "smollm2-135m", env=env, log_dir=tmp_path) as service:
        body = {"question": "<|im_end|>2 + 2 = ?", "choices": ["3", "4"], "id": "s-1"}
        reply = _ask(service.url, body)
    assert reply.status_code == 200, reply.text
    record = reply.json()
    assert record["model_sha256"] == smollm2_runtime.model.file.sha256
    assert record["output"].startswith("Confidence: ") and record["local_answer"] in ("A", "B")
    shown = subprocess.run(
        [sys.executable, "-m", "foggen", "log", "--json", "--last", "0",
         "--decision-log", str(tmp_path / "decisions.jsonl")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert [json.loads(x)["id"] for x in shown.stdout.splitlines()] == ["s-1"]
