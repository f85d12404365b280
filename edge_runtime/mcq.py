"""The bundled MCQ data: seven domains in three disjoint splits, shipped in the package.

- ``eval``: the ``eval.jsonl`` files. Only ever measured on, never fitted to or trained on.
- ``calib``: the ``train.jsonl`` questions whose id falls in the calibration slice
  (:func:`is_calib`, a hash of the id: stable across machines and file reorderings). Routing
  calibrators are fitted on it; training never sees it.
- ``train``: the remaining ``train.jsonl`` questions (the training chain's buffers).

Licences and the attribution they require: ``edge_runtime/data/mcq/SOURCES.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources

from edge_runtime.question import Question, question_from_json

DOMAINS: tuple[str, ...] = ("finance", "science", "coding", "law", "math", "medical", "kazakh")
SPLITS: tuple[str, ...] = ("train", "calib", "eval")
CALIB_PERCENT = 20  # share of each domain's train file carved out as the calib split


def is_calib(question_id: str) -> bool:
    """Whether a train-file question belongs to the calib split (sha256 of its id, mod 100)."""
    digest = hashlib.sha256(f"foggen-calib:{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < CALIB_PERCENT


def load_questions(domain: str, split: str = "eval") -> list[Question]:
    """All questions of one domain and split, in file order."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    filename = "eval.jsonl" if split == "eval" else "train.jsonl"
    path = resources.files("edge_runtime") / "data" / "mcq" / domain / filename
    with path.open("rb") as handle:
        questions = [question_from_json(line) for line in handle if line.strip()]
    if split == "eval":
        return questions
    want_calib = split == "calib"
    return [q for q in questions if is_calib(q.id or q.text) == want_calib]


def stratified(
    per_domain: int | None, *, split: str = "eval", domains: Iterable[str] = DOMAINS
) -> list[Question]:
    """The first ``per_domain`` questions of each domain (all with None): fixed, reproducible."""
    return [q for domain in domains for q in load_questions(domain, split)[:per_domain]]
