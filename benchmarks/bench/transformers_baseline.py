"""The baseline a user would otherwise run: the card's demo path, transformers ``generate`` on
CPU in bf16, greedy, at most 64 new tokens, fed the very token ids llama.cpp evaluates.

Needs the ``[train]`` extra (torch, transformers); imported lazily.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from edge_runtime.config import MAX_NEW_TOKENS
from edge_runtime.question import Question
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.schema import AnswerSchema

log = logging.getLogger(__name__)


def transformers_available() -> str | None:
    """None when torch and transformers import, else why not (the row is then skipped)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        return f"torch/transformers not installed ({exc.name}); pip install 'foggen-edge[train]'"
    return None


def run_baseline(
    checkpoint: Path,
    runtime: EdgeRuntime,
    questions: Sequence[Question],
    *,
    threads: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Load once (timed), then generate per question (timed); outputs parsed like free mode."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16)
    model.eval()
    load_ms = (time.perf_counter() - started) * 1000.0
    rows = []
    for q in tqdm(questions, desc="transformers bf16", unit="q", disable=not progress):
        ids = torch.tensor([runtime.prompt_tokens(q)])
        started = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False,
                eos_token_id=[1, 106],  # <eos>, <end_of_turn>
                pad_token_id=0,
            )
        ms = (time.perf_counter() - started) * 1000.0
        new = out[0, ids.shape[1] :].tolist()
        text = runtime.engine.detokenize([t for t in new if t not in (1, 106)])
        parsed = AnswerSchema.for_options(len(q.choices)).parse(text)
        rows.append(
            {
                "id": q.id,
                "ms": round(ms, 2),
                "new_tokens": len(new),
                "strict": parsed.strict,
                "lenient": parsed.lenient,
            }
        )
    return {
        "checkpoint": str(checkpoint),
        "dtype": "bfloat16",
        "load_ms": round(load_ms, 1),
        "threads": threads,
        "rows": rows,
    }
