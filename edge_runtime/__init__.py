"""FogGen Edge runtime: any llama.cpp chat model of a tested family (gemma3, qwen2, llama) as a
GGUF, the answer schema forced, and the routing decision (keep the answer or escalate).

    from edge_runtime import EdgeRuntime
    with EdgeRuntime.load() as runtime:
        record = runtime.answer("2 + 2 = ?", ["3", "4", "5"])

Names are imported lazily: ``import edge_runtime`` loads neither numpy nor llama.cpp.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EdgeRuntime", "RuntimeConfig", "Mode", "Route", "route", "DecisionRecord"]

_EXPORTS = {
    "EdgeRuntime": "edge_runtime.runtime",
    "RuntimeConfig": "edge_runtime.config",
    "Mode": "edge_runtime.config",
    "Route": "edge_runtime.routing",
    "route": "edge_runtime.routing",
    "DecisionRecord": "edge_runtime.record",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edge_runtime' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
