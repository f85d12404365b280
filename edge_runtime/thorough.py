"""Thorough passes: the same question asked again with its options re-ordered.

A gateway sees only what a kiosk could not answer, and has time to ask twice. A model's letter
choice leans on the letters' positions as well as on their content; asking the question in
``k`` fixed orders and mapping each answer back to the original options separates the two:

- the orders are rotations spread evenly over the options (4 options, k = 2: A B C D and
  C D A B; k = 4: all four rotations, so each option is shown once under every letter), the
  first always the question as asked - that pass is the plain fast pass, bit for bit;
- a two-option question has one other order, whatever ``k``;
- the orders after the first reuse the KV cache of the question's stem (what the orders share),
  so they cost the options and the answer, not the whole question again.

Signals (see :class:`ThoroughResult`): the agreement of the orders with the first answer, the
consensus distribution (the mean of the mapped letter distributions, which cancels a letter
prior the rotations spread evenly) and the smallest probability any order gave the first
answer.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from edge_runtime.config import MAX_ORDERS, Mode
from edge_runtime.decoding import EdgeResult
from edge_runtime.question import Question


class Asker(Protocol):
    """What thorough passes need of a runtime (``EdgeRuntime``, which calls them itself)."""

    def exclusive(self) -> AbstractContextManager[Any]: ...

    def run_edge(self, question: Question, *, mode: Mode, keep_cache: bool = ...) -> EdgeResult: ...


def option_orders(n_options: int, k: int) -> list[tuple[int, ...]]:
    """``k`` fixed orders of ``n_options`` options (at most one per rotation): order[i] is the
    original option shown under the i-th letter; the first is the identity."""
    if n_options < 2 or not 1 <= k <= MAX_ORDERS:
        raise ValueError(f"orders need >= 2 options and 1 <= k <= {MAX_ORDERS}")
    k = min(k, n_options)
    shifts = sorted({j * n_options // k for j in range(k)})
    return [tuple((i + s) % n_options for i in range(n_options)) for s in shifts]


def reordered(question: Question, order: tuple[int, ...]) -> Question:
    """The question with its options shown in ``order`` (the gold letter follows its option)."""
    letters = question.letters
    answer = None
    if question.answer is not None:
        answer = letters[order.index(letters.index(question.answer))]
    return replace(question, choices=tuple(question.choices[i] for i in order), answer=answer)


@dataclass(frozen=True)
class ThoroughResult:
    """The passes of one question in its orders, mapped back to the original letters."""

    question: Question
    orders: tuple[tuple[int, ...], ...]
    passes: tuple[EdgeResult, ...]  # one per order; passes[0] is the plain fast pass
    option_probs: tuple[dict[str, float], ...]  # each pass's letter distribution, mapped back
    answers: tuple[str | None, ...]  # each pass's letter, mapped back
    ms: tuple[float, ...] = ()  # each pass's milliseconds

    @property
    def first(self) -> EdgeResult:
        return self.passes[0]

    @property
    def consensus(self) -> dict[str, float]:
        """The mean of the orders' mapped letter distributions."""
        letters = self.question.letters
        k = len(self.option_probs)
        return {x: sum(p.get(x, 0.0) for p in self.option_probs) / k for x in letters}

    @property
    def consensus_letter(self) -> str:
        consensus = self.consensus
        return max(
            self.question.letters, key=lambda x: (consensus[x], -self.question.letters.index(x))
        )

    @property
    def agreement(self) -> float:
        """The share of orders whose answer is the first order's."""
        return sum(a == self.answers[0] for a in self.answers) / len(self.answers)

    @property
    def first_min(self) -> float:
        """The smallest probability any order gave the first answer."""
        first = self.answers[0]
        return min(p.get(first or "", 0.0) for p in self.option_probs)

    def combined(self) -> EdgeResult:
        """The thorough answer as one pass: the consensus letter and distribution (what the
        letter signal reads); the bucket, output and the rest are the first order's."""
        if len(self.passes) == 1:
            return self.first
        return replace(
            self.first, letter=self.consensus_letter, letter_probs=self.consensus,
            hidden=None, layers=None,
        )  # fmt: skip


def thorough_pass(runtime: Asker, question: Question, k: int) -> ThoroughResult:
    """``question`` in ``k`` orders of its options (:func:`option_orders`), fast mode."""
    orders = option_orders(len(question.choices), k)
    letters = question.letters
    passes, mapped, answers, ms = [], [], [], []
    with runtime.exclusive():  # no other question between the orders: the same cache each time
        for n, order in enumerate(orders):
            shown = reordered(question, order)
            started = time.perf_counter()
            result = runtime.run_edge(shown, mode=Mode.FAST, keep_cache=n > 0)
            ms.append((time.perf_counter() - started) * 1000.0)
            probs = result.letter_probs or {}
            mapped.append({letters[order[i]]: probs.get(x, 0.0) for i, x in enumerate(letters)})
            letter = result.letter
            answers.append(None if letter is None else letters[order[letters.index(letter)]])
            passes.append(result)
    return ThoroughResult(
        question, tuple(orders), tuple(passes), tuple(mapped), tuple(answers), tuple(ms)
    )
