"""LoRA SFT step time and peak RSS: the LM head on every position vs only on the targets.

    python -m benchmarks.train_speed --checkpoint DIR [--steps 4] [--out reports/train-speed.json]

Each variant runs in its own process (peak RSS is per process) on the same examples (train
split, 10 per domain, random buckets): ``full`` = logits at every position and plain shuffled
batches (what a stock HF loss does), ``targets`` = the LM head only where the loss is taken,
``targets+buckets`` = that plus length-bucketed batches (the default). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.report import machine, write_json

VARIANTS = {
    "full": {"head": "full", "bucketed": False},
    "targets": {"head": "targets", "bucketed": False},
    "targets+buckets": {"head": "targets", "bucketed": True},
}


def write_examples_file(path: Path) -> None:
    from converter.sft_data import Example, write_examples
    from edge_runtime.mcq import stratified
    from edge_runtime.schema import BUCKETS

    rng = random.Random(0)
    questions = stratified(10, split="train")
    write_examples(path, [Example(q, rng.choice(BUCKETS), q.answer or "A") for q in questions])


def run_variant(checkpoint: str, examples: Path, name: str, steps: int, dtype: str) -> dict:
    """One variant in a fresh interpreter; its TrainReport as a dict."""
    options = dict(VARIANTS[name], max_steps=steps, dtype=dtype, max_batch_tokens=0)
    code = (
        "import json, sys, tempfile\n"
        "from converter.train import TrainConfig, train\n"
        f"config = TrainConfig(**{options!r})\n"
        "with tempfile.TemporaryDirectory() as out:\n"
        f"    report = train({checkpoint!r}, {str(examples)!r}, out, config)\n"
        "print(json.dumps(report.to_dict()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="HF checkpoint folder")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--dtype", default="auto", help="auto | bf16 | fp32")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="reports/train-speed.json")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        examples = Path(tmp) / "examples.jsonl"
        write_examples_file(examples)
        for name in args.variants.split(","):
            results[name] = run_variant(args.checkpoint, examples, name, args.steps, args.dtype)
            print(name, json.dumps(results[name]), flush=True)
    write_json(args.out, {"machine": machine(), "steps": args.steps, "variants": results})


if __name__ == "__main__":
    main()
