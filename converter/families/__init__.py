"""The model families the converter handles; adding one is a new module and a line here."""

from __future__ import annotations

from converter.errors import UnsupportedModelError
from converter.families.base import Family, TextConfig
from converter.families.decoder import LLAMA, QWEN2
from converter.families.gemma3 import GEMMA3

FAMILIES: tuple[Family, ...] = (GEMMA3, QWEN2, LLAMA)
BY_ARCHITECTURE = {arch: family for family in FAMILIES for arch in family.architectures}

__all__ = ["FAMILIES", "Family", "TextConfig", "family_for", "family_for_gguf"]


def _supported() -> str:
    return ", ".join(BY_ARCHITECTURE)


def family_for(architectures: list[str] | None) -> Family:
    """The family of a config.json's ``architectures``."""
    for name in architectures or []:
        if name in BY_ARCHITECTURE:
            return BY_ARCHITECTURE[name]
    raise UnsupportedModelError(
        f"architecture {architectures!r} is not supported; supported: {_supported()}"
    )


def family_for_gguf(arch: str | None) -> Family:
    """The family of a GGUF's ``general.architecture``."""
    for family in FAMILIES:
        if family.gguf_arch_name == arch:
            return family
    names = ", ".join(f.gguf_arch_name for f in FAMILIES)
    raise UnsupportedModelError(f"GGUF architecture {arch!r} is not supported; supported: {names}")
