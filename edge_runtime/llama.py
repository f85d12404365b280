"""llama-cpp-python's low-level pieces the engine builds on: the module (imported lazily), its
log routing, loaded weights shared between contexts, and a greedy sampler chain."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from edge_runtime.errors import EdgeRuntimeError, ModelFormatError


class EngineError(EdgeRuntimeError, RuntimeError):
    kind = "engine"


def llama():  # noqa: ANN202 - the module, imported lazily
    import llama_cpp

    return llama_cpp


_LOG_CALLBACK = None  # keep a reference: llama.cpp calls it from C


def route_llama_logs_to_logging() -> None:
    """Send llama.cpp's own stderr chatter to ``logging`` (debug) instead of the terminal."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    llama_cpp = llama()
    native = logging.getLogger("llama.cpp")

    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        native.debug("%s", text.decode("utf-8", errors="replace").rstrip())

    _LOG_CALLBACK = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


def built_with_amx() -> bool:
    """Whether this llama.cpp was compiled with its AMX kernels (``make install`` builds it
    without): they crash on Q4_K weights on some Sapphire Rapids machines
    (ggml-org/llama.cpp#20824, no fix upstream)."""
    return b"AMX_INT8 = 1" in llama().llama_print_system_info()


class Weights:
    """A loaded llama.cpp model, freed when the last engine using it closes."""

    def __init__(self, path: Path, *, mmap: bool) -> None:
        llama_cpp = llama()
        model_params = llama_cpp.llama_model_default_params()
        if not mmap:
            model_params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
        if built_with_amx():
            # the AMX kernels run only from llama.cpp's extra buffer types: without them the
            # weights stay in plain CPU buffers (slower: no repacking either, but no crash)
            logging.getLogger(__name__).warning(
                "this llama.cpp was built with AMX kernels, which crash on some CPUs: loading "
                "without them (slower; `make install` builds llama.cpp without AMX)"
            )
            model_params.use_extra_bufts = False
        self.path = path
        self.pointer = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
        if not self.pointer:
            raise ModelFormatError(str(path), "llama.cpp could not load it")
        self.users = 0

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.pointer:
            llama().llama_model_free(self.pointer)
            self.pointer = None


class Sampler:
    """A greedy llama.cpp sampler chain, optionally behind a GBNF grammar."""

    def __init__(self, vocab: object, *, grammar: str | None) -> None:
        llama_cpp = llama()
        self.handle = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params()
        )
        if grammar is not None:
            constraint = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not constraint:
                llama_cpp.llama_sampler_free(self.handle)
                raise EngineError("llama.cpp rejected the GBNF grammar")
            llama_cpp.llama_sampler_chain_add(self.handle, constraint)
        llama_cpp.llama_sampler_chain_add(self.handle, llama_cpp.llama_sampler_init_greedy())

    def close(self) -> None:
        if self.handle:
            llama().llama_sampler_free(self.handle)
            self.handle = None

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
