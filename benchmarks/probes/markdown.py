"""``reports/probes/README.md`` sections and ``<model>-layers.png`` from a probe sweep report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.bench.plots import plots_available
from benchmarks.markdown import fmt, markdown_table


def _auroc(row: dict[str, Any]) -> str:
    return f"{row['auroc']:.3f} ± {row['auroc_se']:.3f}"


def sweep_section(report: dict[str, Any], plot: str | None) -> list[str]:
    """One model's sweep: baselines, every read, combinations, the learning curve, the null."""
    lines = [
        f"## {report['model']}",
        "",
        f"{report['n']} labelled passes ({report['splits']}), {report['n_correct']} right "
        f"({100 * report['n_correct'] / report['n']:.1f} %). Every AUROC is out-of-fold "
        "(5 folds; ± Hanley-McNeil SE). Chosen: **{}** (CV AUROC {:.3f}).".format(
            report["chosen"]["setting"], report["chosen"]["cv_auroc"]
        ),
        "",
    ]
    base = report["baselines"]
    lines += markdown_table(
        ["baseline", "AUROC", "ECE"],
        [[name, _auroc(row), fmt(row["ece"], 3)] for name, row in base.items()],
    )
    sweep = report["layer_sweep"]
    positions = sorted({r["position"] for r in sweep})
    layers = sorted({r["layer"] for r in sweep})
    cell = {(r["layer"], r["position"]): r for r in sweep}
    on = f" on the first {report['sweep_n']} of them" if "sweep_n" in report else ""
    lines += ["", f"Each read alone (with the output features and the domain; k = 64){on}:", ""]
    lines += markdown_table(
        ["layer", *positions],
        [
            [
                str(layer),
                *(_auroc(cell[layer, p]) if (layer, p) in cell else "–" for p in positions),
            ]
            for layer in layers
        ],
    )
    lines += ["", f"Reads together, and the small MLP{on}:", ""]
    lines += markdown_table(
        ["setting", "AUROC", "ECE"],
        [[c["setting"], _auroc(c), fmt(c["ece"], 3)] for c in report["combinations"]],
    )
    lines += _curve_lines(report["learning_curve"])
    null = report["null"]
    lines += [
        "",
        f"Shuffled-label null of the chosen setting: AUROC {_auroc(null)}.",
        "",
        f"Profile: routes on `{report['profile']['signal']}`. {report['profile']['note']}",
        "",
    ]
    if plot:
        lines += [f"![layers]({plot})", ""]
    return lines


def _curve_lines(curve: dict[str, Any]) -> list[str]:
    sizes = [p["train_rows"] for p in next(iter(curve.values()))["points"]] if curve else []
    head = "Learning curve (training rows per fold; the best read of each band the run holds):"
    return ["", head, ""] + markdown_table(
        ["band (read)", *map(str, sizes)],
        [
            [f"{band} ({c['read']})", *(f"{p['auroc']:.3f}" for p in c["points"])]
            for band, c in curve.items()
        ],
    )


def _null_spread(spread: dict[str, Any] | None) -> list[str]:
    if not spread:
        return []
    return [
        "",
        f"The null over {spread['seeds']} shufflings of the labels: eval AUROC "
        f"{spread['mean']:.3f} (sd {spread['sd']:.3f}, {spread['min']:.3f}-{spread['max']:.3f}; "
        "the row above is the first). Read differences between fitted signals against this "
        "sd as well as the SE: a probe fitted on noise still points somewhere the features "
        "know about correctness.",
    ]


def _lift(row: dict[str, Any], point: str) -> str:
    at = row.get(point)
    if not at:
        return "–"
    se = at.get("lift_se_points")
    spread = f" ± {se:.1f}" if se is not None else ""
    return f"{at['lift_points']:+.1f}{spread} ({100 * at['cloud_fraction']:.0f} %)"


def eval_section(report: dict[str, Any]) -> list[str]:
    """Every one-pass signal on eval, fitted on train + calib (``benchmarks.probes.evaluate``)."""
    lines = [
        f"### On eval: every signal fitted on train + calib ({report['n_train']} questions), "
        f"measured on {report['n_eval']}",
        "",
        f"Raw accuracy {100 * report['raw_accuracy']:.1f} %, cloud-only † "
        f"{100 * report['cloud_only_accuracy']:.1f} %. Lift: system accuracy minus random routing "
        "of the same share, in points ± bootstrap SE, at the taus that send 50 % and 70 % of "
        "train + calib to the cloud (the share sent on eval in brackets).",
        "",
    ]
    rows = [
        [
            row["signal"],
            _auroc(row),
            fmt(row["ece"], 3),
            f"{fmt(row['apgr'], 3)} ± {fmt(row['apgr_se'], 3)}",
            fmt(row["cpt50"], 3),
            fmt(row["cpt80"], 3),
            _lift(row, "at_50"),
            _lift(row, "at_70"),
        ]  # fmt: skip
        for row in report["signals"]
    ]
    lines += markdown_table(
        ["signal", "AUROC", "ECE", "APGR", "CPT(50 %)", "CPT(80 %)", "lift @50", "lift @70"],
        rows,
    )
    lines += _null_spread(report.get("null_spread"))
    profile = report.get("profile") or {}
    if profile.get("points"):
        lines += [
            "",
            f"The shipped profile (`{profile['signal']}`; per-domain taus by the cloud's gain, "
            "chosen on train + calib) as "
            "the runtime routes eval:",
            "",
        ]
        lines += markdown_table(
            ["point", "sent to the cloud", "system accuracy", "lift (points ± SE)"],
            [
                [
                    point,
                    f"{100 * at['cloud_fraction']:.1f} %",
                    f"{100 * at['accuracy']:.1f} %",
                    f"{at['lift_points']:+.1f} ± {at['lift_se_points']:.1f}",
                ]  # fmt: skip
                for point, at in profile["points"].items()
            ],
        )
    return [*lines, ""]


def write_plot(report: dict[str, Any], out: Path, name: str) -> str | None:
    """AUROC per layer and position with its SE band; None without matplotlib."""
    if plots_available() is not None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for position in sorted({r["position"] for r in report["layer_sweep"]}):
        rows = sorted(
            (r for r in report["layer_sweep"] if r["position"] == position),
            key=lambda r: r["layer"],
        )
        xs = [r["layer"] for r in rows]
        ys = [r["auroc"] for r in rows]
        se = [r["auroc_se"] for r in rows]
        ax.plot(xs, ys, marker="o", label=f"{position} position")
        ax.fill_between(
            xs,
            [y - s for y, s in zip(ys, se, strict=True)],
            [y + s for y, s in zip(ys, se, strict=True)],
            alpha=0.2,
        )
    colours = ("black", "grey", "purple", "brown")
    for (label, row), colour in zip(report["baselines"].items(), colours, strict=False):
        ax.axhline(row["auroc"], linestyle=":", linewidth=1.2, label=label, color=colour)
    ax.set_xlabel("layer")
    ax.set_ylabel("out-of-fold AUROC")
    ax.set_title(
        f"{report['model']}: which layer knows the answer is right ({report['n']} questions)"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    filename = f"{name}-layers.png"
    fig.savefig(out / filename, dpi=110)
    plt.close(fig)
    return filename


INTRO = """# Layer probes: which part of the model knows its answer is right

`make labels` runs one fast pass per labelled question outside eval (train + calib) with every
layer's output captured at two positions: the row where the letter is read (`letter`) and the
last token of the user's message (`question`; the last layer exists at output rows only).
`make probes` (`benchmarks/probes`) fits a probe per read and setting by 5-fold
cross-validation (standardise, PCA, L2 logistic beside the output features and the domain; a
small tanh MLP), ships the best as the model's calibrator (version 3) and routing profile.
Eval is never fitted on: `python -m benchmarks.probes.evaluate` measures on it.

† The simulated cloud answers correctly at the card's per-domain cloud-only rate: an input, not
a measurement.
"""


def write_readme(out: Path) -> Path:
    """``README.md`` over every sweep report in ``out``."""
    import json

    lines = [INTRO]
    for path in sorted(out.glob("*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        if report.get("format") != "foggen-probes":
            continue
        plot = path.with_name(f"{path.stem}-layers.png")
        lines += sweep_section(report, plot.name if plot.is_file() else None)
        measured = path.with_name(f"{path.stem}-eval.json")
        if measured.is_file():
            lines += eval_section(json.loads(measured.read_text(encoding="utf-8")))
    readme = out / "README.md"
    readme.write_text("\n".join(lines), encoding="utf-8")
    return readme
