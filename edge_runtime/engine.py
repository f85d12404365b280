"""The one place that calls llama.cpp for inference, through llama-cpp-python's C API.

The high-level ``llama_cpp.Llama`` keeps a Python-side score matrix of n_batch x 262,144 floats
and copies it on every state save; here the context is driven directly: the KV cache holds one
token sequence, a new request reuses its longest common prefix (so the system prompt is
evaluated once), and logits are read only where a caller asks for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import EdgeRuntimeError, ModelFormatError
from edge_runtime.fork_plan import ForkPlan, common_prefix, fork_plan

log = logging.getLogger(__name__)


class EngineError(EdgeRuntimeError, RuntimeError):
    kind = "engine"


@dataclass(frozen=True)
class EngineSettings:
    n_ctx: int
    n_threads: int
    n_batch: int
    n_seq_max: int = 1  # > 1: parallel sequences in one unified KV cache (fork_logits)
    # Map the file (pages shared, loaded lazily) or read it into memory. llama.cpp repacks
    # quantized weights for its faster CPU kernels into memory of its own: a mapped file then
    # stays resident beside the repacked copy (the 1.5B: 1.89 GB peak RSS mapped, 1.29 read).
    mmap: bool = False


def _llama():  # noqa: ANN202 - the module, imported lazily
    import llama_cpp

    return llama_cpp


_LOG_CALLBACK = None  # keep a reference: llama.cpp calls it from C


def route_llama_logs_to_logging() -> None:
    """Send llama.cpp's own stderr chatter to ``logging`` (debug) instead of the terminal."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    llama_cpp = _llama()
    native = logging.getLogger("llama.cpp")

    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        native.debug("%s", text.decode("utf-8", errors="replace").rstrip())

    _LOG_CALLBACK = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


class LlamaEngine:
    """A loaded GGUF with one context whose KV cache holds a single token sequence."""

    def __init__(self, path: Path, settings: EngineSettings) -> None:
        llama_cpp = _llama()
        route_llama_logs_to_logging()
        llama_cpp.llama_backend_init()
        self.settings = settings
        model_params = llama_cpp.llama_model_default_params()
        if not settings.mmap:
            model_params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
        if not self._model:
            raise ModelFormatError(str(path), "llama.cpp could not load it")
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = settings.n_ctx
        ctx_params.n_batch = settings.n_batch
        ctx_params.n_ubatch = settings.n_batch
        ctx_params.n_seq_max = settings.n_seq_max
        ctx_params.kv_unified = settings.n_seq_max > 1  # a shared prompt is stored once
        ctx_params.n_threads = settings.n_threads
        ctx_params.n_threads_batch = settings.n_threads
        ctx_params.swa_full = True  # keep the prefix in sliding-window layers so it can be reused
        # Hidden states are read per token (see logits_and_hidden_after), never pooled.
        ctx_params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_NONE
        self._ctx = llama_cpp.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise EngineError(f"llama.cpp could not create a context of {settings.n_ctx} tokens")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.bos = llama_cpp.llama_vocab_bos(self._vocab)
        self.eos = llama_cpp.llama_vocab_eos(self._vocab)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))  # the model wants BOS
        self.n_embd = llama_cpp.llama_model_n_embd(self._model)
        self._batch = llama_cpp.llama_batch_init(settings.n_batch, 0, settings.n_seq_max)
        self._cached: list[int] = []  # the tokens whose KV state the context holds
        self.n_decoded = 0  # tokens evaluated since load (for benchmarks)

    # -- vocabulary ---------------------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of ``text`` without BOS; ``special`` parses <start_of_turn> and friends."""
        llama_cpp = _llama()
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity, False, special)
        if n < 0:
            raise EngineError(f"tokenizer needed {-n} slots for {len(data)} bytes")
        return list(buffer[:n])

    def piece(self, token: int) -> bytes:
        llama_cpp = _llama()
        buffer = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, 64, 0, True)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -n, 0, True)
        return buffer.raw[:n]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_end_of_generation(self, token: int) -> bool:
        return bool(_llama().llama_vocab_is_eog(self._vocab, token))

    def metadata(self, key: str) -> str | None:
        """One GGUF metadata value as llama.cpp read it (None when absent)."""
        llama_cpp = _llama()
        size = 256
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buffer, size)
            if n < 0:
                return None
            if n < size:
                return buffer.value.decode("utf-8", errors="replace")
            size = n + 1

    def token_text(self, token: int) -> str:
        """A token's text as the vocabulary spells it (control tokens included), '' if none."""
        if token < 0:
            return ""
        raw = _llama().llama_vocab_get_text(self._vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    def chat_template(self) -> str | None:
        """The file's own chat template (``tokenizer.chat_template``), None when it has none.
        The prompt is built from it by ``edge_runtime.prompt.chat_format_for_engine``."""
        template = _llama().llama_model_chat_template(self._model, None)
        return template.decode("utf-8") if template else None

    # -- evaluation ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the KV cache (the next evaluation starts from position 0)."""
        _llama().llama_memory_clear(self._memory, True)
        self._cached = []

    def logits_after(self, tokens: Sequence[int]) -> np.ndarray:
        """Logits for the token after ``tokens``, evaluating only what the cache lacks.

        Returns a read-only view valid until the next evaluation.
        """
        if not tokens:
            raise EngineError("nothing to evaluate")
        if len(tokens) > self.n_ctx:
            raise EngineError(f"{len(tokens)} tokens exceed the context of {self.n_ctx}")
        keep = common_prefix(self._cached, tokens)
        keep = min(keep, len(tokens) - 1)  # at least one token must run to produce logits
        self._truncate(keep)
        for _ in self._decode(tokens[keep:]):
            pass
        return self._last_logits()

    def logits_and_hidden_after(self, tokens: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`logits_after`, plus the final hidden state at the last token (copies).

        The hidden state is the vector the LM head reads: the last layer's output after the
        output norm (llama.cpp's ``t_embd``). With embeddings switched on, llama.cpp makes every
        token of a decode an output and computes its logits over the whole vocabulary, so the
        last token is decoded alone with embeddings on (pooling none), the rest as usual.
        """
        if not tokens:
            raise EngineError("nothing to evaluate")
        if len(tokens) > self.n_ctx:
            raise EngineError(f"{len(tokens)} tokens exceed the context of {self.n_ctx}")
        llama_cpp = _llama()
        keep = min(common_prefix(self._cached, tokens), len(tokens) - 1)
        self._truncate(keep)
        for _ in self._decode(tokens[keep:-1], output_last=False):
            pass
        llama_cpp.llama_set_embeddings(self._ctx, True)
        try:
            for _ in self._decode(tokens[-1:]):
                pass
            pointer = llama_cpp.llama_get_embeddings_ith(self._ctx, -1)
            if not pointer:
                raise EngineError("llama.cpp returned no hidden state")
            hidden = np.ctypeslib.as_array(pointer, shape=(self.n_embd,)).copy()
            logits = self._last_logits().copy()
        finally:
            llama_cpp.llama_set_embeddings(self._ctx, False)
        return logits, hidden

    def logits_for_all(self, tokens: Sequence[int]) -> np.ndarray:
        """Teacher-forced logits at every position, (len(tokens), n_vocab), from an empty cache.

        For parity checks; the context's output buffer grows to n_batch rows of the vocabulary.
        """
        self.reset()
        return np.concatenate(list(self._decode(tokens, every_position=True)))

    def append(self, token: int) -> np.ndarray:
        """Evaluate one more token after the cached sequence; logits for the next one."""
        for _ in self._decode([token]):
            pass
        return self._last_logits()

    def sample(self, sampler: Sampler) -> int:
        """Let a llama.cpp sampler chain pick (and accept) the next token from the last logits."""
        return int(_llama().llama_sampler_sample(sampler.handle, self._ctx, -1))

    def forget_after(self, n_tokens: int) -> None:
        """Keep at most the first ``n_tokens`` of the cache (the rest is evaluated anew)."""
        self._truncate(max(0, n_tokens))

    def fork_logits(
        self, trunks: Sequence[Sequence[int]], branches: Sequence[Sequence[Sequence[int]]]
    ) -> list[list[np.ndarray]]:
        """Many continuations of many prompts in parallel sequences, in as few decodes as fit.

        For each trunk i: ``[logits after trunk_i, logits after trunk_i + b for b in
        branches[i]]`` (copies). Each branch is its own sequence; trunk tokens belong to all
        sequences of their trunk and the prefix common to every trunk to all sequences, so a
        shared system prompt is evaluated once. Needs ``n_seq_max`` >= the number of branches
        (at least one per trunk); the cache is cleared before and after.
        """
        plan = fork_plan(trunks, branches)
        if plan.n_seqs > self.settings.n_seq_max:
            raise EngineError(f"{plan.n_seqs} sequences exceed n_seq_max={self.settings.n_seq_max}")
        if len(plan.tokens) > self.n_ctx:
            raise EngineError(f"{len(plan.tokens)} tokens exceed the context of {self.n_ctx}")
        self.reset()
        rows: dict[tuple[int, int], np.ndarray] = {}
        try:
            size = self.settings.n_batch
            for start in range(0, len(plan.tokens), size):
                self._decode_fork(plan, start, min(start + size, len(plan.tokens)), rows)
        finally:
            self.reset()
        return [[rows[(i, j)] for j in range(len(branches[i]) + 1)] for i in range(len(trunks))]

    def _decode_fork(
        self, plan: ForkPlan, start: int, stop: int, rows: dict[tuple[int, int], np.ndarray]
    ) -> None:
        llama_cpp = _llama()
        batch = self._batch
        batch.n_tokens = stop - start
        for i in range(start, stop):
            k = i - start
            batch.token[k] = plan.tokens[i]
            batch.pos[k] = plan.positions[i]
            batch.n_seq_id[k] = len(plan.seqs[i])
            for n, seq in enumerate(plan.seqs[i]):
                batch.seq_id[k][n] = seq
            batch.logits[k] = plan.outputs[i] is not None
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            raise EngineError(f"llama_decode failed with status {status}")
        self.n_decoded += stop - start
        for i in range(start, stop):
            key = plan.outputs[i]
            if key is not None:
                pointer = llama_cpp.llama_get_logits_ith(self._ctx, i - start)
                rows[key] = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def _truncate(self, keep: int) -> None:
        if keep >= len(self._cached):
            return
        llama_cpp = _llama()
        if keep == 0 or not llama_cpp.llama_memory_seq_rm(self._memory, 0, keep, -1):
            self.reset()
            keep = 0
        del self._cached[keep:]

    def _decode(
        self, tokens: Sequence[int], *, every_position: bool = False, output_last: bool = True
    ) -> Iterator[np.ndarray]:
        """Evaluate ``tokens`` after the cache, chunk by chunk; with ``every_position`` yield a
        copy of each chunk's logits, else yield nothing and leave the last logits readable
        (none computed without ``output_last``)."""
        llama_cpp = _llama()
        batch, size = self._batch, self.settings.n_batch
        if any(not 0 <= t < self.n_vocab for t in tokens):
            raise EngineError(f"a token id is outside this model's vocabulary of {self.n_vocab}")
        for start in range(0, len(tokens), size):
            chunk = tokens[start : start + size]
            last_chunk = start + size >= len(tokens)
            batch.n_tokens = len(chunk)
            base = len(self._cached)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = base + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                last = output_last and last_chunk and i == len(chunk) - 1
                batch.logits[i] = every_position or last
            status = llama_cpp.llama_decode(self._ctx, batch)
            if status != 0:
                self.reset()
                raise EngineError(f"llama_decode failed with status {status}")
            self._cached.extend(chunk)
            self.n_decoded += len(chunk)
            if every_position:
                rows = llama_cpp.llama_get_logits(self._ctx)
                yield np.ctypeslib.as_array(rows, shape=(len(chunk), self.n_vocab)).copy()

    def _last_logits(self) -> np.ndarray:
        pointer = _llama().llama_get_logits_ith(self._ctx, -1)
        if not pointer:
            raise EngineError("llama.cpp returned no logits")
        view = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        view.flags.writeable = False
        return view

    @property
    def cached_tokens(self) -> int:
        return len(self._cached)

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        llama_cpp = _llama()
        if getattr(self, "_ctx", None):
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self.close()

    def new_sampler(self, *, grammar: str | None = None) -> Sampler:
        return Sampler(self._vocab, grammar=grammar)


class Sampler:
    """A greedy llama.cpp sampler chain, optionally behind a GBNF grammar."""

    def __init__(self, vocab: object, *, grammar: str | None) -> None:
        llama_cpp = _llama()
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
            _llama().llama_sampler_free(self.handle)
            self.handle = None

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
