"""The chain report: one row per checkpoint (start, then after each round), JSON + Markdown,
and a PNG of the metrics per round when matplotlib is installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COLUMNS = (  # (key in the bench summary, header); at_tau.* are the card's Mean row at tau
    ("free_strict", "free strict"),
    ("free_lenient", "free lenient"),
    ("raw_accuracy", "raw acc."),
    ("auroc", "AUROC bucket"),
    ("ece", "ECE bucket"),
    ("signals.bucket_expectation.auroc", "AUROC E[bucket]"),
    ("signals.letter.auroc", "AUROC letter"),
    ("at_tau.cloud_fraction", "routed"),
    ("at_tau.system_accuracy", "system"),
    ("at_tau.random", "random"),
    ("at_tau.lift_points", "lift (pts)"),
)
PLOTTED = ("free_strict", "raw_accuracy", "auroc", "signals.bucket_expectation.auroc", "ece")


def value(row: dict[str, Any], key: str) -> Any:
    """``row[a][b]...`` for the dotted ``key``, None where missing."""
    for part in key.split("."):
        row = row.get(part) if isinstance(row, dict) else None  # type: ignore[assignment]
    return row


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


def settings_line(config: dict[str, Any]) -> str:
    """The chain's recipe in one sentence (from its recorded config)."""
    train, bench = config["train"], config["bench"]
    teacher = f"; round 0 labelled by the teacher {config['teacher']}" if config["teacher"] else ""
    return (
        f"Settings: {config['rounds']} round(s), buffer {config['buffer']} train-split questions "
        f"per round, N = {config['n_samples']} samples at T = {config['temperature']}{teacher}; "
        f"LoRA r = {train['r']}, alpha = {train['alpha']}, lr {train['lr']:g}, "
        f"{train['epochs']} epoch(s), batch {train['batch_size']}, dtype {train['dtype']}; "
        f"bench: {bench['per_domain']} eval questions per domain (fast mode), "
        f"{bench['small_per_domain']} per domain in free mode, tau {bench['tau']}, "
        f"simulated cloud; seed {config['seed']}."
    )


def markdown(
    manifests: list[dict[str, Any]], title: str, config: dict[str, Any] | None = None
) -> str:
    lines = [f"# {title}", ""]
    if config is not None:
        lines += [settings_line(config), ""]
    header = ["checkpoint", *(label for _, label in COLUMNS)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(manifests):
        cells = [row["checkpoint"], *(_cell(value(row, key)) for key, _ in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Each checkpoint's whole `foggen bench` report (per domain, per question, plots) is in "
        "the work folder, `bench/round-NN/`; the JSON gives its path.",
    ]
    lines += ["", "## Time per stage (seconds)", "", "| round | step | seconds |", "|---|---|---|"]
    for m in manifests:
        for step, facts in m["steps"].items():
            lines.append(f"| {m['round']} | {step} | {facts.get('seconds', '-')} |")
    for m in manifests:
        sample = m["steps"].get("sample")
        if sample and sample.get("probe"):
            p = sample["probe"]
            lines += [
                "",
                f"Round {m['round']} self-sampling: {sample['n']} questions, "
                f"{sample['questions_per_second']} questions/s over the buffer; probe of "
                f"{p['questions']}: batched {p['batched_qps']} q/s vs one at a time "
                f"{p['one_at_a_time_qps']} q/s.",
            ]
        elif sample:
            lines += [
                "",
                f"Round {m['round']} labelled by the teacher {sample['model']}: {sample['n']} "
                f"questions, {sample['questions_per_second']} questions/s, "
                f"{sample['unreadable_samples']} unreadable samples.",
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
    labels = dict(COLUMNS)
    fig, (ax, lift) = plt.subplots(1, 2, figsize=(10, 4))
    x = range(len(data))
    for key in PLOTTED:
        values = [value(r, key) for r in data]
        ax.plot(x, [float("nan") if v is None else v for v in values], "o-", label=labels[key])
    lift.bar(x, [value(r, "at_tau.lift_points") or 0.0 for r in data], color="tab:purple")
    lift.axhline(0.0, color="black", linewidth=0.8)
    lift.set_ylabel("lift over random routing at tau (points)")
    for axis in (ax, lift):
        axis.set_xticks(x, [r["checkpoint"] for r in data], rotation=20)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.suptitle("FogGen chain: metrics per checkpoint (eval split, simulated cloud)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(
    manifests: list[dict[str, Any]],
    stem: Path,
    *,
    title: str,
    config: dict[str, Any] | None = None,
) -> list[Path]:
    """``stem``.json, ``stem``.md and (with matplotlib) ``stem``.png."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    data = {"title": title, "config": config, "rounds": manifests}
    json_path.write_text(json.dumps(data, indent=1))
    md_path.write_text(markdown(manifests, title, config))
    written = [json_path, md_path]
    if plot(manifests, stem.with_suffix(".png")):
        written.append(stem.with_suffix(".png"))
    return written
