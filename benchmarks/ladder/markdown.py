"""ladder.md: the rungs side by side, the calibrator transfer, and what to ship where."""

from __future__ import annotations

from typing import Any

from benchmarks.markdown import fmt as _f
from benchmarks.markdown import markdown_table

SAFE_ROUTED_SHIFT = 5.0  # points of cloud fraction at the F16 tau a deployment tolerates


def _pm(value: Any, se: Any) -> str:
    return "–" if value is None else f"{_f(value)} ±{_f(se)}"


def render(ladder: dict[str, Any]) -> str:
    rungs: dict[str, dict[str, Any]] = ladder["rungs"]
    settings = ladder["settings"]
    lines = [
        f"# Quantization ladder: {ladder['model']}",
        "",
        ladder["note"],
        "",
        f"{settings['n_questions']} {settings['split']} questions ({settings['per_domain']} per "
        f"domain), calibrators and taus fitted on {settings['n_calib']} calib questions; "
        f"{ladder['machine_line']}.",
        "",
        "## Size and speed",
        "",
        *_speed(rungs),
        "",
        "## Accuracy, calibration and routing",
        "",
    ]
    lines += _quality(rungs)
    lines += ["", "## A calibrator fitted on F16, used on every rung", ""]
    lines += _transfer(ladder["transfer"])
    lines += ["", "## What to ship", ""]
    lines += recommendations(rungs)
    return "\n".join(lines) + "\n"


def _speed(rungs: dict[str, dict[str, Any]]) -> list[str]:
    header = ["rung", "size MB", "load ms", "cold start ms", "peak RSS MB", "prompt tok/s",
              "decode tok/s", "fast median ms", "fast p95 ms", "repacked",
              "stored as (tensors)"]  # fmt: skip
    rows = [
        [name, _f(r["size_mb"]), _f(r["load_ms"], 0), _f(r["cold_start_ms"], 0),
         _f(r["peak_rss_fast_only_mb"]), _f(r["prompt_eval_tokens_per_s"]),
         _f(r["decode_tokens_per_s"]), _f(r["fast_median_ms"], 0), _f(r["fast_p95_ms"], 0),
         "yes" if r["repack"]["repacked"] else "no", _stored(r.get("stored_as"))]
        for name, r in rungs.items()
    ]  # fmt: skip
    return markdown_table(header, rows)


def _stored(types: dict[str, int] | None) -> str:
    return ", ".join(f"{name} {count}" for name, count in types.items()) if types else "–"


def _quality(rungs: dict[str, dict[str, Any]]) -> list[str]:
    # hand-built, not markdown_table: a rung's later signal rows leave its three cells blank as
    # "| | | |" (one space each) in the committed ladder.md, where markdown_table writes "|  |"
    lines = [
        "Accuracy and agreement (same letter as F16) in %, ± one standard error. Per signal: "
        "AUROC, ECE, the routed % at the tau chosen on F16's calib for 70 % routed (for the "
        "calibrated signals with F16's calibrator too: what a deployment that keeps them would "
        "route) and its shift from F16 in points (± the paired SE: the same questions on both "
        "rungs), and the lift over random at the rung's own "
        "calib-chosen tau (its own calibrator).",
        "",
        "| rung | accuracy | agree w/ F16 | signal | AUROC | ECE | routed at F16 tau | shift "
        "| lift at own tau |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rungs.items():
        for i, (signal, s) in enumerate((k, v) for k, v in r["signals"].items() if v):
            head = (
                f"| {name} | {_pm(r['accuracy'], r['accuracy_se'])} "
                f"| {_pm(r['agreement_with_f16'], r['agreement_se'])} "
                if i == 0
                else "| | | "
            )
            auroc = f"{_f(s['auroc'], 3)} ±{_f(s['auroc_se'], 3)}"
            lines.append(
                head + f"| {signal} | {auroc} | {_f(s['ece'], 3)} "
                f"| {_pm(s.get('routed_at_f16_tau'), s.get('routed_se'))} "
                f"| {_pm(s.get('routed_shift'), s.get('routed_shift_se'))} "
                f"| {_pm(s.get('lift'), s.get('lift_se'))} |"
            )
    return lines


def _transfer(transfer: dict[str, dict[str, Any]]) -> list[str]:
    header = ["rung", "signal", "AUROC (F16's calibrator)", "AUROC (own)", "routed %",
              "lift (F16's)", "lift lost vs own"]  # fmt: skip
    rows = [
        [name, signal, _f(t["auroc_f16_calibrator"], 3), _f(t["auroc_own_calibrator"], 3),
         _f(t["routed"]), _pm(t["lift"], t["lift_se"]), _f(t.get("lift_lost"))]
        for name, signals in transfer.items()
        for signal, t in signals.items()
    ]  # fmt: skip
    return markdown_table(header, rows)


def safe_rungs(rungs: dict[str, dict[str, Any]]) -> list[str]:
    """Rungs whose accuracy is within one standard error of F16's and whose routing at F16's
    tau moves by at most SAFE_ROUTED_SHIFT points on every signal (or by less than two paired
    SEs: on a small subset a few questions move it, and noise is not a verdict)."""
    f16 = next(iter(rungs.values()))
    safe = []
    for name, r in rungs.items():
        close = abs(r["accuracy"] - f16["accuracy"]) <= max(r["accuracy_se"], f16["accuracy_se"])
        signals = [s for s in r["signals"].values() if s and "routed_shift" in s]
        if close and all(_tolerable(s) for s in signals):
            safe.append(name)
    return safe


def _tolerable(signal: dict[str, Any]) -> bool:
    noise = 2 * (signal.get("routed_shift_se") or 0.0)
    return abs(signal["routed_shift"]) <= max(SAFE_ROUTED_SHIFT, noise)


def recommendations(rungs: dict[str, dict[str, Any]]) -> list[str]:
    safe = safe_rungs(rungs) or [next(iter(rungs))]
    smallest = min(safe, key=lambda n: rungs[n]["size_mb"])
    fastest = min(safe, key=lambda n: rungs[n]["fast_median_ms"])
    quantized = [n for n in safe if n != next(iter(rungs))] or safe  # F16 is the yardstick
    best = max(quantized, key=lambda n: (rungs[n]["agreement_with_f16"], -rungs[n]["size_mb"]))
    s, f, b = rungs[smallest], rungs[fastest], rungs[best]
    return [
        f"Rungs that keep F16's accuracy (within one SE) and routing (shift <= "
        f"{SAFE_ROUTED_SHIFT:.0f} points at F16's taus, or within two paired SEs): "
        f"{', '.join(safe)}.",
        "",
        *markdown_table(
            ["device", "ship", "why (measured here)"],
            [
                [
                    "Pi 4/5-class, 4-8 GB (**extrapolated**: not measured on a Pi)",
                    smallest,
                    f"the smallest safe rung: {_f(s['size_mb'])} MB, "
                    f"{_f(s['peak_rss_fast_only_mb'])} MB RSS here; a Pi's memory bandwidth makes "
                    "size the speed",
                ],
                [
                    "laptop",
                    fastest,
                    f"the fastest safe rung here: fast median {_f(f['fast_median_ms'], 0)} ms, "
                    f"{_f(f['prompt_eval_tokens_per_s'])} prompt tok/s",
                ],
                [
                    "LAN gateway",
                    best,
                    f"the quantized rung closest to F16 ({_f(b['agreement_with_f16'])} % same "
                    f"letters, accuracy {_f(b['accuracy'])} %) at {_f(b['size_mb'])} MB",
                ],
            ],
        ),
    ]
