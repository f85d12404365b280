"""Merge a PEFT LoRA adapter into base weights: W' = W + scale * B @ A, bit-reproducible.

scale = alpha / r (alpha / sqrt(r) with ``use_rslora``), per module from ``rank_pattern`` /
``alpha_pattern`` when they match. Honoured: ``target_modules`` (list or regex),
``fan_in_fan_out``, ``layers_to_transform``, ``modules_to_save`` (the saved copy replaces the
base tensor). Refused with a reason: DoRA, biases, LoRA on embeddings, non-LoRA PEFT types,
shapes that do not fit the base.

Determinism: the merged weights must be the same bits on every machine (``foggen model build``
checks the F32 GGUF's sha256 against the chain's). ``B @ A`` in float32 goes through BLAS, whose
kernels and reduction order depend on the CPU and the thread count, so the update is computed
without BLAS, in a fixed order, by elementwise IEEE-754 operations only (each correctly
rounded, hence the same on any CPU and with any SIMD width): every product b[i, k] * a[k, j]
in float64 (exact: two 24-bit significands), summed over k = 0..r-1 in that order in float64,
times scale, plus W (widened exactly), rounded once to float32. See :func:`merge_weight`.
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
        """scale * B @ A (transposed with ``fan_in_fan_out``) as float32, by the fixed-order
        float64 sum of :func:`merge_weight` (rounded once)."""
        return merge_weight(self, None)


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
        if module.shape != weight.shape:
            raise AdapterError(
                f"adapter for {weight_name} has shape {module.shape}, the base has "
                f"{weight.shape} - the adapter was trained on another model"
            )
        return merge_weight(module, weight)


# float64 elements per row block: two cache-sized temporaries (2 x 512 KiB), whatever the
# matrix (a 1.5B model's 8960 x 1536 MLP weights included); the result does not depend on it
BLOCK_ELEMENTS = 1 << 16


def merge_weight(module: LoraModule, weight: np.ndarray | None) -> np.ndarray:
    """float32(W + scale * sum_k b[:, k] * a[k, :]) (W = 0 when ``weight`` is None), computed
    row block by row block with elementwise numpy ufuncs only - never ``@``, ``dot``,
    ``einsum`` or a reduction, which may dispatch to BLAS or reorder the sum: for every element,
    the float64 products (exact) are added for k = 0, 1, ..., r-1 in that order, the sum is
    multiplied by ``scale``, W is added, and the float64 result is rounded to float32 once.
    With ``fan_in_fan_out`` the same sums are laid out transposed (W is (in, out))."""
    a = np.asarray(module.a, dtype=np.float32).astype(np.float64)  # (r, in)
    b = np.asarray(module.b, dtype=np.float32).astype(np.float64)  # (out, r)
    left, right = (a.T, b.T) if module.fan_in_fan_out else (b, a)  # (rows, r), (r, cols)
    rows, rank = left.shape
    cols = right.shape[1]
    left = np.ascontiguousarray(left)
    right = np.ascontiguousarray(right)
    scale = float(module.scale)
    out = np.empty((rows, cols), dtype=np.float32)
    step = max(1, BLOCK_ELEMENTS // max(cols, 1))
    acc_buffer = np.empty((min(step, rows), cols), dtype=np.float64)
    term_buffer = np.empty_like(acc_buffer)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        acc, term = acc_buffer[: stop - start], term_buffer[: stop - start]
        column = left[start:stop]
        if rank:
            np.multiply(column[:, 0:1], right[0:1], out=acc)
        else:
            acc.fill(0.0)
        for k in range(1, rank):
            np.multiply(column[:, k : k + 1], right[k : k + 1], out=term)
            np.add(acc, term, out=acc)
        np.multiply(acc, scale, out=acc)
        if weight is not None:
            np.add(acc, np.asarray(weight[start:stop], dtype=np.float32), out=acc)
        out[start:stop] = acc  # the one rounding to float32 (to nearest, ties to even)
    return out


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
            weight_name = checkpoint.family.text_name(name) or name
            if weight_name not in base_names:
                raise AdapterError(f"adapter tensor {key} matches nothing in the base model")
            adapter.replacements[weight_name] = file.read(key)
            continue
        module = checkpoint.family.text_name(match["module"]) or match["module"]
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
    """Write ``source`` with ``adapter`` merged (:func:`merge_weight`, stored as ``dtype``) to
    a new checkpoint folder: the same config and tokenizer files, one ``model.safetensors``."""
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
