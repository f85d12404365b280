"""A real OpenAI-compatible server: llama.cpp's, serving the embedded Gemma-3-270M on 127.0.0.1.

The base model rarely writes a parseable answer line, so the round trip asserts the protocol:
the request is accepted and answered, and the reply is either an offered letter or a typed
parse error that falls back to the local answer and queues the question. (The correct-answer
path is asserted against the simulated cloud.)
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from cloud_client.client import CloudClient
from cloud_client.config import CloudConfig
from cloud_client.errors import AnswerParseError
from edge_runtime.escalation import Escalator
from edge_runtime.question import make_question
from tests.threads import TEST_THREADS

HANG_GUARD = 180  # seconds for the server to come up; only against hangs
QUESTION = make_question(
    "Which gas do plants absorb from the air for photosynthesis?",
    ["Oxygen", "Carbon dioxide", "Nitrogen", "Helium"],
    id="llama-server-q1",
    domain="science",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; its base URL (with /v1)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path),
               "--chat_format", "gemma", "--host", "127.0.0.1", "--port", str(port),
               "--n_threads", str(TEST_THREADS), "--n_ctx", "2048"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if requests.get(url + "/models", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer /v1/models:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=HANG_GUARD)


def _config(build: Callable[..., CloudConfig], url: str) -> CloudConfig:
    # generation on 2 threads takes seconds, not the fault matrix's fractions of one
    return build(url, read_timeout=120.0, deadline=150.0, retries=0, max_tokens=8)


def test_round_trip_with_llama_cpp_server(
    llama_server: str, cloud_config: Callable[..., CloudConfig]
) -> None:
    with CloudClient(_config(cloud_config, llama_server)) as client:
        model = client.model_name()  # no model configured: the first one listed
        assert model.endswith(".gguf")
        try:
            answer = client.ask(QUESTION.text, QUESTION.choices)
        except AnswerParseError as exc:  # the base model wrote no offered letter
            assert exc.attempts == 1 and exc.kind == "parse_error"
        else:
            assert answer.letter in QUESTION.letters and answer.attempts == 1
            assert answer.text.strip()


def test_escalation_to_llama_cpp_server_answers_or_queues(
    llama_server: str, cloud_config: Callable[..., CloudConfig]
) -> None:
    config = _config(cloud_config, llama_server)
    with Escalator.from_config(config) as escalator:
        result = escalator.escalate(QUESTION, "A", record_id=QUESTION.id or "")
        entries = escalator.outbox.entries() if escalator.outbox else []
    assert result.attempts == 1
    if result.error_kind is None:
        assert (result.source.value, result.escalation.value) == ("cloud", "sent")
        assert result.answer in QUESTION.letters and entries == []
    else:  # the only failure a working server may cause: an unreadable answer
        assert result.error_kind == "parse_error"
        assert (result.source.value, result.escalation.value, result.answer) == (
            "edge_fallback", "queued", "A",
        )  # fmt: skip
        (entry,) = entries
        assert (entry.record_id, entry.reason, entry.status.value) == (
            QUESTION.id, "parse_error", "pending",
        )  # fmt: skip


def test_distillation_teacher_on_llama_cpp_server(llama_server: str, tmp_path: Path) -> None:
    """The chain's endpoint teacher against a real server: seeded samples at T = 0.7."""
    from converter.chain.context import Context
    from converter.chain.teacher import UNREADABLE, sample_with_endpoint
    from converter.train_config import ChainConfig

    config = ChainConfig(
        teacher=llama_server, teacher_max_tokens=16, buffer=1, n_samples=2, group=1, seed=3
    )
    ctx = Context(tmp_path / "work", config, None, False)
    question = make_question(QUESTION.text, QUESTION.choices, id="teacher-q1", answer="B")
    facts = sample_with_endpoint(ctx, 0, llama_server, [question])
    (row,) = [json.loads(x) for x in (ctx.round_dir(0) / "samples.jsonl").read_text().splitlines()]
    assert facts["model"].endswith(".gguf)") and facts["n"] == 1
    assert len(row["samples"]) == 2
    assert set(row["samples"]) <= {*QUESTION.letters, UNREADABLE}
    assert row["fraction_correct"] == row["samples"].count("B") / 2
    assert facts["unreadable_samples"] == row["samples"].count(UNREADABLE)
