"""PNG plots of a bench report (matplotlib, in the ``[bench]`` extra; imported lazily).

One figure per kind, every benched model overlaid: the tau sweep (system accuracy, Random at
the same cloud fraction, cloud fraction), the reliability diagram per signal, risk-coverage,
and latency per mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIGNAL_STYLE = {
    "bucket": "-",
    "bucket_expectation": ":",
    "letter": "--",
    "calibrated": "-.",
    "hidden": "-",
}
SIGNAL_WIDTH = {"hidden": 2.8}  # bucket and hidden share the solid line: hidden is the thick one


def plots_available() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib not installed; pip install 'foggen-edge[bench]' for plots"
    return None


def write_plots(report: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, draw in (
        ("tau-sweep", _tau_sweep),
        ("reliability", _reliability),
        ("risk-coverage", _risk_coverage),
        ("latency", _latency),
    ):
        fig = draw(plt, report["models"])
        if fig is None:  # nothing to show (e.g. --small 0: no per-mode latency)
            continue
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _label(model: dict[str, Any]) -> str:
    return str(model["label"])


def _tau_sweep(plt: Any, models: list[dict[str, Any]]) -> Any:
    fig, (acc_ax, frac_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, model in enumerate(models):
        color = f"C{index}"
        for signal, curves in model["sweeps"].items():
            sweep = curves["tau_sweep"]
            taus = [p["tau"] for p in sweep]
            style = SIGNAL_STYLE.get(signal, "-")
            label = f"{_label(model)} {signal}"
            width = SIGNAL_WIDTH.get(signal, 1.5)
            acc_ax.plot(
                taus,
                [100 * p["accuracy"] for p in sweep],
                style,
                color=color,
                label=label,
                linewidth=width,
            )
            frac_ax.plot(
                taus,
                [p["cloud_fraction"] for p in sweep],
                style,
                color=color,
                label=label,
                linewidth=width,
            )
        bucket = model["sweeps"].get("bucket")
        if bucket:
            acc_ax.plot(
                [p["tau"] for p in bucket["tau_sweep"]],
                [100 * p["random"] for p in bucket["tau_sweep"]],
                color=color,
                alpha=0.35,
                linewidth=4,
                label=f"{_label(model)} random @ bucket fraction",
            )
    acc_ax.set(xlabel="tau", ylabel="system accuracy (%)", title="System accuracy vs tau")
    frac_ax.set(xlabel="tau", ylabel="fraction routed to the cloud", title="Cloud fraction vs tau")
    acc_ax.legend(fontsize=7)
    frac_ax.legend(fontsize=7)
    return fig


def _reliability(plt: Any, models: list[dict[str, Any]]) -> Any:
    signals = [s for s in SIGNAL_STYLE if any(m["calibration"].get(s) for m in models)]
    fig, axes = plt.subplots(1, len(signals), figsize=(4 * len(signals), 4), squeeze=False)
    for ax, signal in zip(axes[0], signals, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linewidth=1)
        for index, model in enumerate(models):
            cal = model["calibration"].get(signal)
            if not cal:
                continue
            bins = [b for b in cal["reliability"] if b["count"]]
            ax.scatter(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                s=[8 + 2 * b["count"] ** 0.8 for b in bins],
                color=f"C{index}",
                alpha=0.7,
                label=f"{_label(model)} ECE {cal['ece']}",
            )
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=signal)
        ax.legend(fontsize=7)
    fig.suptitle("Reliability (marker area ~ questions in the bin)")
    return fig


def _risk_coverage(plt: Any, models: list[dict[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for index, model in enumerate(models):
        for signal, curves in model["sweeps"].items():
            points = curves["risk_coverage"]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                SIGNAL_STYLE.get(signal, "-"),
                marker=".",
                linewidth=SIGNAL_WIDTH.get(signal, 1.5),
                color=f"C{index}",
                label=f"{_label(model)} {signal}",
            )
    ax.set(
        xlabel="coverage (kept local)",
        ylabel="risk (local error rate)",
        title="Risk-coverage of the routing score",
    )
    ax.legend(fontsize=7)
    return fig


def _latency(plt: Any, models: list[dict[str, Any]]) -> Any:
    modes = [
        "floor",
        "question_limit",
        "schema_limit",
        "fast",
        "fast_hidden",
        "grammar",
        "free",
        "transformers",
    ]
    if not any(model["speed"]["small_subset_latency_ms"] for model in models):
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(1, len(models))
    for index, model in enumerate(models):
        table = model["speed"]["small_subset_latency_ms"]
        present = [m for m in modes if m in table]
        xs = [modes.index(m) + index * width for m in present]
        ax.bar(
            xs, [table[m]["median"] for m in present], width, color=f"C{index}", label=_label(model)
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(modes))], modes)
    ax.set(
        ylabel="median ms per question (log)",
        yscale="log",
        title="Latency per question, small subset",
    )
    ax.legend(fontsize=7)
    return fig
