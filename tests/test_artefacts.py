"""The machine-wide test artefact cache: a change to the producing source is a new artefact,
a failed build leaves nothing behind, and a second caller reads what the first built."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import artefacts


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "repo"
    (root / "converter").mkdir(parents=True)
    (root / "converter" / "export.py").write_text("RULE = 1\n")
    monkeypatch.setattr(artefacts, "ROOT", root)
    monkeypatch.setattr(artefacts, "CACHE", tmp_path / "cache")
    artefacts.source_digest.cache_clear()
    yield root
    artefacts.source_digest.cache_clear()


def test_a_change_to_the_producing_source_builds_anew(sandbox: Path) -> None:
    builds: list[Path] = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "out.txt").write_text(str(len(builds)))

    first = artefacts.artefact("x", build, inputs={"a": 1}, packages=("converter",))
    again = artefacts.artefact("x", build, inputs={"a": 1}, packages=("converter",))
    assert first == again and len(builds) == 1 and (first / "out.txt").read_text() == "1"
    (sandbox / "converter" / "export.py").write_text("RULE = 2\n")
    artefacts.source_digest.cache_clear()
    changed = artefacts.artefact("x", build, inputs={"a": 1}, packages=("converter",))
    other_input = artefacts.artefact("x", build, inputs={"a": 2}, packages=("converter",))
    assert len({first, changed, other_input}) == 3 and len(builds) == 3


def test_a_failed_build_leaves_nothing_a_later_run_would_trust(sandbox: Path) -> None:
    def broken(folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        artefacts.artefact("y", broken, inputs={}, packages=("converter",))
    assert [p.name for p in artefacts.CACHE.iterdir() if not p.name.endswith(".lock")] == []
