"""Files and folders that appear only when complete, and survive a crash once written.

One recipe for every writer of the project: write into a temporary name in the same folder,
flush and fsync it, ``os.replace`` it over the target, then fsync the folder so the rename
itself is on disk. On any error the temporary file (or folder) is removed and an existing
target is left as it was. Three shapes of writer, one helper each:

- :func:`atomic_write` yields an open file (JSON, a stream of tensor bytes);
- :func:`atomic_path` yields a path, for a writer that opens the file itself (gguf's
  ``GGUFWriter``, llama.cpp's quantizer);
- :func:`atomic_dir` yields a folder (an HF checkpoint: several files that appear together).

Hand-written rather than ``tempfile.mkstemp``: mkstemp creates files readable by their owner
only (0o600), while these outputs are meant to get what a plain ``open`` would give them
(0o666 less the umask). Imports nothing of the project, so every package above may use it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write",
    "fsync_dir",
    "write_bytes_atomic",
    "write_text_atomic",
]

_T = TypeVar("_T")
_ATTEMPTS = 100  # random names clash with a chance of 2**-48 each; this bound is never reached


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    if os.name != "nt":  # Windows cannot open a folder to fsync it
        _fsync(path)


def _create_beside(path: Path, suffix: str, create: Callable[[Path], _T]) -> tuple[_T, Path]:
    """``create`` (which fails with FileExistsError on a taken name) at a new random, hidden
    name beside ``path``, ``suffix`` at its end."""
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            return create(tmp), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _new_file_beside(path: Path, suffix: str) -> tuple[int, Path]:
    """A new, empty file beside ``path``, open for writing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return _create_beside(path, suffix, lambda tmp: os.open(tmp, flags, 0o666))


@contextmanager
def atomic_write(
    path: str | Path, *, mode: str = "wb", encoding: str | None = None, suffix: str = ".tmp"
) -> Iterator[IO[Any]]:
    """An open file (``mode`` "wb" or "w"; text is UTF-8 unless ``encoding`` says otherwise)
    whose content becomes ``path`` when the block completes, in full or not at all."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a whole new file: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    text = mode == "w"
    fd, tmp = _new_file_beside(path, suffix)
    try:
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".partial") -> Iterator[Path]:
    """A temporary path beside ``path`` (an empty file exists there) for a writer that opens
    the file itself; when the block completes the file is fsync'd and becomes ``path``."""
    path = Path(path)
    fd, tmp = _new_file_beside(path, suffix)
    os.close(fd)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """``Path.write_bytes``, atomic and durable."""
    with atomic_write(path, mode="wb") as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """``Path.write_text``, atomic and durable."""
    with atomic_write(path, mode="w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def _fsync_tree(root: Path) -> None:
    """Every file and folder under ``root`` (and ``root``) flushed to disk, deepest first."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            _fsync(Path(folder, name))
        fsync_dir(folder)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A new folder beside ``path`` that becomes it, with everything written into it, when
    the block completes; removed with its content if the block fails. ``path`` must not
    exist or be an empty folder (it is replaced)."""
    path = Path(path)
    _, staging = _create_beside(path, "", Path.mkdir)
    try:
        yield staging
        _fsync_tree(staging)
        if path.exists():
            path.rmdir()  # an empty folder; one with files in it is refused (OSError)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(path.parent)
