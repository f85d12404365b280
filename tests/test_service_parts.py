"""The service's parts without a model: config, decision log, admission, request parsing."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge_runtime.errors import ConfigError
from edge_runtime.question import make_question
from edge_runtime.record import AnswerSource, DecisionRecord, Escalation, Latency
from edge_runtime.routing.rule import Route
from edge_runtime.service.config import QuestionLogging, ServiceConfig
from edge_runtime.service.decision_log import DecisionLog, log_files, read_log


def _record(record_id: str) -> DecisionRecord:
    return DecisionRecord(
        id=record_id, domain=None, answer="A", local_answer="A", answer_source=AnswerSource.EDGE,
        route=Route.LOCAL, route_forced=False, escalation=Escalation.NONE, error_kind=None,
        confidence=1.0, signal="bucket", score=1.0, p_correct=None, p_correct_version=None,
        bucket_probs=None, letter_probs=None, tau=0.5, profile=None, mode="fast",
        output="Confidence: 1.0\nFinal answer: A",
        latency_ms=Latency(edge=1.0, cloud=None, total=1.0), model_sha256="0" * 64,
    )  # fmt: skip


QUESTION = make_question("Mail ann@example.com or call (555) 123-4567?", ["Yes", "No"])


# -- config ------------------------------------------------------------------------------------
def test_config_reads_env_and_keeps_the_token_out_of_repr_and_flags() -> None:
    import argparse

    from foggen.flags import add_flags

    config = ServiceConfig.from_env(
        {"FOGGEN_API_TOKEN": "t0ken", "FOGGEN_PORT": "0", "FOGGEN_LOG_QUESTIONS": "omit"}
    )
    assert (config.api_token, config.port, config.host) == ("t0ken", 0, "127.0.0.1")
    assert config.log_questions is QuestionLogging.OMIT
    assert "t0ken" not in repr(config)
    parser = argparse.ArgumentParser()
    add_flags(parser, ServiceConfig)
    assert "--port" in parser.format_help()
    assert not any("token" in a.dest for a in parser._actions)


@pytest.mark.parametrize(
    "env",
    [{"FOGGEN_PORT": "70000"}, {"FOGGEN_QUEUE_SIZE": "-1"}, {"FOGGEN_API_TOKEN": "  "},
     {"FOGGEN_LOG_QUESTIONS": "some"}, {"FOGGEN_FLUSH_INTERVAL": "0"}],
)  # fmt: skip
def test_config_rejects_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        ServiceConfig.from_env(env)


def test_decision_log_defaults_beside_the_outbox(tmp_path: Path) -> None:
    config = ServiceConfig()
    assert config.decision_log_path({"FOGGEN_HOME": str(tmp_path)}) == tmp_path / "decisions.jsonl"
    assert config.decision_log_path({"XDG_DATA_HOME": str(tmp_path)}) == (
        tmp_path / "foggen" / "decisions.jsonl"
    )


# -- decision log ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "question"),
    [(QuestionLogging.FULL, QUESTION.text),
     (QuestionLogging.REDACT, "Mail [email] or call [phone]?"),
     (QuestionLogging.OMIT, None)],
)  # fmt: skip
def test_decision_log_writes_one_line_per_decision(
    tmp_path: Path, mode: QuestionLogging, question: str | None
) -> None:
    path = tmp_path / "d.jsonl"
    log = DecisionLog(path, max_bytes=1_000_000, keep=2, questions=mode)
    log.append(_record("q1"), QUESTION)
    log.close()
    (entry,) = list(read_log(path))
    assert entry["id"] == "q1" and entry["schema_version"] == 5 and "logged_at" in entry
    assert entry.get("question") == question
    assert ("choices" in entry) is (question is not None)
    assert path.stat().st_mode & 0o777 == 0o600


def test_decision_log_rotates_and_keeps_only_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    size = len(json.dumps(DecisionLog(path, max_bytes=1, keep=0).entry(_record("q00"), QUESTION)))
    log = DecisionLog(path, max_bytes=3 * size, keep=2)  # about two lines per file
    for n in range(12):
        log.append(_record(f"q{n:02d}"), QUESTION)
    log.close()
    assert [p.name for p in log_files(path)] == ["d.jsonl.2", "d.jsonl.1", "d.jsonl"]
    ids = [entry["id"] for entry in read_log(path)]
    assert ids == sorted(ids) and ids[-1] == "q11" and "q00" not in ids and len(ids) < 12


def test_torn_last_line_is_skipped_on_read_and_cut_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "d.jsonl"
    log = DecisionLog(path, max_bytes=1_000_000, keep=1)
    log.append(_record("q1"), QUESTION)
    log.close()
    with open(path, "ab") as file:
        file.write(b'{"schema_version": 1, "id": "q2", "ans')  # a write cut by kill -9
    with caplog.at_level(logging.WARNING):
        assert [e["id"] for e in read_log(path)] == ["q1"]
    assert "torn" in caplog.text
    log = DecisionLog(path, max_bytes=1_000_000, keep=1)
    log.append(_record("q3"), QUESTION)
    log.close()
    assert [e["id"] for e in read_log(path)] == ["q1", "q3"]
    assert path.read_bytes().endswith(b"}\n")


def test_foggen_log_reads_rotated_files_skips_a_torn_line_and_summarises(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.jsonl"
    size = len(json.dumps(DecisionLog(path, max_bytes=1, keep=0).entry(_record("q00"), QUESTION)))
    log = DecisionLog(path, max_bytes=3 * size, keep=5)
    for n in range(6):
        log.append(_record(f"q{n:02d}"), QUESTION)
    log.close()
    with open(path, "ab") as file:
        file.write(b'{"id": "torn')
    foggen = [sys.executable, "-m", "foggen", "log", "--decision-log", str(path)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*foggen, *args], capture_output=True, text=True, timeout=120)

    everything = run("--last", "0", "--json")
    assert everything.returncode == 0, everything.stderr
    assert [json.loads(x)["id"] for x in everything.stdout.splitlines()] == [
        f"q{n:02d}" for n in range(6)
    ]  # oldest first across the rotated files; the torn line skipped
    assert "torn" in everything.stderr
    last = run("--last", "2")
    assert [x.split()[1] for x in last.stdout.splitlines()] == ["q04", "q05"]
    assert "route=local" in last.stdout and "answer=A" in last.stdout
    summary = json.loads(run("--summary", "--json").stdout)
    assert summary["entries"] == 6 and summary["route"] == {"local": 6}
    assert summary["routed_fraction"] == 0.0 and summary["escalation"] == {"none": 6}
    assert "6 entries" in run("--summary").stdout
    missing = run("--decision-log", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 2 and "no decision log" in missing.stderr
    assert run("--last", "-1").returncode == 2


# -- admission ---------------------------------------------------------------------------------
def test_admission_refuses_beyond_capacity_and_frees_slots() -> None:
    from edge_runtime.service.admission import Admission
    from edge_runtime.service.errors import QueueFullError

    release = threading.Event()

    async def scenario() -> tuple[list[object], int]:
        admission = Admission(queue_size=1, retry_after=3)
        running = [asyncio.ensure_future(admission.run(release.wait)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFullError) as refused:
            await admission.run(lambda: 1)
        assert refused.value.headers == {"Retry-After": "3"}
        release.set()
        results = list(await asyncio.gather(*running))
        after = await admission.run(lambda: 42)
        admission.shutdown()
        return [*results, after], admission.admitted

    results, admitted = asyncio.run(scenario())
    assert results == [True, True, 42] and admitted == 0


# -- request parsing ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"{", "bad_json"), (b"[1]", "invalid_request"), (b'{"question": 1}', "invalid_request"),
     (b'{"question": "q", "choices": ["a", "b"], "tau": 1.5}', "invalid_request"),
     (b'{"question": "q", "choices": ["a", "b"], "colour": 1}', "invalid_request"),
     (b'{"question": "q", "choices": ["a", "b"], "signal": "vibes"}', "invalid_request")],
)  # fmt: skip
def test_parse_answer_request_rejects(body: bytes, kind: str) -> None:
    from edge_runtime.service.app import parse_answer_request
    from edge_runtime.service.errors import BadRequestError

    with pytest.raises(BadRequestError) as raised:
        parse_answer_request(body)
    assert raised.value.kind == kind and raised.value.details


def test_serve_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from foggen.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve"]) == 2
    assert "pip install 'foggen-edge[serve]'" in capsys.readouterr().err


def test_serve_exits_3_when_the_model_does_not_load(tmp_path: Path) -> None:
    import os
    import subprocess

    env = {
        **os.environ,
        "FOGGEN_MODEL": str(tmp_path / "missing.gguf"),
        "FOGGEN_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "foggen", "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("foggen serve: listening on http://127.0.0.1:")
    assert "model file not found" in done.stderr
