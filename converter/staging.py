"""Output folders that appear only when complete: built beside the target, then renamed.

Shared by every GGUF -> HF writer (``to_hf`` for Gemma-3, ``to_hf_transformers`` for the
families transformers loads), so neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from converter.errors import OutputError
from edge_runtime.atomic import atomic_dir


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A new folder beside ``out_dir`` that becomes it when the block completes, everything in
    it flushed to disk first; removed if the block fails (the output appears only when
    complete: :func:`edge_runtime.atomic.atomic_dir`)."""
    with ExitStack() as stack:
        try:
            staging = stack.enter_context(atomic_dir(out_dir))
        except OSError as exc:
            raise OutputError(f"cannot write into {out_dir.parent}: {exc}") from exc
        yield staging
