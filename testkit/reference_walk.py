"""The fast mode's definition, written the slow way: a token-by-token greedy walk, no trie.

At each step the allowed next tokens are those of the schema responses (each in its canonical
tokenization) consistent with the walk so far; where more than one is allowed, the logits are
read and the argmax among them taken. Logits are read at the same points as the fast mode reads
them (forced tokens ride along with the next read), so when the walk starts from the cache the
runtime starts from (empty, or the cached system prompt) the two see the same batch shapes and
must agree exactly.

With a ``guess`` (a bucket), the walk first evaluates the question and the guessed response in
one decode, reading logits at every point of it where more than one token is allowed, and uses
those logits wherever its own walk is still on the guess: fast mode's speculative decode.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from edge_runtime.decoding import restricted_softmax
from edge_runtime.engine import LlamaEngine
from edge_runtime.schema import AnswerSchema


@dataclass(frozen=True)
class Response:
    bucket: str
    letter: str
    text: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class WalkResult:
    text: str  # the response the walk ends on
    first_choice: dict[frozenset[str], float]  # buckets reachable through each first token -> p
    letters: dict[str, float]  # the letter distribution at the last choice point

    def p_bucket(self, bucket: str) -> float | None:
        """P(bucket) read off the first choice, when one first token leads to it alone."""
        return self.first_choice.get(frozenset({bucket}))


def responses(engine: LlamaEngine, schema: AnswerSchema) -> list[Response]:
    return [
        Response(bucket, letter, text, tuple(engine.tokenize(text, special=False)))
        for bucket, letter, text in schema.responses()
    ]


def reference_walk(
    engine: LlamaEngine,
    prompt: Sequence[int],
    schema: AnswerSchema,
    *,
    keep: int = 0,
    guess: str | None = None,
) -> WalkResult:
    """Greedy over the schema's responses after ``prompt``, from an empty cache, or keeping the
    first ``keep`` cached tokens (a runtime's system prompt, evaluated once) as it does."""
    every = responses(engine, schema)
    engine.forget_after(keep)
    speculated: dict[tuple[int, ...], np.ndarray] = {}
    if guess is not None:
        guessed = next(r.tokens for r in every if r.bucket == guess)
        depths = [k for k in range(len(guessed)) if len(_allowed(every, guessed[:k])) > 1]
        rows = [len(prompt) + k - 1 for k in depths]
        outputs = engine.outputs_after([*prompt, *guessed[: depths[-1]]], rows)
        speculated = {guessed[:k]: out.logits for k, out in zip(depths, outputs, strict=True)}
    walked: list[int] = []
    choices: list[tuple[list[Response], dict[int, float]]] = []  # (alive there, p per token)
    while True:
        alive = [r for r in every if list(r.tokens[: len(walked)]) == walked]
        if len(alive) == 1 and len(alive[0].tokens) == len(walked):
            break
        allowed = _allowed(every, walked)
        if len(allowed) > 1:
            logits = speculated.get(tuple(walked))
            if logits is None:
                logits = engine.logits_after([*prompt, *walked])
            probs = restricted_softmax(logits, allowed)
            choices.append((alive, dict(zip(allowed, probs.tolist(), strict=True))))
            walked.append(allowed[int(probs.argmax())])
        else:
            walked.append(allowed[0])
    return WalkResult(
        alive[0].text,
        {frozenset(r.bucket for r in rs): p for rs, p in _by_token(*choices[0])},
        {_only(r.letter for r in rs): p for rs, p in _by_token(*choices[-1])},
    )


def _allowed(every: list[Response], walked: Sequence[int]) -> list[int]:
    """The tokens that may follow ``walked`` (in the schema's order)."""
    alive = [r for r in every if list(r.tokens[: len(walked)]) == list(walked)]
    return list(dict.fromkeys(r.tokens[len(walked)] for r in alive if len(r.tokens) > len(walked)))


def _by_token(alive: list[Response], probs: dict[int, float]) -> list[tuple[list[Response], float]]:
    """For each token of a choice point: the responses that continue with it, and its p."""
    depth = len(_common(alive))
    return [([r for r in alive if r.tokens[depth] == t], p) for t, p in probs.items()]


def _common(alive: list[Response]) -> tuple[int, ...]:
    first = alive[0].tokens
    n = 0
    while all(len(r.tokens) > n and r.tokens[n] == first[n] for r in alive):
        n += 1
    return first[:n]


def _only(values: Iterator[str]) -> str:
    (value,) = set(values)
    return value
