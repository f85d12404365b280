"""Shared fixtures: per-test isolated HOME/env, one session-wide model cache and runtime."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cloud_client.config import CloudConfig
from edge_runtime.config import RuntimeConfig
from edge_runtime.runtime import EdgeRuntime
from tests.artefacts import artefact
from tests.threads import TEST_THREADS

if TYPE_CHECKING:
    from benchmarks.simulated_cloud import SimulatedCloud


# `make test` sets it: a test that would skip because an extra is missing (torch, peft) fails.
REQUIRE_EXTRAS = os.environ.get("FOGGEN_REQUIRE_EXTRAS") == "1"


def _missing_extra(report: pytest.CollectReport | pytest.TestReport) -> str | None:
    """The reason of a skip that ``pytest.importorskip`` raised, else None."""
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return None
    reason = str(report.longrepr[2])
    return reason if "could not import" in reason else None


def _fail_instead(report: pytest.CollectReport | pytest.TestReport) -> None:
    reason = _missing_extra(report)
    if REQUIRE_EXTRAS and reason is not None:
        report.outcome = "failed"
        report.longrepr = f"{reason} - FOGGEN_REQUIRE_EXTRAS=1: install every extra (make install)"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_instead(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_instead(outcome.get_result())  # type: ignore[attr-defined]


# Modules by measured time, longest first (`make test` lists the slowest tests): pytest-xdist
# hands whole modules to its workers in this order, so no long one starts last.
LONGEST_FIRST = (
    "test_converter_real", "test_ladder", "test_chain", "test_bench", "test_decoding",
    "test_families", "test_lora", "test_sampling", "test_calibrator_v2", "test_bench_calib",
    "test_hidden_state", "test_calibration", "test_converter", "test_service", "test_fog",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: order kept within


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own HOME and no FOGGEN_*/HF_* settings from the outside."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(("FOGGEN_", "HF_", "HUGGING")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One FOGGEN_HOME for the session, holding the embedded model assembled once."""
    from edge_runtime.models import fetch_embedded

    home = tmp_path_factory.mktemp("foggen-home")
    fetch_embedded(home=home)
    return home


@pytest.fixture(scope="session")
def model_path(model_home: Path) -> Path:
    from edge_runtime.models import EMBEDDED_FILENAME

    return model_home / "models" / EMBEDDED_FILENAME


@pytest.fixture(scope="session")
def runtime(model_home: Path) -> Iterator[EdgeRuntime]:
    """The embedded model through real llama.cpp, loaded once for the whole session (with the
    hidden-state capture, which changes no number: tests/test_capture.py)."""
    rt = EdgeRuntime.load(
        RuntimeConfig(n_threads=TEST_THREADS), home=model_home, capture_hidden=True
    )
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def layered_runtime(runtime: EdgeRuntime) -> Iterator[EdgeRuntime]:
    """The embedded model reading every layer's output (edge_runtime.capture), a context of its
    own on the session's weights."""
    every = tuple(range(runtime.engine.n_layer))
    sibling = runtime.sibling(capture_hidden=True, capture_layers=every)
    yield sibling
    sibling.close()


def _named_runtime(name: str, home: Path) -> EdgeRuntime:
    """A named model assembled into ``home`` (once) and loaded through real llama.cpp."""
    from edge_runtime.catalog import require_named
    from edge_runtime.models import fetch_named

    fetch_named(require_named(name), home=home)
    return EdgeRuntime.load(
        RuntimeConfig(model=name, n_threads=TEST_THREADS), home=home, capture_hidden=True
    )


@pytest.fixture(scope="session")
def smollm2_runtime(model_home: Path) -> Iterator[EdgeRuntime]:
    """SmolLM2-135M-Instruct (Llama architecture, ChatML template), loaded once."""
    rt = _named_runtime("smollm2-135m", model_home)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def qwen_runtime(model_home: Path) -> Iterator[EdgeRuntime]:
    """Qwen2.5-Coder-1.5B-Instruct (Qwen2, 1.1 GB), loaded once: keep its tests few."""
    rt = _named_runtime("qwen2.5-coder-1.5b", model_home)
    yield rt
    rt.close()


@pytest.fixture
def cli_env(model_home: Path, isolated_env: Path) -> dict[str, str]:
    """Environment for `foggen` subprocesses: the shared model cache, isolated HOME."""
    env = dict(os.environ)
    env["FOGGEN_HOME"] = str(model_home)
    env["FOGGEN_THREADS"] = str(TEST_THREADS)
    return env


# -- converter artefacts (built once per machine and key: tests/artefacts.py) -------------------
def _embedded_sha256() -> str:
    from edge_runtime.catalog import EMBEDDED_NAME, require_named

    return require_named(EMBEDDED_NAME).sha256


@pytest.fixture(scope="session")
def hf_checkpoint(model_path: Path) -> Path:
    """The embedded GGUF as a full-size bf16 HF checkpoint: the format the released
    FogGen-Gemma-3-270M checkpoint ships in. Read it only: it is shared by every run."""
    from converter.to_hf import gguf_to_hf

    def build(folder: Path) -> None:
        gguf_to_hf(model_path, folder / "gemma-3-270m", progress=False)

    inputs = {"gguf_sha256": _embedded_sha256()}
    return artefact("hf-gemma-3-270m", build, inputs=inputs) / "gemma-3-270m"


@pytest.fixture(scope="session")
def f32_gguf(hf_checkpoint: Path) -> Path:
    from converter.gguf_export import OutType, export_gguf

    def build(folder: Path) -> None:
        export_gguf(hf_checkpoint, folder / "f32.gguf", out_type=OutType.F32, progress=False)

    inputs = {"gguf_sha256": _embedded_sha256(), "from": "hf-gemma-3-270m"}
    return artefact("f32-gemma-3-270m", build, inputs=inputs) / "f32.gguf"


@pytest.fixture(scope="session")
def tiny_checkpoint(hf_checkpoint: Path) -> Path:
    """A tiny random Gemma-3 (6 layers, hidden 64) saved by transformers in bf16, with the real
    tokenizer; every weight (norms included) random so that each conversion rule matters."""
    inputs = {"gguf_sha256": _embedded_sha256(), "seed": 0, "layers": 6, "hidden": 64}
    build = partial(_build_tiny_gemma3, hf_checkpoint)
    return artefact("tiny-gemma3", build, inputs=inputs, packages=("converter", "edge_runtime",
                    "tests")) / "tiny-gemma3"  # fmt: skip


def _build_tiny_gemma3(hf_checkpoint: Path, folder: Path) -> None:
    import shutil

    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    directory = folder / "tiny-gemma3"
    config = Gemma3TextConfig(
        vocab_size=262144, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
        max_position_embeddings=4096, sliding_window=16, rope_local_base_freq=10000.0,
        rope_theta=1_000_000.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.05)
    model.to(torch.bfloat16).save_pretrained(directory)
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(hf_checkpoint / name, directory / name)


# -- cloud escalation ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sim_cloud() -> Iterator[SimulatedCloud]:
    """The simulated cloud (card accuracies, no added latency) on 127.0.0.1, for the session."""
    from benchmarks.simulated_cloud import simulated_cloud

    with simulated_cloud() as cloud:
        yield cloud


@pytest.fixture
def cloud_config(tmp_path: Path) -> Callable[..., CloudConfig]:
    """Build a CloudConfig for ``url`` with short timeouts and backoffs, no model name (the
    server's first) and its outbox in this test's directory."""
    from testkit.fault_cloud import FAST_SETTINGS

    def build(url: str, **overrides: Any) -> CloudConfig:
        settings = {**FAST_SETTINGS, "outbox": str(tmp_path / "outbox.sqlite3"), **overrides}
        return CloudConfig(url=url, **settings)

    return build
