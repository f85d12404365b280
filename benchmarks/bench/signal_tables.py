"""The Markdown tables of a bench that compare routing signals: AUROC/ECE side by side,
RouteLLM's APGR and CPT, and the hidden-state calibrator's fit with its shuffled-label check."""

from __future__ import annotations

from typing import Any

from benchmarks.bench.config import SIGNALS
from benchmarks.markdown import fmt as _fmt
from benchmarks.markdown import markdown_table

SIGNAL_HEADERS = {
    "bucket": "bucket",
    "bucket_expectation": "E[bucket]",
    "letter": "letter",
    "calibrated": "calibrated v1",
    "hidden": "hidden v2",
}


def signals_side_by_side(models: list[dict[str, Any]]) -> list[str]:
    """AUROC and ECE of every signal, per model."""
    rows = []
    for m in models:
        cells = []
        for signal in SIGNALS:
            cal = m["calibration"].get(signal)
            cells.append("–" if not cal else f"{_fmt(cal['auroc'], 3)} / {_fmt(cal['ece'], 3)}")
        rows.append([m["label"], *cells])
    header = ["Model (AUROC / ECE)", *(SIGNAL_HEADERS[s] for s in SIGNALS)]
    return markdown_table(header, rows)


def routellm_table(models: list[dict[str, Any]]) -> list[str]:
    """RouteLLM's APGR and CPT(50 %) / CPT(80 %) per model and signal (random: 0.5, 50 %, 80 %)."""
    rows = []
    for m in models:
        for signal, r in (m.get("routellm") or {}).items():
            if r is None:
                continue
            apgr = "–" if r["apgr"] is None else f"{r['apgr']:.3f} ± {_fmt(r['apgr_se'], 3)}"
            rows.append(
                [m["label"], SIGNAL_HEADERS.get(signal, signal), apgr, _pct_or_dash(r["cpt50"]),
                 _pct_or_dash(r["cpt80"])]
            )  # fmt: skip
    header = ["Model", "Signal", "APGR ± SE", "CPT(50%)", "CPT(80%)"]
    return markdown_table(header, rows) if rows else []


def _pct_or_dash(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:.1f} %"


def probe_lines(m: dict[str, Any]) -> list[str]:
    """The hidden calibrator's fit, and the shuffled-label sanity check."""
    fit, shuffled = m.get("hidden_calibrator_fit"), m.get("shuffled_label_probe")
    if not fit:
        return []
    lines = [
        f"Hidden-state calibrator (v2): {fit['components']} principal components, L2 "
        f"{fit['l2']}, chosen by {fit['cv_folds']}-fold CV log loss on {fit['n']} calib "
        f"questions; CV AUROC {_fmt(fit['auroc'], 3)}, ECE {_fmt(fit['ece'], 3)}."
    ]
    if shuffled:
        values = [a for a in shuffled["eval_auroc"] if a is not None]
        lines.append(
            f"Sanity check: the same fit on {shuffled['n']} permutations of the calib labels "
            f"(seed {shuffled['seed']}) ranks eval at AUROC {_fmt(shuffled['eval_auroc_mean'], 3)}"
            f" ± {_fmt(shuffled['eval_auroc_sd'], 3)} (mean ± SD over permutations; range "
            f"{_fmt(min(values, default=None), 3)}–{_fmt(max(values, default=None), 3)}; "
            f"chance: 0.5; an AUROC's Hanley–McNeil SE here would be "
            f"{_fmt(shuffled['hanley_mcneil_se'], 3)}). The real probe's "
            f"{_fmt(shuffled['real_eval_auroc'], 3)} is above "
            f"{_fmt(100 * (shuffled['real_above_fraction'] or 0.0), 0)} % of them."
        )
    return ["", *lines]
