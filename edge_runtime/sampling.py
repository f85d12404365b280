"""Schema-forced sampling at a temperature, many questions at once (the chain's self-sampling).

The model samples along the same response trie as the ``fast`` mode: at each point where valid
responses diverge (the bucket digits, the letter), the next token is drawn from the softmax of
the allowed tokens' logits divided by the temperature - what a GBNF grammar sampler with that
temperature does, restricted to each response's canonical tokenization. Because the trie is
tiny, every choice point of a question is evaluated once, in parallel llama.cpp sequences
(:meth:`LlamaEngine.fork_logits`: the shared system prompt once, each question's prompt once,
one short branch per choice point); the exact distribution over (bucket, letter) follows, and
``n`` samples are drawn from it with numpy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.decoding import Pick, ResponseTrie, _Node, tempered_pick
from edge_runtime.engine import EngineSettings, LlamaEngine
from edge_runtime.prompt import PromptTokens
from edge_runtime.question import Question
from edge_runtime.schema import MAX_OPTIONS, MIN_OPTIONS, AnswerSchema

SAMPLED = "sampled"  # the record's mode for a draw of the schema-forced sampler


@dataclass(frozen=True)
class Sampling:
    """One draw of the schema-forced sampler at ``temperature``, fixed by ``seed`` and the
    question (the same seed and question give the same draw)."""

    temperature: float
    seed: int

    def pick(self, question: Question) -> Pick:
        key = json.dumps([self.seed, question.text, list(question.choices)]).encode("utf-8")
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
        return tempered_pick(self.temperature, rng)


SAMPLER_CTX = 16_384  # one group's prompts and branches, in one unified KV cache
SEQS_PER_QUESTION = 6  # branches: one per choice point after the first (2-26 options)
BRANCH_TOKENS = 64  # room for one question's branches


@dataclass(frozen=True)
class SampleSettings:
    n: int = 8  # samples per question
    temperature: float = 0.7
    group: int = 8  # questions per parallel llama.cpp call (1: one question at a time)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.group < 1:
            raise ValueError("n and group must be >= 1")
        if not self.temperature > 0.0:
            raise ValueError("temperature must be > 0 (use the fast mode for greedy answers)")


@dataclass(frozen=True)
class Samples:
    """One question's ``n`` sampled responses and the exact distribution they came from."""

    responses: tuple[tuple[str, str], ...]  # (bucket, letter) per sample
    distribution: dict[tuple[str, str], float]

    def fraction_correct(self, gold: str) -> float:
        return sum(letter == gold for _, letter in self.responses) / len(self.responses)

    def p_correct(self, gold: str) -> float:
        return sum(p for (_, letter), p in self.distribution.items() if letter == gold)


def choice_points(root: _Node) -> list[tuple[int, ...]]:
    """Token paths (below the root) of the trie nodes with more than one child."""
    points: list[tuple[int, ...]] = []

    def walk(node: _Node, path: tuple[int, ...]) -> None:
        if len(node.children) > 1:
            points.append(path)
        for token, child in node.children.items():
            walk(child, path + (token,))

    walk(root, ())
    return points


def tempered(logits: np.ndarray, tokens: Sequence[int], temperature: float) -> np.ndarray:
    values = np.asarray(logits[list(tokens)], dtype=np.float64) / temperature
    values = np.exp(values - values.max())
    return values / values.sum()


def distribution(
    root: _Node, logits: dict[tuple[int, ...], np.ndarray], temperature: float
) -> dict[tuple[str, str], float]:
    """P(bucket, letter) of sampling along the trie, from the logits at its choice points."""
    result: dict[tuple[str, str], float] = {}

    def walk(node: _Node, path: tuple[int, ...], p: float) -> None:
        if node.leaf is not None:
            result[node.leaf] = result.get(node.leaf, 0.0) + p
            return
        tokens = list(node.children)
        probs = tempered(logits[path], tokens, temperature) if len(tokens) > 1 else [1.0]
        for token, q in zip(tokens, probs, strict=True):
            walk(node.children[token], path + (token,), p * float(q))

    walk(root, (), 1.0)
    return result


def _rng(settings: SampleSettings, question: Question) -> np.random.Generator:
    key = f"{settings.seed}:{question.id or question.text}".encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def draw(
    dist: dict[tuple[str, str], float], settings: SampleSettings, question: Question
) -> tuple[tuple[str, str], ...]:
    keys = sorted(dist)
    probs = np.array([dist[k] for k in keys])
    picks = _rng(settings, question).choice(len(keys), size=settings.n, p=probs / probs.sum())
    return tuple(keys[i] for i in picks)


class SelfSampler:
    """A model loaded for parallel sampling: ``group`` questions per llama.cpp call."""

    def __init__(self, path: Path, settings: SampleSettings, *, n_threads: int) -> None:
        self.settings = settings
        self.engine = self._engine(path, n_threads, settings.group * SEQS_PER_QUESTION)
        self._tries: dict[int, ResponseTrie] = {}
        # a small vocabulary splits the schema into more choice points than the real models'
        # six: then the context is made again with room for one group of such questions
        need = max(self._branches(n) for n in (MIN_OPTIONS, MAX_OPTIONS))
        if need > SEQS_PER_QUESTION:
            self.engine.close()
            self.engine = self._engine(path, n_threads, settings.group * need)
            self._tries.clear()
        self.prompt_tokens = PromptTokens(self.engine)  # the runtime's exact ids

    @staticmethod
    def _engine(path: Path, n_threads: int, n_seq_max: int) -> LlamaEngine:
        settings = EngineSettings(
            n_ctx=SAMPLER_CTX, n_threads=n_threads, n_batch=512, n_seq_max=n_seq_max
        )
        return LlamaEngine(path, settings)

    def _branches(self, n_options: int) -> int:
        return max(1, len(choice_points(self.trie(n_options).root)) - 1)

    def close(self) -> None:
        self.engine.close()

    def trie(self, n_options: int) -> ResponseTrie:
        if n_options not in self._tries:
            schema = AnswerSchema.for_options(n_options)
            self._tries[n_options] = ResponseTrie(schema, self.engine)
        return self._tries[n_options]

    def sequences(self, question: Question) -> int:
        """The parallel sequences a question's branches take."""
        return self._branches(len(question.choices))

    def groups(self, questions: Sequence[Question]) -> Iterator[list[Question]]:
        """Consecutive groups of at most ``group`` questions that fit in the context and in
        the engine's parallel sequences."""
        group: list[Question] = []
        tokens = seqs = 0
        budget = self.engine.settings.n_seq_max
        for q in questions:
            need, branches = len(self.prompt_tokens(q)) + BRANCH_TOKENS, self.sequences(q)
            if group and (
                len(group) >= self.settings.group
                or tokens + need > SAMPLER_CTX
                or seqs + branches > budget
            ):
                yield group
                group, tokens, seqs = [], 0, 0
            group.append(q)
            tokens, seqs = tokens + need, seqs + branches
        if group:
            yield group

    def sample(self, questions: Sequence[Question]) -> list[Samples]:
        """Sample one group (see :meth:`groups`) in a single parallel call."""
        tries = [self.trie(len(q.choices)) for q in questions]
        points = [choice_points(t.root) for t in tries]
        trunks, branches = [], []
        for q, pts in zip(questions, points, strict=True):
            first = min(pts, key=len)  # every response passes the first choice point
            trunks.append([*self.prompt_tokens(q), *first])
            branches.append([list(p[len(first) :]) for p in pts if p != first])
        forked = self.engine.fork_logits(trunks, branches)
        out = []
        for pts, rows, trie, q in zip(points, forked, tries, questions, strict=True):
            first = min(pts, key=len)
            by_path = dict(zip([first, *[p for p in pts if p != first]], rows, strict=True))
            dist = distribution(trie.root, by_path, self.settings.temperature)
            out.append(Samples(draw(dist, self.settings, q), dist))
        return out
