"""The one place that calls llama.cpp for inference, through llama-cpp-python's C API.

The high-level ``llama_cpp.Llama`` keeps a Python-side score matrix of n_batch x 262,144 floats
and copies it on every state save; here the context is driven directly: the KV cache holds one
token sequence, a new request reuses its longest common prefix (so the system prompt is
evaluated once), and logits are read only where a caller asks for them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge_runtime.capture import FINAL_STATE, RowPlan, StateCapture, layer_name
from edge_runtime.fork_plan import ForkPlan, common_prefix, fork_plan
from edge_runtime.llama import EngineError, Sampler, Weights, llama, route_llama_logs_to_logging
from edge_runtime.vocabulary import Vocabulary

log = logging.getLogger(__name__)


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
    # Copy the final hidden state (llama.cpp's ``result_norm``) of every output row as the graph
    # runs (edge_runtime.capture): what a calibrator reads. Installed at context creation only.
    capture_hidden: bool = False
    # Also copy these layers' outputs (``l_out-<layer>``, the residual stream) at every output
    # row and at the positions a caller marks (``evaluate``): what a layer probe reads.
    capture_layers: tuple[int, ...] = ()


@dataclass(frozen=True)
class Output:
    """One output row of a decode: the logits there and, when captured, the hidden state."""

    logits: np.ndarray
    hidden: np.ndarray | None
    layers: np.ndarray | None = None  # (len(capture_layers), n_embd) float32, when captured


@dataclass(frozen=True)
class Evaluation:
    """What :meth:`LlamaEngine.evaluate` read: an :class:`Output` per row asked for, and the
    captured layers at each marked position (NaN where a layer has no row there: the last
    layer is computed for output rows only)."""

    outputs: list[Output]
    marked: dict[int, np.ndarray]


class LlamaEngine(Vocabulary):
    """A loaded GGUF with one context whose KV cache holds a single token sequence."""

    def __init__(
        self, path: Path, settings: EngineSettings, *, _weights: Weights | None = None
    ) -> None:
        llama_cpp = llama()
        route_llama_logs_to_logging()
        llama_cpp.llama_backend_init()
        self.settings = settings
        self._weights = _weights or Weights(path, mmap=settings.mmap)
        self._weights.users += 1
        self._model = self._weights.pointer
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
        self._capture: StateCapture | None = None
        self._layer_names = tuple(layer_name(il) for il in settings.capture_layers)
        if settings.capture_hidden or settings.capture_layers:
            names = ((FINAL_STATE,) if settings.capture_hidden else ()) + self._layer_names
            self._capture = StateCapture(names)
            self._capture.install(ctx_params)  # referenced by the engine for the context's life
        self._ctx = llama_cpp.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            self._weights.release()
            raise EngineError(f"llama.cpp could not create a context of {settings.n_ctx} tokens")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.bos = llama_cpp.llama_vocab_bos(self._vocab)
        self.eos = llama_cpp.llama_vocab_eos(self._vocab)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))  # the model wants BOS
        self.n_embd = llama_cpp.llama_model_n_embd(self._model)
        self.n_layer = llama_cpp.llama_model_n_layer(self._model)
        if any(not 0 <= il < self.n_layer for il in settings.capture_layers):
            self.close()
            raise EngineError(f"capture_layers must be layers 0..{self.n_layer - 1} of this model")
        self._batch = llama_cpp.llama_batch_init(settings.n_batch, 0, settings.n_seq_max)
        self._cached: list[int] = []  # the tokens whose KV state the context holds
        self.n_decoded = 0  # tokens evaluated since load (for benchmarks)

    # -- evaluation ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the KV cache (the next evaluation starts from position 0)."""
        llama().llama_memory_clear(self._memory, True)
        self._cached = []

    def logits_after(self, tokens: Sequence[int]) -> np.ndarray:
        """Logits for the token after ``tokens``, evaluating only what the cache lacks.

        Returns a read-only view valid until the next evaluation.
        """
        keep = self._prepare(tokens, last=len(tokens) - 1)
        for _ in self._decode(tokens[keep:], outputs=(len(tokens) - 1 - keep,)):
            pass
        return self._last_logits()

    def outputs_after(self, tokens: Sequence[int], rows: Sequence[int]) -> list[Output]:
        """Evaluate ``tokens`` in one batch (after the cached common prefix) and return the
        outputs at ``rows`` (indices into ``tokens``, ascending): row ``r``'s logits are for the
        token after ``tokens[:r + 1]``; its hidden state comes with it when the engine
        captures it. The cache is reused only up to the first row."""
        return self.evaluate(tokens, rows).outputs

    def evaluate(
        self, tokens: Sequence[int], rows: Sequence[int], *, marks: Sequence[int] = ()
    ) -> Evaluation:
        """:meth:`outputs_after`, plus the captured layers at the ``marks`` (indices into
        ``tokens``): positions evaluated without becoming outputs, so the decode is the one
        without marks. The cache is reused only up to the first row or mark."""
        ascending = bool(rows) and list(rows) == sorted(set(rows))
        if not ascending or not 0 <= rows[0] <= rows[-1] < len(tokens):
            raise EngineError(f"rows {list(rows)} are not ascending positions of the tokens")
        if any(not 0 <= m < len(tokens) for m in marks):
            raise EngineError(f"marks {list(marks)} are not positions of the tokens")
        keep = self._prepare(tokens, last=min([rows[0], *marks]))
        marks = [m - keep for m in marks]
        outputs: list[Output] = []
        marked: dict[int, np.ndarray] = {}
        for start, chunk in self._decode(
            tokens[keep:], outputs=[r - keep for r in rows], marks=marks
        ):
            hidden = self._take_hidden(len(chunk))
            layers = self._take_layers()
            for j, i in enumerate(chunk):
                state = None if hidden is None else hidden[j]
                outputs.append(Output(self._logits_row(i).copy(), state, layers.get(i)))
            for m in marks:
                if m - start in layers:
                    marked[m + keep] = layers[m - start]
        return Evaluation(outputs, marked)

    @property
    def n_threads(self) -> int:
        """The threads llama.cpp uses for the next decode."""
        return int(llama().llama_n_threads(self._ctx))

    def set_threads(self, n: int) -> None:
        """Use ``n`` threads from the next decode on (prompt and generation alike)."""
        if n < 1:
            raise EngineError("the thread count must be positive")
        llama().llama_set_n_threads(self._ctx, n, n)

    @property
    def captures_hidden(self) -> bool:
        return self._capture is not None and FINAL_STATE in self._capture.names

    @property
    def captures_layers(self) -> tuple[int, ...]:
        return self.settings.capture_layers

    def logits_and_hidden_after(self, tokens: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`logits_after`, plus the final hidden state at the last token (copies),
        read without the capture: the last token is decoded alone with embeddings on.

        The vector the LM head reads (the last layer's output after the output norm). With
        embeddings on, llama.cpp makes every token of a decode an output, hence the split. The
        reference the captured read (``capture_hidden``) is tested against."""
        llama_cpp = llama()
        keep = self._prepare(tokens, last=len(tokens) - 1)
        for _ in self._decode(tokens[keep:-1], outputs=()):
            pass
        llama_cpp.llama_set_embeddings(self._ctx, True)
        try:
            for _ in self._decode(tokens[-1:], outputs=(0,)):
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
        rows: list[np.ndarray] = []
        for _, chunk in self._decode(tokens, outputs=range(len(tokens))):
            rows.extend(self._logits_row(i).copy() for i in chunk)
        return np.stack(rows)

    def append(self, token: int) -> np.ndarray:
        """Evaluate one more token after the cached sequence; logits for the next one."""
        for _ in self._decode([token], outputs=(0,)):
            pass
        return self._last_logits()

    def sample(self, sampler: Sampler) -> int:
        """Let a llama.cpp sampler chain pick (and accept) the next token from the last logits."""
        return int(llama().llama_sampler_sample(sampler.handle, self._ctx, -1))

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
        llama_cpp = llama()
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
                rows[key] = self._logits_row(i - start).copy()

    def _truncate(self, keep: int) -> None:
        if keep >= len(self._cached):
            return
        llama_cpp = llama()
        if keep == 0 or not llama_cpp.llama_memory_seq_rm(self._memory, 0, keep, -1):
            self.reset()
            keep = 0
        del self._cached[keep:]

    def _prepare(self, tokens: Sequence[int], *, last: int) -> int:
        """Check ``tokens`` and drop the cache after their common prefix (at most ``last``
        tokens are kept, so that row ``last`` is evaluated); returns how many are kept."""
        if not tokens:
            raise EngineError("nothing to evaluate")
        if len(tokens) > self.n_ctx:
            raise EngineError(f"{len(tokens)} tokens exceed the context of {self.n_ctx}")
        keep = min(common_prefix(self._cached, tokens), last)
        self._truncate(keep)
        return keep

    def _decode(
        self, tokens: Sequence[int], *, outputs: Collection[int], marks: Collection[int] = ()
    ) -> Iterator[tuple[int, list[int]]]:
        """Evaluate ``tokens`` after the cache, chunk by chunk, computing logits at the positions
        in ``outputs`` (and capturing the layers there and at ``marks``). After each chunk's
        decode, yields the chunk's start in ``tokens`` and the batch indices of its outputs
        (ascending): index i's logits are ``_logits_row(i)`` until the next decode."""
        llama_cpp = llama()
        batch, size = self._batch, self.settings.n_batch
        if any(not 0 <= t < self.n_vocab for t in tokens):
            raise EngineError(f"a token id is outside this model's vocabulary of {self.n_vocab}")
        wanted = set(outputs)
        for start in range(0, len(tokens), size):
            chunk = tokens[start : start + size]
            batch.n_tokens = len(chunk)
            base = len(self._cached)
            rows = [i for i in range(len(chunk)) if start + i in wanted]
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = base + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = start + i in wanted
            if self._capture is not None:
                self._capture.clear()
                read = sorted({*rows, *(m - start for m in marks if 0 <= m - start < len(chunk))})
                self._capture.plan(RowPlan(len(chunk), tuple(rows), tuple(read)))
            status = llama_cpp.llama_decode(self._ctx, batch)
            if status != 0:
                self.reset()
                raise EngineError(f"llama_decode failed with status {status}")
            self._cached.extend(chunk)
            self.n_decoded += len(chunk)
            yield start, rows

    def _take_layers(self) -> dict[int, np.ndarray]:
        """The last decode's captured layers by batch index: (len(capture_layers), n_embd),
        NaN where a layer has no row (the last layer off the output rows)."""
        if self._capture is None or not self._layer_names:
            return {}
        taken = [self._capture.take_rows(name) for name in self._layer_names]
        indices = sorted({i for rows in taken for i in rows})
        blank = np.full(self.n_embd, np.nan, dtype=np.float32)
        return {i: np.stack([rows.get(i, blank) for rows in taken]) for i in indices}

    def _take_hidden(self, n_rows: int) -> np.ndarray | None:
        """The last decode's captured final hidden states, one per output row in batch order
        (None without the capture or without outputs)."""
        if self._capture is None or FINAL_STATE not in self._capture.names:
            return None
        picked = self._capture.take_rows(FINAL_STATE)
        if len(picked) != n_rows or any(row.shape != (self.n_embd,) for row in picked.values()):
            raise EngineError(f"captured no hidden state for each of the {n_rows} outputs")
        return np.stack([picked[i] for i in sorted(picked)]) if picked else None

    def _logits_row(self, i: int) -> np.ndarray:  # a view, valid until the next decode
        pointer = llama().llama_get_logits_ith(self._ctx, i)
        if not pointer:
            raise EngineError("llama.cpp returned no logits")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _last_logits(self) -> np.ndarray:
        view = self._logits_row(-1)
        view.flags.writeable = False
        return view

    @property
    def cached_tokens(self) -> int:
        return len(self._cached)

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        llama_cpp = llama()
        if getattr(self, "_ctx", None):
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            self._weights.release()
            self._model = None

    def sibling(self, **changes: object) -> LlamaEngine:
        """Another context on the same weights, with ``changes`` to the settings (threads, the
        capture; not ``mmap``), for comparisons in one process. Each is closed on its own."""
        if "mmap" in changes:
            raise EngineError("a sibling shares the weights: mmap cannot change")
        if not self._model:
            raise EngineError("the engine is closed")
        settings = replace(self.settings, **changes)  # type: ignore[arg-type]
        return LlamaEngine(self._weights.path, settings, _weights=self._weights)

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self.close()

    def new_sampler(self, *, grammar: str | None = None) -> Sampler:
        return Sampler(self._vocab, grammar=grammar)
