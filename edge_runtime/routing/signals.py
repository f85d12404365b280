"""The routing score each signal reads from one edge pass (tau is on that score's scale)."""

from __future__ import annotations

from edge_runtime.decoding import EdgeResult
from edge_runtime.routing.rule import Signal


def letter_probability(result: EdgeResult) -> float | None:
    """The probability of the emitted letter among the offered ones (fast mode), else None."""
    if result.letter is None or not result.letter_probs:
        return None
    return result.letter_probs.get(result.letter)


def routing_score(signal: Signal, result: EdgeResult, p_correct: float | None) -> float | None:
    """The number compared with tau; None (escalate) when the pass could not produce it."""
    if signal is Signal.BUCKET:
        return result.confidence
    if signal is Signal.LETTER:
        return letter_probability(result)
    return p_correct
