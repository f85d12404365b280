"""Copy named tensors out of llama.cpp's compute graph while it runs (the graph eval callback).

llama.cpp's context parameters take a ``cb_eval`` callback that ggml's scheduler calls twice:
with ``ask=True`` for every node of the graph ("do you want this tensor?"), then, for each node
that said yes, with ``ask=False`` once the graph has been computed up to it and its data is
valid (returning False there stops the graph). A :class:`StateCapture` wants the nodes of a few
names: llama.cpp's ``result_norm``, the final hidden state after the output norm, [n_embd,
n_outputs] - only the batch's output rows, in batch order; and layer outputs ``l_out-<layer>``
(the residual stream), [n_embd, n_tokens] - a row per token of the batch, except the last
layer's, which llama.cpp computes for the output rows only. With a :class:`RowPlan` only the
rows asked for are copied (a few rows of 1,536 floats, not the batch's whole activations).

Written by hand because llama-cpp-python exposes the callback's type and the parameter but not
ggml's tensor accessors: the few needed are declared here with ctypes on the ``libggml-base``
that llama-cpp-python bundles (the copy its llama.cpp already runs on), loaded lazily.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_runtime.errors import EdgeRuntimeError

if TYPE_CHECKING:
    from llama_cpp import llama_context_params

FINAL_STATE = "result_norm"  # llama.cpp's name of the output-normed last layer (``t_embd``)

GGML_TYPE_F32 = 0  # enum ggml_type
_F32 = f"capture a contiguous f32 activation instead ({FINAL_STATE}, l_out-<layer>)"


class CaptureError(EdgeRuntimeError, RuntimeError):
    """A tensor could not be captured: the ggml library is missing, the tensor is not a
    contiguous float32 one, or the callback failed while the graph ran."""

    kind = "capture"

    def __init__(
        self,
        name: str,
        reason: str,
        *,
        next_step: str = "evaluate again (this one's states are lost)",
    ) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"could not capture the tensor {name!r}: {reason} - {next_step}")


def _library_names() -> tuple[str, ...]:
    if sys.platform == "win32":
        return ("ggml-base.dll", "libggml-base.dll")
    if sys.platform == "darwin":
        return ("libggml-base.dylib", "libggml-base.so")
    return ("libggml-base.so",)


def _library_path() -> Path:
    """llama-cpp-python's ``libggml-base``, found where llama_cpp loads its libraries from."""
    import llama_cpp

    override = os.environ.get("LLAMA_CPP_LIB_PATH")  # llama_cpp's own rule, read at its import
    folder = Path(override) if override else Path(llama_cpp.__file__).parent / "lib"
    for name in _library_names():
        if (folder / name).is_file():
            return folder / name
    raise CaptureError(
        FINAL_STATE,
        f"llama-cpp-python's libggml-base is not in {folder} (a build linked to a system ggml?)",
        next_step="reinstall llama-cpp-python, or load the model without capture_hidden",
    )


def _declare(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> None:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)


@functools.cache
def _ggml() -> ctypes.CDLL:
    """The ggml tensor accessors (ggml.h / ggml-backend.h), declared once."""
    lib = ctypes.CDLL(str(_library_path()))
    tensor, size = ctypes.c_void_p, ctypes.c_size_t
    _declare(lib, "ggml_get_name", ctypes.c_char_p, tensor)
    _declare(lib, "ggml_type_name", ctypes.c_char_p, ctypes.c_int)
    _declare(lib, "ggml_nelements", ctypes.c_int64, tensor)
    _declare(lib, "ggml_nrows", ctypes.c_int64, tensor)
    _declare(lib, "ggml_nbytes", size, tensor)
    _declare(lib, "ggml_is_contiguous", ctypes.c_bool, tensor)
    _declare(lib, "ggml_backend_tensor_get", None, tensor, ctypes.c_void_p, size, size)
    return lib


def _tensor_type(tensor: int) -> int:
    """``tensor->type``. ggml exports no getter for it; it is the first field of
    ``struct ggml_tensor`` (an int-sized enum) in every ggml release."""
    return ctypes.c_int.from_address(tensor).value


def _f32_shape(tensor: int, name: str) -> tuple[int, int]:
    """(rows, width) of a contiguous F32 tensor; raises for anything else."""
    lib = _ggml()
    kind = _tensor_type(tensor)
    if kind != GGML_TYPE_F32:
        type_name = (lib.ggml_type_name(kind) or b"?").decode()
        raise CaptureError(
            name, f"it is {type_name}, and only f32 tensors are read", next_step=_F32
        )
    if not lib.ggml_is_contiguous(tensor):
        raise CaptureError(name, "it is not contiguous in memory", next_step=_F32)
    count, rows, size = lib.ggml_nelements(tensor), lib.ggml_nrows(tensor), lib.ggml_nbytes(tensor)
    if size != 4 * count:  # a cross-check of the type read above
        raise CaptureError(name, f"{size} bytes for {count} f32 values")
    return rows, (count // rows if rows else 0)


@dataclass(frozen=True)
class RowPlan:
    """Which rows of the next graph to copy: batch indices ``rows`` of a batch of ``n_tokens``
    whose output rows are ``outputs`` (ascending batch indices).

    A tensor has a row per token (the layers before the last), or a row per output (the last
    layer and ``result_norm``: llama.cpp drops the other rows before the last layer); a row
    that is no output is then not there, and is not copied."""

    n_tokens: int
    outputs: tuple[int, ...]
    rows: tuple[int, ...]

    def sources(self, n_rows: int, name: str) -> dict[int, int]:
        """Batch index -> row of a tensor of ``n_rows`` rows."""
        if n_rows == self.n_tokens:
            return {b: b for b in self.rows}
        if n_rows == len(self.outputs):
            ordinal = {b: i for i, b in enumerate(self.outputs)}
            return {b: ordinal[b] for b in self.rows if b in ordinal}
        raise CaptureError(
            name,
            f"{n_rows} rows in a batch of {self.n_tokens} tokens with {len(self.outputs)} outputs",
        )


def copy_planned(tensor: int, name: str, plan: RowPlan) -> dict[int, np.ndarray]:
    """The planned rows of a contiguous F32 tensor (float32 copies), by batch index."""
    n_rows, width = _f32_shape(tensor, name)
    get = _ggml().ggml_backend_tensor_get
    picked: dict[int, np.ndarray] = {}
    for index, row in plan.sources(n_rows, name).items():
        out = np.empty(width, dtype=np.float32)
        get(tensor, out.ctypes.data, row * out.nbytes, out.nbytes)
        picked[index] = out
    return picked


def layer_name(layer: int) -> str:
    """llama.cpp's name of a layer's output (the residual stream after block ``layer``)."""
    return f"l_out-{layer}"


NodeCallback = Callable[[int, bool, int | None], bool]


class StateCapture:
    """Copies the tensors of ``names`` each time llama.cpp's graph computes them, until taken.

    One capture serves one context: :meth:`install` it into the parameters the context is
    created with, and keep this object alive as long as the context (it owns the callback).
    """

    def __init__(self, names: Sequence[str]) -> None:
        if not names:
            raise ValueError("a StateCapture needs at least one tensor name")
        self.names = tuple(names)
        self._picked: dict[str, dict[int, np.ndarray]] = {name: {} for name in self.names}
        self._plan: RowPlan | None = None  # the engine sets one before each decode
        self._failure: tuple[str, BaseException] | None = None  # the node's name, the error
        self._callback: object | None = None  # the ctypes callback, referenced for C

    def install(self, ctx_params: llama_context_params) -> None:
        """Set ``cb_eval`` (and its user data) of llama.cpp context parameters."""
        import llama_cpp

        _ggml()  # fail now, not inside the graph, when the library cannot be loaded
        self._callback = llama_cpp.ggml_backend_sched_eval_callback(self._node_callback())
        ctx_params.cb_eval = self._callback
        ctx_params.cb_eval_user_data = ctypes.c_void_p()  # NULL: the closure holds the state

    def plan(self, plan: RowPlan) -> None:
        """Copy ``plan``'s rows of the graphs to come (before a plan, nothing is copied)."""
        self._plan = plan

    def take_rows(self, name: str) -> dict[int, np.ndarray]:
        """The planned rows of ``name`` captured since the last take, by batch index, and
        forget them. Raises :class:`CaptureError` if the callback failed since then."""
        if name not in self._picked:
            raise ValueError(f"{name!r} is not captured (the names are {', '.join(self.names)})")
        self._raise_failure()
        picked, self._picked[name] = self._picked[name], {}
        return picked

    def clear(self) -> None:
        """Forget every captured row and any failure."""
        for picked in self._picked.values():
            picked.clear()
        self._failure = None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            node, failure = self._failure
            self.clear()
            if isinstance(failure, CaptureError) or not isinstance(failure, Exception):
                raise failure  # ours, or a KeyboardInterrupt that arrived while the graph ran
            raise CaptureError(node, f"the graph callback failed: {failure!r}") from failure

    def _node_callback(self) -> NodeCallback:
        # Every graph node runs this (hundreds per decode), so the question is one ctypes call
        # and a set lookup. Remembering decisions per tensor address would be wrong: llama.cpp
        # builds each graph in the same reused memory, so an address names another node (or no
        # node) in the next graph.
        wanted = frozenset(name.encode() for name in self.names)
        get_name = _ggml().ggml_get_name
        picked = self._picked

        def on_node(tensor: int, ask: bool, user_data: int | None) -> bool:
            raw = b"?"
            try:
                raw = get_name(tensor)
                if ask:
                    return raw in wanted
                name = raw.decode()
                if self._plan is not None:
                    picked[name].update(copy_planned(tensor, name, self._plan))
            except BaseException as error:  # noqa: BLE001 - nothing may unwind into C
                if self._failure is None:
                    self._failure = (raw.decode(errors="replace"), error)  # take() raises it
                # asked: do not want the node; after a copy: go on all the same, since a graph
                # stopped here leaves later layers' KV cache unwritten and the logits stale
                return not ask
            return True

        return on_node
