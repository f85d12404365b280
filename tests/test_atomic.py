"""Atomic, durable writes: the whole new content or the old one, never a part, no debris."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge_runtime import atomic
from edge_runtime.atomic import (
    atomic_dir,
    atomic_path,
    atomic_write,
    fsync_dir,
    write_bytes_atomic,
    write_text_atomic,
)


class Boom(Exception):
    """Raised mid-write by a test."""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of the test's own (tmp_path also holds the isolated HOME)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_the_content_is_complete_after_the_write(folder: Path) -> None:
    target = folder / "data.bin"
    target.write_bytes(b"old")
    blocks = [bytes([n]) * 100_000 for n in range(10)]
    with atomic_write(target, mode="wb") as handle:
        for block in blocks:  # streamed: nothing is held back in memory by the helper
            handle.write(block)
        assert target.read_bytes() == b"old"  # not replaced before the block completes
    assert target.read_bytes() == b"".join(blocks)
    assert write_text_atomic(folder / "t.json", "é\n") == folder / "t.json"
    assert (folder / "t.json").read_bytes() == "é\n".encode()
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert _debris(folder) == []


def test_an_exception_mid_write_keeps_the_old_file_and_leaves_nothing(folder: Path) -> None:
    target = folder / "data.json"
    target.write_text("old")
    with pytest.raises(Boom), atomic_write(target, mode="w") as handle:
        handle.write("half of the new")
        raise Boom
    assert target.read_text() == "old" and _debris(folder) == []
    with pytest.raises(Boom), atomic_path(folder / "new.gguf") as tmp:
        tmp.write_bytes(b"partial")  # a writer that opens the file itself
        raise Boom
    assert sorted(p.name for p in folder.iterdir()) == ["data.json"]


def test_a_writer_that_opens_the_path_itself(folder: Path) -> None:
    target = folder / "model.gguf"
    with atomic_path(target) as tmp:
        assert tmp.parent == folder and tmp.name.endswith(".partial") and tmp.exists()
        tmp.write_bytes(b"GGUF")
        assert not target.exists()
    assert target.read_bytes() == b"GGUF" and _debris(folder) == []


def test_a_folder_appears_whole_or_not_at_all(folder: Path) -> None:
    out = folder / "checkpoint"
    with pytest.raises(Boom), atomic_dir(out) as staging:
        (staging / "config.json").write_text("{}")
        raise Boom
    assert list(folder.iterdir()) == []
    out.mkdir()  # an empty folder may be replaced
    with atomic_dir(out) as staging:
        (staging / "sub").mkdir()
        (staging / "sub" / "model.safetensors").write_bytes(b"weights")
        assert not (out / "sub").exists()
    assert (out / "sub" / "model.safetensors").read_bytes() == b"weights"
    with pytest.raises(OSError), atomic_dir(out) as staging:  # a full one is refused
        (staging / "x").write_text("x")
    assert (out / "sub" / "model.safetensors").exists() and _debris(folder) == []


def test_new_files_get_what_a_plain_open_gives(folder: Path) -> None:
    """Not mkstemp's 0o600: what ``open(path, "w")`` would make under the same umask."""
    plain = folder / "plain"
    plain.write_text("x")
    write_text_atomic(folder / "atomic", "x")
    mode = stat.S_IMODE((folder / "atomic").stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode)


def test_the_data_and_the_rename_are_flushed(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync of the file before the rename, then of the folder after it."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    write_text_atomic(folder / "a", "x")
    with atomic_path(folder / "b") as tmp:
        tmp.write_text("y")
    assert events == ["fsync file", "replace", "fsync folder"] * 2
    fsync_dir(folder)
    assert events[-1] == "fsync folder"


def test_only_whole_file_modes(folder: Path) -> None:
    with pytest.raises(ValueError, match="mode 'w' or 'wb'"), atomic_write(folder / "a", mode="a"):
        pass
    assert list(folder.iterdir()) == []
