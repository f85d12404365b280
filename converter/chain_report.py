"""The chain report: one row per checkpoint (start, then after each round), JSON + Markdown,
and a PNG of the metrics per round when matplotlib is installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COLUMNS = (
    ("free_strict", "free strict"),
    ("free_lenient", "free lenient"),
    ("raw_accuracy", "raw acc."),
    ("auroc", "AUROC"),
    ("ece", "ECE"),
)


def rows(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The benched checkpoints in order: the start (round 0's input), then each round's output."""
    out = []
    start = manifests[0]["steps"].get("start") if manifests else None
    if start:
        out.append({"checkpoint": "start", **start["bench"]})
    for m in manifests:
        if "bench" in m["steps"]:
            out.append({"checkpoint": f"after round {m['round']}", **m["steps"]["bench"]})
    return out


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(manifests: list[dict[str, Any]], title: str) -> str:
    lines = [f"# {title}", ""]
    header = ["checkpoint", *(label for _, label in COLUMNS), "cloud %", "system", "random", "lift"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(manifests):
        at = row["at_tau"]
        cells = [row["checkpoint"], *(_cell(row.get(key)) for key, _ in COLUMNS)]
        cells += [_cell(at["cloud_fraction"]), _cell(at["accuracy"]), _cell(at["random"])]
        cells.append(_cell(at["lift"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Time per stage (seconds)", "", "| round | step | seconds |", "|---|---|---|"]
    for m in manifests:
        for step, facts in m["steps"].items():
            lines.append(f"| {m['round']} | {step} | {facts.get('seconds', '-')} |")
    for m in manifests:
        sample = m["steps"].get("sample")
        if sample:
            p = sample["probe"]
            lines += [
                "",
                f"Round {m['round']} self-sampling: {sample['n']} questions, "
                f"{sample['questions_per_second']} questions/s over the buffer; probe of "
                f"{p['questions']}: batched {p['batched_qps']} q/s vs one at a time "
                f"{p['one_at_a_time_qps']} q/s.",
            ]
    return "\n".join(lines) + "\n"


def plot(manifests: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no plot")
        return False
    data = rows(manifests)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (*COLUMNS, ("lift", "lift @ tau")):
        values = [(r["at_tau"]["lift"] if key == "lift" else r.get(key)) for r in data]
        ax.plot(range(len(data)), [float("nan") if v is None else v for v in values], "o-",
                label=label)  # fmt: skip
    ax.set_xticks(range(len(data)), [r["checkpoint"] for r in data], rotation=20)
    ax.legend(fontsize=8)
    ax.set_title("FogGen chain: metrics per round (eval split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(manifests: list[dict[str, Any]], stem: Path, *, title: str) -> list[Path]:
    """``stem``.json, ``stem``.md and (with matplotlib) ``stem``.png."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps({"title": title, "rounds": manifests}, indent=1))
    md_path.write_text(markdown(manifests, title))
    written = [json_path, md_path]
    if plot(manifests, stem.with_suffix(".png")):
        written.append(stem.with_suffix(".png"))
    return written
