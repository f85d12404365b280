"""The baseline a user would otherwise run: the card's demo path, transformers ``generate`` on
CPU in bf16, greedy, at most 64 new tokens, fed the very token ids llama.cpp evaluates, and
stopped where the runtime stops: at the checkpoint's end-of-sequence tokens and the runtime's
end of turn (see :func:`stop_tokens`).

Needs the ``[train]`` extra (torch, transformers); imported lazily.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.errors import BaselineModelError
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


@dataclass(frozen=True)
class StopTokens:
    """What ``generate`` stops at (end of sequence, end of turn) and pads with."""

    stop: tuple[int, ...]
    pad: int


def _ids(value: Any) -> tuple[int, ...]:
    """A config's token id field (an int, a list of them, or None) as a tuple."""
    if value is None:
        return ()
    return tuple(int(v) for v in value) if isinstance(value, list | tuple) else (int(value),)


def stop_tokens(model: Any, *, end_of_turn: str, end_of_turn_ids: Sequence[int]) -> StopTokens:
    """The checkpoint's end-of-sequence and pad ids (its generation config, else its config),
    and the runtime's end of turn (``end_of_turn``, as the runtime's tokenizer reads it: the
    ids the baseline is fed come from there too). Gemma-3: (1, 106), pad 0."""
    where = "generation_config.json or config.json"
    eos, pads = (
        _ids(getattr(model.generation_config, key, None)) or _ids(getattr(model.config, key, None))
        for key in ("eos_token_id", "pad_token_id")
    )
    if not eos:
        raise BaselineModelError(f"the checkpoint names no eos_token_id (in {where})")
    if not pads:
        raise BaselineModelError(
            f"the checkpoint names no pad_token_id (in {where}); add one (e.g. its eos id) "
            "to run the transformers baseline"
        )
    if len(end_of_turn_ids) != 1:
        raise BaselineModelError(
            f"the runtime's end of turn {end_of_turn!r} is {len(end_of_turn_ids)} tokens, not "
            "one: the baseline could not stop where the runtime does"
        )
    turn = int(end_of_turn_ids[0])
    return StopTokens(stop=eos if turn in eos else (*eos, turn), pad=pads[0])


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
    end_of_turn = runtime.chat_format.end_of_turn
    tokens = stop_tokens(
        model, end_of_turn=end_of_turn, end_of_turn_ids=runtime.engine.tokenize(end_of_turn)
    )
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
                eos_token_id=list(tokens.stop),
                pad_token_id=tokens.pad,
            )
        ms = (time.perf_counter() - started) * 1000.0
        new = out[0, ids.shape[1] :].tolist()
        text = runtime.engine.detokenize([t for t in new if t not in tokens.stop])
        parsed = AnswerSchema.for_options(len(q.choices)).parse(text)
        rows.append(
            {
                "id": q.id,
                "ms": round(ms, 2),
                "prompt_tokens": int(ids.shape[1]),
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
