"""Comparing llama.cpp outputs in tests: claims that hold on any CPU, not on one machine.

Why tolerances tuned on one machine fail elsewhere
--------------------------------------------------
llama.cpp picks its CPU kernels by batch shape (one token: a matrix-vector product; many tokens:
a blocked or repacked matrix-matrix product; attention over a KV cache of another size), and
llama-cpp-python is built with ``-march=native``, so which kernels exist (AVX2, AVX-512, VNNI,
AMX, repacked Q4_K) depends on the CPU. The same logits evaluated in two batch shapes differ by
a noise whose size is a property of the machine: a difference "measured <= 0.02" on one CPU is a
sample, not a bound. Softmax makes it worse on near-ties: at T = 1 a 0.1-nat logit move shifts a
50/50 pair by 2.5 points, at T = 0.7 by 3.6, whatever the tolerance was tuned for.

So a test states which of three claims it makes:

(a) Exactness - the same tokens evaluated in the *same* batch shape (same engine settings,
    same chunking, same thread count): llama.cpp on a CPU is deterministic there, so
    :func:`assert_same` asserts equality, not closeness.
(b) Closeness across batch shapes - :class:`NoiseBound`: compare in log space (log-probabilities,
    i.e. logits up to a constant: kernel noise is additive on logits, while on probabilities it
    scales with p(1 - p)), weighted by probability mass (:func:`log_gap`), against a bound
    *measured in the test itself*: the same quantity evaluated at batch shapes the product does
    not use (:func:`logits_at_shapes`), whose spread (:func:`spread`, pooled over the test's
    questions) is this machine's noise of that kind.
    Allowed: ``multiple x measured + floor``; a bug (a sequence attending to another's tokens,
    a wrong position, a swapped branch) moves log-probabilities by far more than that.
(c) Sampled frequencies against probabilities - :func:`assert_frequencies_match`: a fixed seed,
    and a tolerance of ``sigmas`` binomial standard errors from the sample size
    (:func:`binomial_tolerance`), never a number tuned on one run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol, TypeVar

import numpy as np

from benchmarks.stats import binomial_se

K = TypeVar("K", bound=Hashable)

DEFAULT_MULTIPLE = 4.0  # measured noise is one draw of that noise: allow a few times it
DEFAULT_FLOOR = 0.02  # nats: where a machine's kernels happen to agree at the measured shapes
DEFAULT_SIGMAS = 4.0  # binomial standard errors (two-sided p ~ 6e-5 per key)


# -- (a) exactness: the same batch shape ----------------------------------------------------------
def assert_same(actual: object, expected: object, what: str = "values") -> None:
    """Equality of two evaluations in the same batch shape (numpy arrays compared exactly)."""
    if isinstance(actual, np.ndarray) or isinstance(expected, np.ndarray):
        same = np.array_equal(np.asarray(actual), np.asarray(expected))
    else:
        same = actual == expected
    assert same, f"{what}: not identical in the same batch shape: {actual!r} != {expected!r}"


# -- (b) closeness across batch shapes, against measured noise ------------------------------------
def log_probs(probs: Mapping[K, float]) -> dict[K, float]:
    """Natural log of each probability (all must be > 0: a softmax of finite logits is)."""
    bad = {k: p for k, p in probs.items() if not p > 0.0}
    assert not bad, f"probabilities must be > 0 to compare in log space: {bad}"
    return {k: math.log(p) for k, p in probs.items()}


def log_gap(a: Mapping[K, float], b: Mapping[K, float]) -> float:
    """The probability-weighted mean ``|log a[k] - log b[k]|`` (weights ``(a[k] + b[k]) / 2``)
    over the keys, which must be the same in both; 0 for identical distributions.

    Log space, because kernel noise is additive on logits; weighted by mass, because a
    near-impossible key's log-probability is the noisiest number of all (measured here: its
    max over keys is 3-5x this) while it barely changes what is sampled or decided.
    """
    assert set(a) == set(b), f"different keys: {sorted(map(str, set(a) ^ set(b)))}"
    la, lb = log_probs(a), log_probs(b)
    return sum(0.5 * (a[k] + b[k]) * abs(la[k] - lb[k]) for k in la)


def spread(evaluations: Sequence[Mapping[K, float]]) -> float:
    """The largest :func:`log_gap` between any two evaluations of the same distribution."""
    assert len(evaluations) >= 2, "noise is measured between at least two evaluations"
    return max(log_gap(x, y) for x, y in combinations(evaluations, 2))


@dataclass(frozen=True)
class NoiseBound:
    """``multiple x measured + floor``: how far two evaluations of one distribution at different
    batch shapes may differ in log-probability, with ``measured`` this machine's noise of the
    same kind (:func:`spread` of evaluations at shapes the product does not use)."""

    measured: float
    multiple: float = DEFAULT_MULTIPLE
    floor: float = DEFAULT_FLOOR

    @classmethod
    def pooled(
        cls,
        groups: Sequence[Sequence[Mapping[K, float]]],
        *,
        multiple: float = DEFAULT_MULTIPLE,
        floor: float = DEFAULT_FLOOR,
    ) -> NoiseBound:
        """``measured``: the largest :func:`spread` within any group, a group being one
        distribution (e.g. one question's) evaluated at several batch shapes. The noise is the
        machine's, not the question's: pool it over every question of the test."""
        assert groups, "no evaluations to measure the noise from"
        return cls(max(spread(g) for g in groups), multiple, floor)

    @property
    def limit(self) -> float:
        return self.multiple * self.measured + self.floor

    def check(self, a: Mapping[K, float], b: Mapping[K, float], what: str = "") -> float:
        """Assert ``log_gap(a, b) <= limit``; return the gap (for reports)."""
        gap = log_gap(a, b)
        assert gap <= self.limit, (
            f"{what}: log-probabilities differ by {gap:.4f} nats (mass-weighted), more than "
            f"{self.multiple:g} x the measured batch-shape noise {self.measured:.4f} + "
            f"{self.floor:g} = {self.limit:.4f}"
        )
        return gap

    def __str__(self) -> str:
        return f"{self.multiple:g} x {self.measured:.4f} + {self.floor:g} = {self.limit:.4f} nats"


class LogitsEngine(Protocol):
    """What :func:`logits_at_shapes` needs of an engine (``edge_runtime.engine.LlamaEngine``)."""

    def reset(self) -> None: ...

    def logits_after(self, tokens: Sequence[int]) -> np.ndarray: ...

    def forget_after(self, n_tokens: int) -> None: ...


def logits_at_shapes(
    engine: LogitsEngine, prompt: Sequence[int], paths: Sequence[Sequence[int]]
) -> list[list[np.ndarray]]:
    """The logits after ``prompt + path`` for each path, at two batch shapes the product does
    not use (so neither side of a claim is one of them): ``[shape][path]``.

    - split: the prompt in two decodes (its first half, then the rest), then each path in one;
    - stepwise: the prompt in one decode, then each path one token at a time.

    Their difference is this machine's batch-shape noise: a KV cache computed in other chunks,
    and few-token vs one-token kernels. The cache is cleared before and after.
    """
    assert prompt, "nothing to evaluate"
    half = max(1, len(prompt) // 2)
    shapes: list[list[np.ndarray]] = []
    try:
        for prompt_chunks, stepwise in (([prompt[:half], prompt], False), ([prompt], True)):
            engine.reset()
            for upto in prompt_chunks:  # the cache keeps what it has: each decode is the rest
                after_prompt = np.array(engine.logits_after(list(upto)), copy=True)
            rows = []
            for path in paths:
                engine.forget_after(len(prompt))
                logits = after_prompt
                ends = range(1, len(path) + 1) if stepwise else [len(path)] if path else []
                for end in ends:
                    logits = np.array(engine.logits_after([*prompt, *path[:end]]), copy=True)
                rows.append(logits)
            shapes.append(rows)
    finally:
        engine.reset()
    return shapes


# -- (c) sampled frequencies against probabilities ------------------------------------------------
def binomial_tolerance(p: float, n: int, sigmas: float = DEFAULT_SIGMAS) -> float:
    """``sigmas`` binomial standard errors of a frequency out of ``n`` draws with probability
    ``p``, plus one draw (the granularity of a frequency, which matters where p is near 0)."""
    if n < 1 or not 0.0 <= p <= 1.0:
        raise ValueError(f"need n >= 1 and 0 <= p <= 1, got n={n}, p={p}")
    return sigmas * binomial_se(p, n) + 1.0 / n


def assert_frequencies_match(
    samples: Sequence[K], probs: Mapping[K, float], *, sigmas: float = DEFAULT_SIGMAS
) -> dict[K, float]:
    """Every key's sampled frequency within :func:`binomial_tolerance` of its probability (draw
    ``samples`` with a fixed seed). Returns the frequencies."""
    n = len(samples)
    counts = Counter(samples)
    unknown = set(counts) - set(probs)
    assert not unknown, f"sampled keys with no probability: {sorted(map(str, unknown))}"
    freqs = {k: counts.get(k, 0) / n for k in probs}
    for k, p in probs.items():
        tolerance = binomial_tolerance(p, n, sigmas)
        assert abs(freqs[k] - p) <= tolerance, (
            f"{k}: frequency {freqs[k]:.4f} of {n} draws vs probability {p:.4f}, "
            f"beyond {sigmas:g} standard errors ({tolerance:.4f})"
        )
    return freqs
