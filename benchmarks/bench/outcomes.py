"""The two passes a bench makes over its questions: the edge model's and the cloud's.

Every question goes through the runtime once, in ``fast`` mode, kept local (the routing is
computed afterwards for every tau from the same pass). The cloud answers every question once
too, so "Cloud only" and the system accuracy at any tau come from the same replies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from benchmarks.simulated_cloud import LABEL as SIMULATED_LABEL
from benchmarks.simulated_cloud import simulated_cloud
from cloud_client.client import CloudClient
from cloud_client.config import CloudConfig
from cloud_client.errors import CloudError
from edge_runtime.question import Question
from edge_runtime.routing.passes import Pass, PassStore, fast_passes
from edge_runtime.runtime import EdgeRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One question, both passes, and every routing score the edge pass produced."""

    id: str
    domain: str
    gold: str
    local: str | None
    cloud: str | None
    edge_ms: float
    prompt_tokens: int
    bucket: float | None
    bucket_expectation: float | None
    letter: float | None
    calibrated: float | None  # p_correct of the version-1 calibrator (output features)
    hidden: float | None = None  # p_correct of the version-2 calibrator (+ hidden state)
    guess_hit: bool | None = None  # fast mode's guessed bucket was the one emitted
    decodes: int | None = None  # llama.cpp decodes of the pass, after the system prompt

    @property
    def local_correct(self) -> bool:
        return self.local == self.gold

    @property
    def cloud_correct(self) -> bool:
        return self.cloud == self.gold

    def score(self, signal: str) -> float | None:
        value: float | None = getattr(self, signal)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "local_correct": self.local_correct,
            "cloud_correct": self.cloud_correct,
        }


def _expectation(probs: dict[str, float] | None) -> float | None:
    if not probs:
        return None
    return sum(float(bucket) * p for bucket, p in probs.items())


def edge_pass(
    runtime: EdgeRuntime,
    questions: Sequence[Question],
    *,
    store: PassStore | None = None,
    progress: bool = True,
    desc: str = "edge (fast)",
) -> list[Pass]:
    """Each question's fast pass (kept local: routing is computed afterwards for every tau),
    from the model's pass cache when it is there."""
    return fast_passes(runtime, questions, store=store, progress=progress, desc=desc)


def cloud_pass(
    client: CloudClient, questions: Sequence[Question], *, progress: bool = True
) -> list[str | None]:
    """The cloud's letter per question; None where it failed (counted as wrong, logged)."""
    letters: list[str | None] = []
    for question in tqdm(questions, desc="cloud", unit="q", disable=not progress):
        try:
            letters.append(client.ask(question.text, question.choices).letter)
        except CloudError as exc:
            log.warning("cloud failed on %s: %s", question.id, exc)
            letters.append(None)
    return letters


def combine(
    passes: Sequence[Pass],
    cloud: Sequence[str | None],
    calibrated: Mapping[str, Sequence[float | None]] | None = None,
) -> list[Outcome]:
    """One outcome per question; ``calibrated``: each pass's p_correct per calibrated signal
    (``calibrated``, ``hidden``; a signal left out: None)."""
    outcomes = []
    given = calibrated or {}
    v1 = given.get("calibrated") or [None] * len(passes)
    v2 = given.get("hidden") or [None] * len(passes)
    for item, cloud_letter, p_correct, p_hidden in zip(passes, cloud, v1, v2, strict=True):
        question, result = item.question, item.result
        letter_p = (result.letter_probs or {}).get(result.letter or "")
        outcomes.append(
            Outcome(
                id=question.id or "",
                domain=question.domain or "",
                gold=question.answer or "",
                local=result.letter,
                cloud=cloud_letter,
                edge_ms=round(item.edge_ms, 3),
                prompt_tokens=result.n_prompt_tokens or 0,
                bucket=result.confidence,
                bucket_expectation=_expectation(result.bucket_probs),
                letter=letter_p,
                calibrated=p_correct,
                hidden=p_hidden,
                guess_hit=result.guess_hit,
                decodes=result.decodes,
            )
        )
    return outcomes


@dataclass(frozen=True)
class Cloud:
    client: CloudClient
    label: str  # "simulated cloud" or the real endpoint's URL
    simulated: bool
    configured_accuracy: dict[str, float] | None  # the simulated cloud's inputs, in percent


@contextmanager
def open_cloud(config: CloudConfig | None) -> Iterator[Cloud]:
    """The configured OpenAI-compatible endpoint, else the simulated cloud on 127.0.0.1."""
    if config is not None and config.enabled:
        with CloudClient(config) as client:
            yield Cloud(client, str(config.url), simulated=False, configured_accuracy=None)
        return
    with simulated_cloud() as sim, CloudClient(CloudConfig(url=sim.url)) as client:
        accuracy = dict(sim.book.config.accuracy)
        yield Cloud(client, SIMULATED_LABEL, simulated=True, configured_accuracy=accuracy)
