"""The simulated cloud: gold lookup by question hash, per-domain accuracy, determinism, labels."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from benchmarks.simulated_cloud import (
    DEFAULT_ACCURACY,
    AnswerBook,
    SimulatedCloud,
    SimulatedCloudConfig,
    simulated_cloud,
)
from cloud_client.protocol import chat_request
from edge_runtime.mcq import DOMAINS, load_questions

HANG_GUARD = 60


def test_default_accuracy_is_the_cards_cloud_only_column() -> None:
    card = {"finance": 69.5, "science": 72.7, "coding": 74.2, "law": 70.7, "math": 60.1,
            "kazakh": 95.8, "medical": 74.0}  # fmt: skip
    assert dict(DEFAULT_ACCURACY) == card
    assert dict(SimulatedCloudConfig().accuracy) == dict(DEFAULT_ACCURACY)


@pytest.fixture(scope="module")
def book() -> AnswerBook:
    return AnswerBook.bundled(SimulatedCloudConfig())


@pytest.mark.parametrize("domain", DOMAINS)
def test_per_domain_accuracy_over_the_bundled_questions(book: AnswerBook, domain: str) -> None:
    questions = [q for split in ("train", "eval") for q in load_questions(domain, split)]
    replies = [book.reply(q.text, q.choices) for q in questions]
    assert all(r.known for r in replies)
    assert all(r.correct == (r.letter == q.answer) for r, q in zip(replies, questions, strict=True))
    accuracy = 100.0 * sum(bool(r.correct) for r in replies) / len(replies)
    assert accuracy == pytest.approx(DEFAULT_ACCURACY[domain], abs=4.0)  # n >= 320 per domain


def test_replies_are_deterministic_per_question_and_seed(book: AnswerBook) -> None:
    questions = load_questions("math")[:100]
    again = AnswerBook.bundled(SimulatedCloudConfig())
    assert [book.reply(q.text, q.choices) for q in questions] == [
        again.reply(q.text, q.choices) for q in questions
    ]
    other_seed = AnswerBook(book.gold, SimulatedCloudConfig(seed=1))
    assert [book.reply(q.text, q.choices) for q in questions] != [
        other_seed.reply(q.text, q.choices) for q in questions
    ]


def test_accuracy_is_configurable_and_unknown_questions_get_a_fixed_letter(
    book: AnswerBook,
) -> None:
    always = AnswerBook(book.gold, SimulatedCloudConfig(accuracy={"math": 100.0}))
    never = AnswerBook(book.gold, SimulatedCloudConfig(accuracy={"math": 0.0}))
    for q in load_questions("math")[:30]:
        assert always.reply(q.text, q.choices).letter == q.answer
        assert never.reply(q.text, q.choices).letter != q.answer
    unknown = book.reply("Not in the data?", ["x", "y", "z"])
    assert not unknown.known and unknown.correct is None and unknown.letter in ("A", "B", "C")
    assert book.reply("Not in the data?", ["x", "y", "z"]) == unknown
    with pytest.raises(ValueError, match="percentage"):
        SimulatedCloudConfig(accuracy={"math": 101.0})


def test_it_speaks_openai_over_http(sim_cloud: SimulatedCloud) -> None:
    models = requests.get(sim_cloud.url + "/models", timeout=HANG_GUARD).json()
    assert models["data"][0]["id"] == "simulated-cloud"
    assert models["data"][0]["owned_by"] == "simulated cloud"
    q = load_questions("law")[0]
    body = chat_request(q.text, q.choices, model="anything", max_tokens=8)
    reply = requests.post(sim_cloud.url + "/chat/completions", json=body, timeout=HANG_GUARD)
    expected = sim_cloud.book.reply(q.text, q.choices).letter
    assert reply.json()["choices"][0]["message"]["content"] == f"Final answer: {expected}"
    bad = requests.post(sim_cloud.url + "/chat/completions", json={"messages": []}, timeout=9)
    assert bad.status_code == 400 and "simulated cloud" in bad.json()["error"]["message"]


def test_latency_is_added_per_completion() -> None:
    q = load_questions("coding")[0]
    body = chat_request(q.text, q.choices, model="m", max_tokens=8)
    with simulated_cloud(SimulatedCloudConfig(latency_ms=300)) as cloud:
        started = time.monotonic()
        requests.post(cloud.url + "/chat/completions", json=body, timeout=HANG_GUARD)
        assert time.monotonic() - started >= 0.3  # a lower bound: the sleep happened
        assert cloud.stats.requests == 1 and cloud.stats.known == 1


def test_the_command_prints_its_port_and_says_simulated_cloud() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.simulated_cloud", "--port", "0",
         "--accuracy", "math=100"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("simulated cloud listening on http://127.0.0.1:")
        port = int(line.rsplit("port ", 1)[1].rstrip(")\n"))
        q = load_questions("math")[0]
        body = chat_request(q.text, q.choices, model="m", max_tokens=8)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        reply = requests.post(url, json=body, timeout=HANG_GUARD).json()
        assert reply["choices"][0]["message"]["content"] == f"Final answer: {q.answer}"
    finally:
        proc.terminate()
        proc.wait(timeout=HANG_GUARD)
