"""Which rungs llama.cpp repacks for its faster CPU kernels on this machine (read from its load
log: the CPU_REPACK buffer and the repacked tensor types)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge_runtime.engine import EngineSettings, LlamaEngine


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def repack_info(path: Path) -> dict[str, Any]:
    logger = logging.getLogger("llama.cpp")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        LlamaEngine(path, EngineSettings(n_ctx=256, n_threads=2, n_batch=64)).close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [line.strip() for line in handler.lines if "repack" in line.lower()]
    buffers = [line for line in lines if "REPACK" in line and "buffer size" in line]
    return {"repacked": bool(buffers), "buffers": buffers[:3], "examples": lines[:3]}
