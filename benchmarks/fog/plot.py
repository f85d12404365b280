"""``fog.png``: system accuracy against the top cloud's share, one line per routing chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.bench.plots import plots_available
from benchmarks.fog.targets import TOP_CLOUD_TARGET

FILENAME = "fog.png"


def write_plot(report: dict[str, Any], out: Path) -> str | None:
    """The plot's file name, or None without matplotlib (the ``[bench]`` extra)."""
    if plots_available() is not None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    for name, curve in report["curves"].items():
        ordered = sorted(zip(curve["cloud"], curve["accuracy"], strict=True))
        width = 2.4 if name.startswith("gateway calibrated") else 1.2
        style = "--" if "(hidden," in name else "-"  # another model's bench outcomes as kiosk
        xs = [100 * x for x, _ in ordered]
        ys = [100 * y for _, y in ordered]
        ax.plot(xs, ys, style, label=name, linewidth=width)
    acc = report["accuracy"]
    ax.plot(
        [0, 100], [100 * acc["gateway"], 100 * acc["cloud"]], "k:", label="random gateway -> cloud"
    )
    ax.axhline(100 * report["cloud_only"], color="grey", linestyle="--", label="cloud-only †")
    ax.axhline(100 * report["cloud_only"] - 2, color="grey", linestyle=":", label="cloud-only - 2")
    ax.axvline(
        TOP_CLOUD_TARGET, color="red", linestyle=":",
        label=f"target: <= {TOP_CLOUD_TARGET} % to the cloud",
    )  # fmt: skip
    ax.set_xlabel("questions answered by the top cloud † (%)")
    ax.set_ylabel("system accuracy (%)")
    ax.set_title(f"Fog tiers on {report['n']} eval questions († simulated cloud)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.savefig(out / FILENAME, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return FILENAME
