"""The bundled MCQ data: seven domains, ``train`` and ``eval`` splits, shipped in the package.

Licences and the attribution they require: ``benchmarks/data/mcq/SOURCES.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from edge_runtime.question import Question, question_from_json

DOMAINS: tuple[str, ...] = ("finance", "science", "coding", "law", "math", "medical", "kazakh")
SPLITS: tuple[str, ...] = ("train", "eval")


def load_questions(domain: str, split: str = "eval") -> list[Question]:
    """All questions of one domain and split, in file order."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    path = resources.files("benchmarks") / "data" / "mcq" / domain / f"{split}.jsonl"
    with path.open("rb") as handle:
        return [question_from_json(line) for line in handle if line.strip()]


def stratified(
    per_domain: int, *, split: str = "eval", domains: Iterable[str] = DOMAINS
) -> list[Question]:
    """The first ``per_domain`` questions of each domain (a fixed, reproducible subset)."""
    return [q for domain in domains for q in load_questions(domain, split)[:per_domain]]
