"""`make demo`: a handful of real bundled questions through the embedded model, with routing.

python -m benchmarks.demo [--per-domain N] [--tau T] [--mode fast|grammar|free]
"""

from __future__ import annotations

import argparse
import textwrap

from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.mcq import stratified
from edge_runtime.runtime import EdgeRuntime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=2, help="questions per domain")
    parser.add_argument("--tau", type=float, default=0.5, help="routing threshold")
    parser.add_argument("--mode", choices=[m.value for m in Mode], default="fast")
    args = parser.parse_args(argv)
    config = RuntimeConfig.from_env()
    with EdgeRuntime.load(config) as runtime:
        info = runtime.model.info
        print(
            f"model: {runtime.model.file.path} ({info.file_type}, sha256 "
            f"{runtime.model.file.sha256[:12]}...), no cloud configured: escalations are "
            "answered on the device and marked edge_fallback\n"
        )
        header = (
            f"{'domain':8} {'question':44} {'gold':4} {'edge':4} {'conf':>5} {'route':6} "
            f"{'source':13} {'ms':>5}"
        )
        print(header)
        print("-" * len(header))
        right = 0
        questions = stratified(args.per_domain)
        for question in questions:
            record = runtime.answer(question, tau=args.tau, mode=Mode(args.mode))
            right += record.local_answer == question.answer
            text = textwrap.shorten(question.text.replace("\n", " "), 44, placeholder="...")
            print(
                f"{question.domain:8} {text:44} {question.answer:4} {record.local_answer or '-':4} "
                f"{record.confidence!s:>5} {record.route.value:6} {record.answer_source.value:13} "
                f"{record.latency_ms.total:5.0f}"
            )
        print(
            f"\nedge model correct on {right}/{len(questions)}. This is the *base* Gemma-3-270M:"
            " its confidence carries no information until it is FogGen-trained."
        )


if __name__ == "__main__":
    main()
