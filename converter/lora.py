"""Merge a PEFT LoRA adapter into base weights, in numpy float32: W' = W + scale * B @ A.

scale = alpha / r (alpha / sqrt(r) with ``use_rslora``), per module from ``rank_pattern`` /
``alpha_pattern`` when they match. Honoured: ``target_modules`` (list or regex),
``fan_in_fan_out``, ``layers_to_transform``, ``modules_to_save`` (the saved copy replaces the
base tensor). Refused with a reason: DoRA, biases, LoRA on embeddings, non-LoRA PEFT types,
shapes that do not fit the base.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.errors import AdapterError, CheckpointNotFoundError
from converter.safetensors_io import SafetensorsFile

if TYPE_CHECKING:
    from converter.checkpoint import Checkpoint

PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<part>[AB])(?:\.default)?\.weight$")
_LAYER = re.compile(r"\.layers\.(\d+)\.")


@dataclass(frozen=True)
class LoraModule:
    a: np.ndarray  # (r, in)
    b: np.ndarray  # (out, r)
    scale: float
    fan_in_fan_out: bool

    @property
    def shape(self) -> tuple[int, int]:
        out, inp = self.b.shape[0], self.a.shape[1]
        return (inp, out) if self.fan_in_fan_out else (out, inp)

    def delta(self) -> np.ndarray:
        product = self.b.astype(np.float32) @ self.a.astype(np.float32) * np.float32(self.scale)
        return product.T if self.fan_in_fan_out else product


@dataclass
class LoraAdapter:
    modules: dict[str, LoraModule] = field(default_factory=dict)  # HF weight name -> LoRA
    replacements: dict[str, np.ndarray] = field(default_factory=dict)  # modules_to_save

    def merged(self, weight_name: str, weight: np.ndarray) -> np.ndarray:
        if weight_name in self.replacements:
            return self.replacements[weight_name].astype(np.float32)
        module = self.modules.get(weight_name)
        if module is None:
            return weight
        delta = module.delta()
        if delta.shape != weight.shape:
            raise AdapterError(
                f"adapter for {weight_name} has shape {delta.shape}, the base has {weight.shape} - "
                "the adapter was trained on another model"
            )
        return weight.astype(np.float32) + delta


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rule: a key matches a module name when the name ends with it (as a regex)."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _targeted(target: Any, module: str) -> bool:
    if target is None:
        return True
    if isinstance(target, str):
        return target == "all-linear" or re.fullmatch(target, module) is not None
    return any(module == t or module.endswith("." + t) for t in target)


def read_adapter_config(directory: Path) -> dict[str, Any]:
    path = directory / "adapter_config.json"
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path} is missing - is {directory} a PEFT adapter folder?")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AdapterError(f"{path} is not valid JSON ({exc})") from exc
    unsupported = []
    if config.get("peft_type", "LORA") != "LORA":
        unsupported.append(f"peft_type {config.get('peft_type')!r} (only LORA)")
    if config.get("use_dora"):
        unsupported.append("DoRA (use_dora)")
    if config.get("bias", "none") != "none":
        unsupported.append(f"bias {config.get('bias')!r} (only 'none')")
    if config.get("layers_pattern") and config.get("layers_to_transform") is None:
        unsupported.append("layers_pattern without layers_to_transform")
    if unsupported:
        raise AdapterError("cannot merge this adapter: " + ", ".join(unsupported))
    return config


def load_adapter(directory: str | Path, checkpoint: Checkpoint) -> LoraAdapter:
    directory = Path(directory)
    config = read_adapter_config(directory)
    weights = directory / "adapter_model.safetensors"
    if not weights.is_file():
        raise CheckpointNotFoundError(f"{weights} is missing (only safetensors adapters are read)")
    file = SafetensorsFile(weights)
    base_names = checkpoint.tensor_names()
    r, alpha = int(config.get("r", 8)), float(config.get("lora_alpha", 8))
    layers = config.get("layers_to_transform")
    layers = {layers} if isinstance(layers, int) else set(layers) if layers else None
    parts: dict[str, dict[str, np.ndarray]] = {}
    adapter = LoraAdapter()
    for key in file.tensors:
        name = key.removeprefix(PEFT_PREFIX)
        if "lora_embedding" in name or "lora_magnitude" in name:
            raise AdapterError(f"cannot merge {key}: LoRA on embeddings and DoRA are not supported")
        match = _LORA_KEY.match(name)
        if match is None:  # a modules_to_save copy of a whole tensor
            weight_name = checkpoint.spec.text_name(name) or name
            if weight_name not in base_names:
                raise AdapterError(f"adapter tensor {key} matches nothing in the base model")
            adapter.replacements[weight_name] = file.read(key)
            continue
        module = checkpoint.spec.text_name(match["module"]) or match["module"]
        layer = _LAYER.search(module + ".")
        if layers is not None and layer and int(layer[1]) not in layers:
            continue
        if not _targeted(config.get("target_modules"), module):
            raise AdapterError(f"{module} has LoRA weights but is not in target_modules")
        parts.setdefault(module, {})[match["part"]] = file.read(key)
    for module, ab in parts.items():
        if set(ab) != {"A", "B"}:
            raise AdapterError(f"{module} has lora_{'A' if 'A' in ab else 'B'} but not its pair")
        weight_name = module + ".weight"
        if weight_name not in base_names:
            raise AdapterError(f"adapter module {module} matches nothing in the base model")
        rank = int(_pattern_value(config.get("rank_pattern") or {}, module, r))
        module_alpha = float(_pattern_value(config.get("alpha_pattern") or {}, module, alpha))
        if ab["A"].shape[0] != rank or ab["B"].shape[1] != rank:
            raise AdapterError(f"{module}: LoRA rank {ab['A'].shape[0]} does not match r={rank}")
        scale = module_alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
        adapter.modules[weight_name] = LoraModule(
            ab["A"], ab["B"], scale, bool(config.get("fan_in_fan_out", False))
        )
        base_file, stored = base_names[weight_name]
        expected = base_file.tensors[stored].shape
        got = adapter.modules[weight_name].shape
        if tuple(got) != tuple(expected):
            raise AdapterError(
                f"adapter for {module} makes a {got} update but the base weight is {expected} - "
                "the adapter was trained on another model"
            )
    if not adapter.modules and not adapter.replacements:
        raise AdapterError(f"{weights} holds no LoRA weights")
    return adapter


def merge_checkpoint(
    source: str | Path, adapter: str | Path, out_dir: str | Path, *, dtype: str = "BF16"
) -> Path:
    """Write ``source`` with ``adapter`` merged (float32 sum, stored as ``dtype``) to a new
    checkpoint folder: the same config and tokenizer files, one ``model.safetensors``."""
    import shutil

    from converter.checkpoint import open_checkpoint
    from converter.errors import OutputError
    from converter.safetensors_io import write_safetensors

    checkpoint = open_checkpoint(source)
    lora = load_adapter(adapter, checkpoint)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=False)
        for path in checkpoint.directory.iterdir():
            if (
                path.is_file()
                and not path.name.endswith(".safetensors")
                and path.name != ("model.safetensors.index.json")
            ):
                shutil.copy(path, out_dir / path.name)
        tensors = ((name, lora.merged(name, w)) for name, w in checkpoint.tensors())
        write_safetensors(out_dir / "model.safetensors", tensors, dtype=dtype)
    except OSError as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise OutputError(f"cannot write the merged checkpoint {out_dir}: {exc}") from exc
    return out_dir
