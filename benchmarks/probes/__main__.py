"""python -m benchmarks.probes [--model NAME] [--splits train,calib] [--ship]

Reads a label run's passes (``make labels``), sweeps layers x positions, pairs and triples of
the best reads and a small MLP by 5-fold cross-validation, adds the baselines, the learning
curve and a shuffled-label null, then fits the setting with the best out-of-fold AUROC on every
labelled question as a version-3 calibrator. Writes ``reports/probes/<model>.json`` and the
calibrator beside it; ``--ship`` also puts the calibrator in the package for the named model.

``--refit`` (after more labels, e.g. a compact run's later chunk): no new sweep. The report's
layer sweep and combinations stay as they were measured; the baselines, the learning curve of
its bands, the null and the chosen setting's CV AUROC are measured again on this run, and the
chosen setting is fitted on all of it (calibrator, profile, ``--ship``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.probes.compact import compact_paths, load_compact
from benchmarks.probes.data import LabelRun, label_runtime, load_label_run, report_name
from benchmarks.probes.markdown import write_plot, write_readme
from benchmarks.probes.profile import profile_for
from benchmarks.probes.sweep import (
    SWEEP_K,
    baselines,
    combinations,
    layer_sweep,
    learning_curve,
    scored,
    shuffled_null,
)
from benchmarks.report import machine, write_json
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.provenance import git_commit
from edge_runtime.routing.calibrator import shipped_path
from edge_runtime.routing.fit_probe import Setting, fit_setting, out_of_fold, to_calibrator
from edge_runtime.routing.probe import Read
from edge_runtime.routing.profile import shipped_profile_path

REPORTS = Path("reports/probes")


def say(message: str) -> None:
    print(f"probes: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=EMBEDDED_NAME)
    parser.add_argument("--splits", default="train,calib", help="calib only for chain:N")
    parser.add_argument("--layers", default=None, help="sweep only these layers (e.g. 4,8,12)")
    parser.add_argument("--ship", action="store_true", help="ship the calibrator in the package")
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--refit", action="store_true", help="refit the report's chosen setting")
    parser.add_argument("--compact", type=compact_paths, metavar="RUN[,CHUNK...]",
                        help="a committed compact run instead of the store")  # fmt: skip
    args = parser.parse_args(argv)
    with label_runtime(args.model) as runtime:
        file = runtime.model.file
        run = load_compact(args.compact) if args.compact else load_label_run(
            runtime, args.splits.split(",")
        )  # fmt: skip
    if args.layers:
        keep = {int(x) for x in args.layers.split(",")}
        states = {r: s for r, s in run.data.states.items() if r.layer in keep}
        run = replace(run, data=replace(run.data, states=states))
    n, right = len(run.data.y), int(run.data.y.sum())
    say(f"{n} labelled passes, {right} right, {len(run.data.states)} reads")
    report: dict[str, Any] = {
        "format": "foggen-probes", "version": 1, "model": file.reference,
        "model_sha256": file.sha256, "splits": args.splits, "n": n, "n_correct": right,
    }  # fmt: skip
    name = report_name(file.reference)
    refit = args.refit and refit_into(report, run, args.out / f"{name}.json")
    chosen, chosen_auroc = refit or sweep_into(report, run)
    calibrator = to_calibrator(
        fit_setting(run.data, chosen),
        model_sha256=file.sha256,
        fit={
            "signal": "probe", "setting": chosen.label(), "n": n, "n_correct": right,
            "split": args.splits, "auroc": chosen_auroc, "model": file.reference,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
        },
    )  # fmt: skip
    profile = profile_for(
        run, name=file.reference, sha256=file.sha256, calibrator=calibrator, setting=chosen,
        splits=args.splits,
    )  # fmt: skip
    report["profile"] = {"signal": profile["signal"], "note": profile["note"]}
    report["machine"] = machine()
    write_json(args.out / f"{name}.json", report)
    write_plot(report, args.out, name)
    write_readme(args.out)
    calibrator.save(args.out / f"{name}-calibrator.json")
    write_json(args.out / f"{name}-profile.json", profile)
    if args.ship:
        # the calibrator ships only when the profile routes on it: a probe chosen among signals
        # at chance would cost a read per pass and replace a shipped calibrator for nothing
        if profile["signal"] == "calibrated":
            calibrator.save(shipped_path(file.sha256))
        write_json(shipped_profile_path(file.sha256), profile)
    say(f"chosen {chosen.label()} (CV AUROC {chosen_auroc:.3f}); wrote {args.out / name}.json")
    return 0


def sweep_into(report: dict[str, Any], run: LabelRun) -> tuple[Setting, float]:
    """Baselines, the layer sweep, combinations, the learning curve and the null into
    ``report``; returns the setting with the best out-of-fold AUROC and that AUROC."""
    report["baselines"] = baselines(run)
    say(f"baselines: {report['baselines']}")
    sweep = layer_sweep(run, say)
    report["layer_sweep"] = sweep
    combos = combinations(run, sweep, say)
    best = max(sweep, key=lambda r: r["auroc"])
    single = Setting((Read(best["layer"], best["position"]),), k=SWEEP_K, l2=best["l2"])
    candidates = [(single, best["auroc"])] + [(c["_setting"], c["auroc"]) for c in combos]
    chosen, chosen_auroc = max(candidates, key=lambda c: (c[1], -len(c[0].reads)))
    report["combinations"] = [{k: v for k, v in c.items() if k != "_setting"} for c in combos]
    report["learning_curve"] = learning_curve(run, sweep, say)
    report["null"] = shuffled_null(run, chosen)
    report["chosen"] = {"setting": chosen.label(), "cv_auroc": chosen_auroc}
    return chosen, float(chosen_auroc)


def refit_into(report: dict[str, Any], run: LabelRun, path: Path) -> tuple[Setting, float]:
    """The sweep of the report at ``path`` kept (``sweep_n``: on how many questions), the rest
    measured again on ``run``; returns its chosen setting and that setting's CV AUROC now."""
    if not path.is_file():
        raise SystemExit(f"probes: --refit needs a sweep at {path}: run without --refit first")
    before = json.loads(path.read_text())
    chosen = Setting.parse(before["chosen"]["setting"])
    missing = [str(r) for r in chosen.reads if r not in run.data.states]
    if missing:
        raise SystemExit(f"probes: this run lacks the chosen reads {', '.join(missing)}")
    report["sweep_n"] = before.get("sweep_n", before["n"])
    report["baselines"] = baselines(run)
    report["layer_sweep"], report["combinations"] = before["layer_sweep"], before["combinations"]
    report["learning_curve"] = learning_curve(run, before["layer_sweep"], say)
    report["null"] = shuffled_null(run, chosen)
    auroc = scored(out_of_fold(run.data, [chosen])[chosen], run.data.y)["auroc"]
    report["chosen"] = {"setting": chosen.label(), "cv_auroc": auroc}
    say(f"refit {chosen.label()}: CV AUROC {auroc:.3f} on {len(run.data.y)}")
    return chosen, float(auroc)


if __name__ == "__main__":
    raise SystemExit(main())
