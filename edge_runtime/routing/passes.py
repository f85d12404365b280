"""Per-question fast passes, cached on disk: measure once, fit and report many times.

A fast pass of a question (letter, bucket, both distributions, prompt length, time) depends on
the model file, the question, and the few settings that change llama.cpp's numbers: the chat
format, the batch size, whether the system prompt's KV state is reused, the guessed bucket (it
sets the batch shapes) and the llama.cpp build. The store keeps one JSON line per pass in
``$FOGGEN_HOME/passes/<model sha256>.jsonl``, keyed by the question's id and a hash of its
text, with a fingerprint of those settings. Rows are appended and flushed one by one, so an
interrupted run resumes where it stopped; a torn last line is skipped. Rows of other settings
stay in the file and are ignored.

Used by ``foggen calibrator fit``, ``foggen tau recommend`` and the bench; a long measurement's
rows can be committed (compact) and given back with ``seed`` on another machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edge_runtime.config import Mode
from edge_runtime.decoding import EdgeResult
from edge_runtime.question import Question
from edge_runtime.runtime import EdgeRuntime

log = logging.getLogger(__name__)

FORMAT = 2  # 2: the hidden state where the letter is read (float16, base64)
PASSES_DIR = "passes"


@dataclass(frozen=True)
class Pass:
    """One question's fast pass, as the runtime produced it (or as it was cached)."""

    question: Question
    result: EdgeResult
    edge_ms: float
    cached: bool


def question_key(question: Question) -> str:
    """The question's id and a hash of its text and options (an edited question is new)."""
    content = json.dumps([question.text, list(question.choices)], ensure_ascii=False)
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
    return f"{question.id or ''}#{digest}"


def settings_fingerprint(runtime: EdgeRuntime) -> str:
    """What, besides the model and the question, changes a fast pass's numbers."""
    import llama_cpp

    chat = runtime.chat_format
    prompt = hashlib.sha256(f"{chat.prefix}\x00{chat.suffix}\x00{chat.add_bos}".encode())
    settings = {
        "format": FORMAT,
        "mode": Mode.FAST.value,
        "hidden": "capture",  # read as the graph runs (changes no number)
        "guess": runtime.guess,  # the speculated response changes the batch shapes
        "n_batch": runtime.config.n_batch,
        "cache_prefix": runtime.config.cache_prefix,
        "prompt": prompt.hexdigest()[:16],
        "llama_cpp": llama_cpp.__version__,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def store_path(home: Path, model_sha256: str) -> Path:
    return home / PASSES_DIR / f"{model_sha256}.jsonl"


class PassStore:
    """The cached passes of one model under one settings fingerprint (append-only JSONL)."""

    def __init__(self, path: Path, *, model_sha256: str, settings: str) -> None:
        self.path = path
        self.model_sha256 = model_sha256
        self.settings = settings
        self._rows: dict[str, dict[str, Any]] = {}
        for row in read_rows(path):
            self._accept(row)

    @classmethod
    def for_runtime(cls, runtime: EdgeRuntime, home: Path) -> PassStore:
        sha256 = runtime.model.file.sha256
        return cls(
            store_path(home, sha256), model_sha256=sha256, settings=settings_fingerprint(runtime)
        )

    def _accept(self, row: dict[str, Any]) -> bool:
        if row.get("model_sha256") != self.model_sha256 or row.get("settings") != self.settings:
            return False
        self._rows[str(row.get("key"))] = row
        return True

    def __len__(self) -> int:
        return len(self._rows)

    def seed(self, rows: Iterable[dict[str, Any]]) -> int:
        """Add rows measured elsewhere (e.g. committed with a report); returns how many fit."""
        added = [row for row in rows if str(row.get("key")) not in self._rows and self._accept(row)]
        self._append(added)
        return len(added)

    def get(self, question: Question) -> Pass | None:
        row = self._rows.get(question_key(question))
        if row is None:
            return None
        return Pass(question, result_from_row(row), float(row["edge_ms"]), cached=True)

    def add(self, item: Pass) -> None:
        r = item.result
        key = question_key(item.question)
        row: dict[str, Any] = {
            "key": key,
            "model_sha256": self.model_sha256,
            "settings": self.settings,
            "letter": r.letter,
            "bucket": r.bucket,
            "bucket_probs": r.bucket_probs,
            "letter_probs": r.letter_probs,
            "n_prompt_tokens": r.n_prompt_tokens,
            "hidden": encode_hidden(r.hidden),
            "guess_hit": r.guess_hit,
            "decodes": r.decodes,
            "edge_ms": round(item.edge_ms, 3),
            "at": round(time.time()),
        }
        self._rows[key] = row
        self._append([row])

    def _append(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = _ends_mid_line(self.path)
        with self.path.open("a", encoding="utf-8") as handle:
            if torn:  # a write that died mid-line: end it, so the next row stays readable
                handle.write("\n")
            for row in rows:
                handle.write(json.dumps(row, separators=(",", ":")) + "\n")
            handle.flush()


def result_from_row(row: dict[str, Any]) -> EdgeResult:
    """A stored pass's result: the distributions and choices (no text or token ids)."""
    return EdgeResult(
        letter=row["letter"],
        bucket=row["bucket"],
        output="",
        response_tokens=(),
        bucket_probs=row["bucket_probs"],
        letter_probs=row["letter_probs"],
        n_prompt_tokens=row["n_prompt_tokens"],
        hidden=decode_hidden(row.get("hidden")),
        guess_hit=row.get("guess_hit"),
        decodes=row.get("decodes"),
    )


def encode_hidden(hidden: np.ndarray | None) -> str | None:
    """A hidden state as base64 of little-endian float16 (a 1536-wide state: 4 kB a row)."""
    if hidden is None:
        return None
    return base64.b64encode(np.asarray(hidden, dtype="<f2").tobytes()).decode("ascii")


def decode_hidden(text: str | None) -> np.ndarray | None:
    if not text:
        return None
    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)


def _ends_mid_line(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(-1, 2)
            return handle.read(1) != b"\n"
    except OSError:  # absent or empty
        return False


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a pass file; a line that does not parse (a torn write) is skipped."""
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for n, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except ValueError:
                log.warning("%s:%d: skipping an unreadable pass row", path, n)
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def fast_passes(
    runtime: EdgeRuntime,
    questions: Sequence[Question],
    *,
    store: PassStore | None,
    progress: bool = True,
    desc: str = "edge passes",
) -> list[Pass]:
    """Each question's fast pass: from the store when there, else run (and stored at once)."""
    done = {id(q): store.get(q) for q in questions} if store is not None else {}
    missing = [q for q in questions if done.get(id(q)) is None]
    if store is not None and len(missing) < len(questions):
        log.info(
            "%d of %d passes from %s", len(questions) - len(missing), len(questions), store.path
        )
    bar = tqdm(missing, desc=desc, unit="q", file=sys.stderr, disable=not progress or not missing)
    for question in bar:
        started = time.perf_counter()
        result = runtime.run_edge(question, mode=Mode.FAST, hidden=True)
        # as stored: a pass read back from the cache is the pass that was run
        result = replace(result, hidden=decode_hidden(encode_hidden(result.hidden)))
        item = Pass(question, result, (time.perf_counter() - started) * 1000.0, cached=False)
        if store is not None:
            store.add(item)
        done[id(question)] = item
    return [done[id(q)] for q in questions]  # type: ignore[misc]
