"""The decision log: append-only JSON Lines, one line per answered request, fsync'd before the
HTTP 200 goes out, rotated by size with a retention count.

Each line is the decision record plus ``logged_at`` and, by configuration, the question and
its options as asked, redacted (e-mails, phone and card numbers, as before a cloud call), or
omitted. A process killed mid-write leaves at most one torn last line: it was never
acknowledged, so opening the log cuts it off and reading skips it, each with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge_runtime.atomic import fsync_dir
from edge_runtime.question import Question
from edge_runtime.record import DecisionRecord
from edge_runtime.service.config import QuestionLogging

log = logging.getLogger(__name__)


class DecisionLog:
    """Thread-safe appender. ``keep`` rotated files: ``decisions.jsonl.1`` (newest) ..."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        keep: int,
        questions: QuestionLogging = QuestionLogging.REDACT,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.questions = questions
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(path)
        self._file = self._open()

    def _open(self) -> Any:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "ab")

    def append(self, record: DecisionRecord, question: Question) -> None:
        """Write one line and fsync it; raises OSError if the disk refused (no 200 then)."""
        line = (json.dumps(self.entry(record, question), ensure_ascii=False) + "\n").encode()
        with self._lock:
            if self._file.tell() and self._file.tell() + len(line) > self.max_bytes:
                self._rotate()
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def entry(self, record: DecisionRecord, question: Question) -> dict[str, Any]:
        logged_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        data: dict[str, Any] = {**record.to_dict(), "logged_at": logged_at}
        if self.questions is QuestionLogging.OMIT:
            return data
        texts = [question.text, *question.choices]
        if self.questions is QuestionLogging.REDACT:
            from cloud_client.privacy import redact

            texts = [redact(text)[0] for text in texts]
        return {**data, "question": texts[0], "choices": texts[1:]}

    def _rotate(self) -> None:
        self._file.close()
        rotated = [self.path.with_name(f"{self.path.name}.{n}") for n in range(1, self.keep + 1)]
        if rotated:
            rotated[-1].unlink(missing_ok=True)  # the oldest goes: beyond retention
            for older, newer in zip(reversed(rotated[1:]), reversed(rotated[:-1]), strict=True):
                if newer.exists():
                    newer.rename(older)
            self.path.rename(rotated[0])
        else:
            self.path.unlink()
        fsync_dir(self.path.parent)
        self._file = self._open()
        log.info("decision log rotated (%d kept)", self.keep)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()


def _cut_torn_tail(path: Path) -> None:
    """Drop an unterminated last line (a write cut short by a crash, never acknowledged)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as file:
        file.seek(-1, os.SEEK_END)
        if file.read(1) == b"\n":
            return
        size, end = file.seek(0, os.SEEK_END), _last_newline_end(file)
        log.warning("%s: cutting a torn last line (%d bytes)", path, size - end)
        file.truncate(end)
        file.flush()
        os.fsync(file.fileno())


def _last_newline_end(file: Any, chunk: int = 65_536) -> int:
    """Offset just past the last b"\\n" in ``file`` (0 when there is none)."""
    position = file.seek(0, os.SEEK_END)
    while position > 0:
        start = max(0, position - chunk)
        file.seek(start)
        block = file.read(position - start)
        index = block.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        position = start
    return 0


def log_files(path: Path) -> list[Path]:
    """The log and its rotated files, oldest first."""
    rotated = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return [*rotated, *([path] if path.exists() else [])]


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    """Every entry of the log and its rotated files, oldest first; a line that does not parse
    (a torn write) is skipped with a warning."""
    for file in log_files(path):
        with open(file, "rb") as stream:
            for number, raw in enumerate(stream, start=1):
                try:
                    entry = json.loads(raw)
                except ValueError:
                    log.warning("%s:%d: skipping a torn or corrupt line", file, number)
                    continue
                yield entry
