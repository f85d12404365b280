"""Fog-tier parts without a model: reading chat MCQs, paths, provenance, idempotency, sampling."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cloud_client.errors import HopRefusedError, error_for_status
from cloud_client.protocol import chat_request, reply_provenance, user_message
from edge_runtime.decoding import tempered_pick
from edge_runtime.errors import ConfigError
from edge_runtime.fog import Node, Trail, check_path, upstream_hops
from edge_runtime.record import Hop
from edge_runtime.service.chat_api import parse_chat_request, read_mcq
from edge_runtime.service.errors import IdempotencyKeyReusedError, NotAQuestionError
from edge_runtime.service.idempotency import Idempotency, IdempotencyStore


def test_reads_our_own_prompt_and_the_plain_format() -> None:
    ours = user_message("Which gas do plants absorb?", ["Oxygen", "Carbon dioxide"])
    assert read_mcq(ours) == ("Which gas do plants absorb?", ("Oxygen", "Carbon dioxide"))
    plain = "Which gas do plants absorb?\nIt is a trace gas.\n\nA. Oxygen\nB) Carbon dioxide\n"
    assert read_mcq(plain) == (
        "Which gas do plants absorb?\nIt is a trace gas.",
        ("Oxygen", "Carbon dioxide"),
    )


@pytest.mark.parametrize(
    "text",
    [
        "Hello, how are you?",
        "A. only options\nB. no question",
        "Question?\nA. one option only",
        "Question?\nA. first\nC. skipped B",
        "Question?\nA. first\nB. second\nAnswer with the letter.",  # options must come last
        "",
    ],
)
def test_anything_else_is_not_a_question(text: str) -> None:
    with pytest.raises(NotAQuestionError, match="not a multiple-choice question"):
        read_mcq(text)


def test_chat_request_accepts_openai_fields_and_reads_the_extension() -> None:
    body = chat_request(
        "Q?",
        ["x", "y"],
        model="m",
        max_tokens=8,
        temperature=0.7,
        seed=3,
        extension={"domain": "math", "id": "r1", "path": ["a1"], "hops": 1},
    )
    body.update(top_p=0.9, user="kiosk-7", logprobs=False)  # ignored, as OpenAI servers do
    chat = parse_chat_request(json.dumps(body).encode())
    assert chat.extension.domain == "math" and chat.trail() == Trail(("a1",))
    sampling = chat.sampling()
    assert sampling is not None and (sampling.temperature, sampling.seed) == (0.7, 3)
    greedy = parse_chat_request(b'{"messages": [{"role": "user", "content": "x"}]}')
    assert greedy.sampling() is None and greedy.trail() == Trail()


def test_a_path_through_this_node_or_too_long_is_refused() -> None:
    node, other = Node.new("gateway"), Node.new("kiosk")
    assert check_path(Trail((other.id,)), node, max_hops=4) is None
    loop = check_path(Trail((other.id, node.id)), node, max_hops=4)
    assert loop is not None and loop.kind == "loop_detected" and "gateway" in loop.message
    long = check_path(Trail(("a", "b", "c", "d")), node, max_hops=4)
    assert long is not None and long.kind == "too_many_hops"
    assert check_path(Trail(), node, max_hops=4, hops=9) is not None  # a count alone bounds it
    assert Node.new("x").id != Node.new("x").id  # ids tell two nodes of one name apart


def test_reply_provenance_is_sanitised_and_a_plain_cloud_is_one_hop() -> None:
    payload = {"foggen": {"record": {"provenance": [
        {"node": "gw" * 200, "model": "m", "route": "cloud", "signal": "calibrated",
         "score": 0.4, "answer": "B", "ms": 12, "secret": "dropped"},
        {"node": "cloud", "score": "NaN-ish", "ms": True},
    ] * 20}}}  # fmt: skip
    hops = reply_provenance(payload)
    assert len(hops) == 16 and len(hops[0]["node"]) == 128 and "secret" not in hops[0]
    assert hops[1]["score"] is None and hops[1]["ms"] is None and hops[1]["model"] is None
    assert reply_provenance({"choices": []}) == () and reply_provenance([1]) == ()
    (plain,) = upstream_hops((), url="https://api.example.com:8443/v1", model="big", letter="C",
                             ms=None)  # fmt: skip
    assert plain == Hop("api.example.com:8443", "big", None, None, None, "C", None)


def test_508_is_a_hop_refusal_that_is_not_retried() -> None:
    error = error_for_status(508, url="http://gw/v1", detail="loop_detected")
    assert isinstance(error, HopRefusedError)
    assert not error.retryable and not error.unhealthy and error.permanent


def test_idempotency_store_is_bounded_by_count_and_age(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "idem.sqlite3", max_entries=3, ttl=3600)
    for i in range(5):
        store.put(f"k{i}", "fp", {"i": i})
        time.sleep(0.002)
    assert len(store) == 3 and store.get("k0") is None and store.get("k4") == ("fp", {"i": 4})
    assert (tmp_path / "idem.sqlite3").stat().st_mode & 0o777 == 0o600
    store.close()
    reopened = IdempotencyStore(tmp_path / "idem.sqlite3", max_entries=3, ttl=0.001)
    time.sleep(0.01)
    assert reopened.get("k4") is None  # past its age: not replayed
    reopened.close()


def test_tempered_pick_is_reproducible_and_follows_the_temperature() -> None:
    dist = {11: 0.6, 22: 0.3, 33: 0.1}

    def draws(seed: int, temperature: float, n: int = 4000) -> Counter[int]:
        pick = tempered_pick(temperature, np.random.default_rng(seed))
        return Counter(pick(dist) for _ in range(n))

    assert draws(1, 1.0, 50) == draws(1, 1.0, 50)
    at_one, hot = draws(2, 1.0), draws(3, 4.0)
    assert abs(at_one[11] / 4000 - 0.6) < 0.04  # T = 1: the model's own distribution
    expected = np.array([0.6, 0.3, 0.1]) ** 0.25
    assert abs(hot[11] / 4000 - expected[0] / expected.sum()) < 0.04  # flatter at T = 4
    with pytest.raises(ValueError, match="temperature"):
        tempered_pick(0.0, np.random.default_rng(0))


def test_an_unusable_idempotency_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match="FOGGEN_IDEMPOTENCY_STORE"):
        IdempotencyStore(tmp_path / "file" / "idem.sqlite3", max_entries=3, ttl=60)


def test_waiters_share_the_first_answer_and_an_error_is_not_kept(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "idem.sqlite3", max_entries=10, ttl=60)
    idem, pool, started = Idempotency(store), ThreadPoolExecutor(4), []
    release = threading.Event()

    def submit(fail: bool) -> Any:
        def start(keep: Any) -> Future[dict[str, Any]]:
            def work() -> dict[str, Any]:
                started.append(1)
                release.wait(5)
                if fail:
                    raise RuntimeError("model failed")
                keep({"answer": "B"})
                return {"answer": "B"}

            return pool.submit(work)

        return start

    async def scenario() -> None:
        first = asyncio.create_task(idem.answer("k", "fp", submit(fail=True)))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(idem.answer("k", "fp", submit(fail=True)))
        await asyncio.sleep(0.05)
        release.set()
        for task in (first, waiter):
            with pytest.raises(RuntimeError, match="model failed"):
                await task
        assert len(started) == 1  # the waiter did not start its own
        assert await idem.answer("k", "fp", submit(fail=False)) == ({"answer": "B"}, False)
        assert await idem.answer("k", "fp", submit(fail=False)) == ({"answer": "B"}, True)
        with pytest.raises(IdempotencyKeyReusedError):
            await idem.answer("k", "another request", submit(fail=False))

    asyncio.run(scenario())
    assert len(started) == 2
    pool.shutdown()
    store.close()
