"""`make demo`: a handful of real bundled questions through the best installed tier, routed.

python -m benchmarks.demo [--model NAME] [--per-domain N] [--tau T] [--signal S] [--mode M]

Without ``--model`` (or FOGGEN_MODEL) the demo runs the installed named model that routed best
in our measurements (``DEMO_ORDER``); ``--model embedded`` shows the embedded 270M.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Sequence
from dataclasses import replace

from edge_runtime.catalog import EMBEDDED_NAME, installed, require_named
from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.mcq import stratified
from edge_runtime.question import Question
from edge_runtime.routing.rule import Signal
from edge_runtime.runtime import EdgeRuntime

# Best routing first, as measured in reports/tiers/bench.md (lift at the recommended points).
# Each model routes on its shipped routing profile unless --signal or --tau is given.
DEMO_ORDER = ("qwen2.5-coder-1.5b", EMBEDDED_NAME)


def demo_model() -> str:
    """The first installed model of ``DEMO_ORDER`` (the embedded one is always installed)."""
    return next(name for name in DEMO_ORDER if installed(require_named(name)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model name, path or hf:// ref (default: best tier)")
    parser.add_argument("--per-domain", type=int, default=2, help="questions per domain")
    parser.add_argument("--tau", type=float, help="routing threshold (default: the model's)")
    parser.add_argument("--signal", choices=[s.value for s in Signal], help="routing signal")
    parser.add_argument("--mode", choices=[m.value for m in Mode], default="fast")
    args = parser.parse_args(argv)
    model = args.model or os.environ.get("FOGGEN_MODEL") or demo_model()
    config = replace(RuntimeConfig.from_env(), model=model)
    if args.signal or args.tau is not None:
        config = replace(config, signal=Signal(args.signal) if args.signal else None, tau=args.tau)
    with EdgeRuntime.load(config) as runtime:
        _show(runtime, stratified(args.per_domain), Mode(args.mode))


def _show(runtime: EdgeRuntime, questions: Sequence[Question], mode: Mode) -> None:
    file, info = runtime.model.file, runtime.model.info
    routing = runtime.routing
    source = f"profile {routing.profile_label}" if routing.profile else "chosen or the card's"
    per_domain = " (per-domain taus)" if routing.profile or routing.tau_table else ""
    print(
        f"model: {file.reference} - {info.name or info.architecture} ({info.file_type}, sha256 "
        f"{file.sha256[:12]}...)\nrouting ({source}): {routing.default_signal.value} >= "
        f"{routing.default_tau:.4g}{per_domain} stays on the device; no cloud is configured, so "
        "an escalation is answered on the device and marked edge_fallback\n"
    )
    if routing.profile and routing.profile.note:
        print(textwrap.fill(routing.profile.note, 100) + "\n")
    header = (
        f"{'domain':8} {'question':44} {'gold':4} {'edge':4} {'conf':>5} {'score':>5} "
        f"{'route':6} {'source':13} {'ms':>6}"
    )
    print(header)
    print("-" * len(header))
    right = 0
    for question in questions:
        record = runtime.answer(question, mode=mode)
        right += record.local_answer == question.answer
        text = textwrap.shorten(question.text.replace("\n", " "), 44, placeholder="...")
        score = "-" if record.score is None else f"{record.score:.2f}"
        print(
            f"{question.domain:8} {text:44} {question.answer:4} {record.local_answer or '-':4} "
            f"{record.confidence!s:>5} {score:>5} {record.route.value:6} "
            f"{record.answer_source.value:13} {record.latency_ms.total:6.0f}"
        )
    print(
        f"\nthe device answered {right}/{len(questions)} correctly. Another model: "
        "--model embedded | smollm2-135m | qwen2.5-coder-1.5b | a .gguf path"
    )


if __name__ == "__main__":
    main()
