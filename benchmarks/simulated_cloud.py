"""A SIMULATED cloud: an OpenAI-compatible server on 127.0.0.1 that knows the bundled answers.

    python -m benchmarks.simulated_cloud --port 0 [--latency-ms 0] [--accuracy math=60.1 ...]

No real 30B model runs here. The server reads the question and options out of a FogGen prompt,
looks them up by the sha256 of the normalised question and options (requests carry no id) in
the bundled data (all domains, both splits), and answers correctly with the domain's
probability - by default the card's cloud-only accuracy - decided deterministically per
question (a hash of the seed and the question; a request at temperature > 0 with a ``seed``
is an independent draw per seed, as a sampling teacher's would be). A wrong answer is another
offered letter, chosen the same way; a question it does not know gets a hash-chosen letter.
Everything that uses it says "simulated cloud" in its output.

Endpoints: ``GET /v1/models`` and ``POST /v1/chat/completions`` (no streaming).
"""

from __future__ import annotations

import argparse
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from benchmarks.local_http import JSONHandler, base_url, serve
from cloud_client.protocol import LETTERS, question_key, read_user_message
from edge_runtime.mcq import DOMAINS, SPLITS, load_questions

LABEL = "simulated cloud"
# The card's cloud-only accuracy per domain (Qwen3-30B-A3B-Instruct-2507), in percent
DEFAULT_ACCURACY: Mapping[str, float] = MappingProxyType(
    {
        "finance": 69.5,
        "science": 72.7,
        "coding": 74.2,
        "law": 70.7,
        "math": 60.1,
        "kazakh": 95.8,
        "medical": 74.0,
    }
)


@dataclass(frozen=True)
class SimulatedCloudConfig:
    """``accuracy``: percent correct per domain (a domain not listed: always correct)."""

    accuracy: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ACCURACY))
    latency_ms: float = 0.0  # added before every chat completion
    seed: int = 0
    model: str = "simulated-cloud"

    def __post_init__(self) -> None:
        for domain, percent in self.accuracy.items():
            if not 0.0 <= percent <= 100.0:
                raise ValueError(f"accuracy for {domain} must be a percentage, got {percent}")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")


@dataclass(frozen=True)
class Reply:
    letter: str
    known: bool  # the question is in the bundled data
    correct: bool | None  # None when the gold answer is unknown


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class AnswerBook:
    """Gold answers by question key, and the simulated cloud's deterministic reply."""

    def __init__(self, gold: Mapping[str, tuple[str, str]], config: SimulatedCloudConfig) -> None:
        self.gold = gold  # key -> (domain, letter)
        self.config = config

    @classmethod
    def bundled(cls, config: SimulatedCloudConfig) -> AnswerBook:
        gold: dict[str, tuple[str, str]] = {}
        for domain in DOMAINS:
            for split in SPLITS:
                for q in load_questions(domain, split):
                    gold.setdefault(question_key(q.text, q.choices), (domain, q.answer or ""))
        return cls(gold, config)

    def reply(self, question: str, choices: Sequence[str], *, draw: int | None = None) -> Reply:
        """The reply; ``draw`` (a sampling request's seed) makes it an independent draw with
        the same accuracy, the same for the same draw."""
        key = question_key(question, choices)
        letters = LETTERS[: len(choices)]
        seed = self.config.seed
        salt = () if draw is None else (draw,)
        if key not in self.gold:
            pick = _unit(seed, "unknown", key, *salt)
            return Reply(letters[int(pick * len(letters))], False, None)
        domain, gold = self.gold[key]
        if _unit(seed, "correct", key, *salt) * 100.0 < self.config.accuracy.get(domain, 100.0):
            return Reply(gold, True, True)
        others = [letter for letter in letters if letter != gold]
        return Reply(others[int(_unit(seed, "wrong", key, *salt) * len(others))], True, False)


@dataclass
class Stats:
    """What the simulated cloud was asked (read by tests and benchmarks)."""

    requests: int = 0
    known: int = 0
    unknown: int = 0
    correct: int = 0
    idempotency_keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, reply: Reply, idempotency_key: str | None) -> None:
        with self.lock:
            self.requests += 1
            self.known += reply.known
            self.unknown += not reply.known
            self.correct += bool(reply.correct)
            if idempotency_key:
                self.idempotency_keys.append(idempotency_key)


@dataclass(frozen=True)
class SimulatedCloud:
    """A running simulated cloud: its base URL (with ``/v1``), answer book and stats."""

    url: str
    port: int
    book: AnswerBook
    stats: Stats


class _Handler(JSONHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        cloud: SimulatedCloud = self.server.state
        if self.path.rstrip("/") != "/v1/models":
            return self.send_error_json(404, f"no route {self.path} on the {LABEL}")
        model = {"id": cloud.book.config.model, "object": "model", "owned_by": LABEL}
        self.send_json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:  # noqa: N802
        cloud: SimulatedCloud = self.server.state
        body = self.read_json()
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self.send_error_json(404, f"no route {self.path} on the {LABEL}")
        parsed = _question_of(body)
        if parsed is None:
            return self.send_error_json(400, f"the {LABEL} answers FogGen MCQ prompts only")
        if body.get("stream"):
            return self.send_error_json(400, f"the {LABEL} does not stream")
        reply = cloud.book.reply(*parsed, draw=_draw(body))
        time.sleep(cloud.book.config.latency_ms / 1000.0)
        cloud.stats.count(reply, self.headers.get("Idempotency-Key"))
        self.send_json(200, _completion(cloud.book.config.model, f"Final answer: {reply.letter}"))


def _question_of(body: Any) -> tuple[str, tuple[str, ...]] | None:
    try:
        message = [m for m in body["messages"] if m.get("role") == "user"][-1]["content"]
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return read_user_message(message) if isinstance(message, str) else None


def _draw(body: Any) -> int | None:
    """A sampling request (temperature > 0 with an integer seed) draws anew per seed."""
    temperature, seed = body.get("temperature"), body.get("seed")
    sampling = isinstance(temperature, int | float) and temperature > 0
    return seed if sampling and isinstance(seed, int) and not isinstance(seed, bool) else None


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-sim-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


@contextmanager
def simulated_cloud(
    config: SimulatedCloudConfig | None = None, *, port: int = 0
) -> Iterator[SimulatedCloud]:
    """Run the simulated cloud on 127.0.0.1 (``port`` 0: any free port) while in the block."""
    book = AnswerBook.bundled(config or SimulatedCloudConfig())
    with serve(_Handler, None, port=port) as server:  # nobody knows the port before the yield
        server.state = cloud = SimulatedCloud(
            base_url(server), server.server_address[1], book, Stats()
        )
        yield cloud


def _accuracy(items: list[str]) -> dict[str, float]:
    accuracy = dict(DEFAULT_ACCURACY)
    for item in items:
        domain, sep, percent = item.partition("=")
        if not sep or domain not in DEFAULT_ACCURACY:
            raise SystemExit(f"--accuracy wants DOMAIN=PERCENT with DOMAIN in {', '.join(DOMAINS)}")
        accuracy[domain] = float(percent)
    return accuracy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=f"A {LABEL}: OpenAI-compatible, on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added per completion")
    parser.add_argument("--seed", type=int, default=0, help="which questions it gets right")
    parser.add_argument(
        "--accuracy",
        action="append",
        default=[],
        metavar="DOMAIN=PERCENT",
        help="percent correct for a domain (repeat); default: the card's cloud-only accuracy",
    )
    args = parser.parse_args(argv)
    config = SimulatedCloudConfig(_accuracy(args.accuracy), args.latency_ms, args.seed)
    with simulated_cloud(config, port=args.port) as cloud:
        print(f"{LABEL} listening on {cloud.url} (port {cloud.port})", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
