"""Parity figures of the converter on the real-size model, in one run.

    python -m benchmarks.converter_parity [--model NAME] [--prompts 50] [--questions 105]

A named model's GGUF (default: the embedded Gemma-3-270M) -> bf16 HF checkpoint
(``--from-gguf``) -> our F32 and BF16 GGUFs -> llama.cpp, teacher-forced against transformers
(fp32, eager) on bundled eval prompts; the decision (letter with the bucket held fixed) of our
F32 export against the original (quantized) file on eval questions, next to the floor of
llama.cpp's own batch-shape noise on that file; and Q8_0 / Q4_K_M quantized from our F32 export
against it. Needs the [train] extra.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.converter_reference import model_tag
from converter.gguf_export import OutType, export_gguf
from converter.quantize import QuantType, quantize
from converter.to_hf import gguf_to_hf
from converter.verify import (
    batch_shape_self_agreement,
    compare_ggufs,
    decision_agreement,
    verify,
)
from edge_runtime.config import foggen_home
from edge_runtime.mcq import DOMAINS, stratified
from edge_runtime.models import resolve_model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=50, help="teacher-forced prompts")
    parser.add_argument("--questions", type=int, default=105, help="questions for decisions")
    parser.add_argument("--model", default="gemma-3-270m", help="a named model (foggen model list)")
    parser.add_argument("--work", default=".cache/parity")
    parser.add_argument("--out", help="default: reports/converter-parity[-MODEL].json")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    original = resolve_model(args.model, home=foggen_home()).path
    checkpoint = work / f"{args.model}-hf"
    if not checkpoint.exists():
        gguf_to_hf(original, checkpoint)
    prompts = stratified(-(-args.prompts // len(DOMAINS)))[: args.prompts]
    questions = stratified(-(-args.questions // len(DOMAINS)))[: args.questions]
    report: dict[str, Any] = {
        "model": args.model,
        "original": original.name,
        "prompts": len(prompts),
        "questions": len(questions),
    }
    exports = {}
    for out_type in (OutType.F32, OutType.BF16):
        started = time.perf_counter()
        exports[out_type] = export_gguf(
            checkpoint, work / f"{args.model}-{out_type.value}.gguf", out_type=out_type
        )
        parity = verify(checkpoint, exports[out_type], prompts)
        report[f"{out_type.value}_vs_transformers"] = {
            **parity.to_dict(),
            "seconds": round(time.perf_counter() - started, 1),
        }
    f32 = exports[OutType.F32]
    report["f32_vs_original"] = decision_agreement(original, f32, questions).to_dict()
    report["original_self_agreement_512_vs_64"] = batch_shape_self_agreement(original, questions)
    for quant in (QuantType.Q8_0, QuantType.Q4_K_M):
        result = quantize(f32, work / f"{args.model}-{quant.value}.gguf", quant)
        report[f"{quant.value}_from_f32"] = {
            **result.to_dict(),
            "vs_f32_teacher_forced": compare_ggufs(f32, result.path, prompts[:14]).to_dict(),
            "vs_f32_decisions": decision_agreement(f32, result.path, questions).to_dict(),
        }
    tag = model_tag(args.model)
    out = Path(args.out or f"reports/converter-parity{tag}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
