"""The flattened token plan of ``LlamaEngine.fork_logits``: many prompts, each with short
branches, as parallel llama.cpp sequences in one causal order (shared prefixes stored once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_runtime.errors import EdgeRuntimeError


class ForkPlanError(EdgeRuntimeError, ValueError):
    kind = "engine"


@dataclass
class ForkPlan:
    """The flattened tokens of :meth:`LlamaEngine.fork_logits`, in a causal order."""

    tokens: list[int]
    positions: list[int]
    seqs: list[list[int]]
    outputs: list[tuple[int, int] | None]  # (trunk, 0 = trunk end | 1 + branch) to read
    n_seqs: int


def fork_plan(
    trunks: Sequence[Sequence[int]], branches: Sequence[Sequence[Sequence[int]]]
) -> ForkPlan:
    if len(trunks) != len(branches) or not trunks or not all(trunks):
        raise ForkPlanError("fork_logits needs one non-empty trunk per branch list")
    seq_ids: list[list[int]] = []
    for bs in branches:
        first = sum(len(s) for s in seq_ids)
        seq_ids.append(list(range(first, first + max(1, len(bs)))))
    shared = min(common_prefix(trunks[0], t) for t in trunks)
    shared = min(shared, min(len(t) for t in trunks) - 1)  # each trunk end must be evaluated
    everyone = [s for ids in seq_ids for s in ids]
    plan = ForkPlan([], [], [], [], len(everyone))

    def add(token: int, pos: int, seqs: list[int], out: tuple[int, int] | None) -> None:
        plan.tokens.append(token)
        plan.positions.append(pos)
        plan.seqs.append(seqs)
        plan.outputs.append(out)

    for pos in range(shared):
        add(trunks[0][pos], pos, everyone, None)
    for i, trunk in enumerate(trunks):
        for pos in range(shared, len(trunk)):
            add(trunk[pos], pos, seq_ids[i], (i, 0) if pos == len(trunk) - 1 else None)
        for j, branch in enumerate(branches[i]):
            if not branch:
                raise ForkPlanError("fork_logits: a branch is empty")
            for k, token in enumerate(branch):
                last = k == len(branch) - 1
                add(token, len(trunk) + k, [seq_ids[i][j]], (i, j + 1) if last else None)
    return plan


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
