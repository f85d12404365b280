"""python -m benchmarks.probes.evaluate [--model NAME]: every one-pass signal on eval.

Needs two label runs of the model: train + calib (``make labels``: what everything is fitted
on) and eval (``python -m benchmarks.labels --splits eval --measure``: measured only). Each
signal is fitted on train + calib and applied to eval: the raw bucket and letter probability,
version 1 (output features), version 2 (the final hidden state), the domain alone, the best
read of each layer band (from ``reports/probes/<model>.json``), the shipped version-3
calibrator and the same probe fitted on shuffled labels (the null). Per signal: AUROC +- SE,
ECE, APGR +- SE, CPT(50 %), CPT(80 %), and the lift over random routing at the profile's cloud
fractions, the taus chosen on train + calib's out-of-fold scores (never on eval). The cloud is
the simulated one (the card's cloud-only accuracy per domain, a fixed draw per question).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.probes.compact import compact_paths, load_compact
from benchmarks.probes.data import LabelRun, label_runtime, load_label_run, report_name
from benchmarks.probes.markdown import write_readme
from benchmarks.probes.sweep import measured, routed_share
from benchmarks.report import machine, write_json
from benchmarks.simulated_cloud import AnswerBook, SimulatedCloudConfig
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.routing.calibrator import Calibrator, shipped_calibrator
from edge_runtime.routing.fit_hidden import fit_hidden_calibrator
from edge_runtime.routing.fit_hidden import out_of_fold as out_of_fold_hidden
from edge_runtime.routing.fit_probe import DOMAIN_COLUMNS, Setting, fit_setting, out_of_fold
from edge_runtime.routing.metrics import auroc
from edge_runtime.routing.probe import Read
from edge_runtime.routing.profile import find_profile
from edge_runtime.routing.rule import Route, route

REPORTS = Path("reports/probes")
NULL_SEEDS = 20  # shufflings of the labels for the null's spread


def cloud_correct(run: LabelRun) -> np.ndarray:
    book = AnswerBook.bundled(SimulatedCloudConfig())
    return np.array([bool(book.reply(q.text, q.choices).correct) for q in run.questions])


def fitted_scores(
    train: LabelRun, test: LabelRun, setting: Setting
) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold scores on train + calib, scores on eval) of one setting."""
    oof = out_of_fold(train.data, [setting])[setting]
    return oof, fit_setting(train.data, setting).predict(test.data)


def v2_scores(train: LabelRun, test: LabelRun) -> tuple[np.ndarray, np.ndarray]:
    """Version 2 as ``foggen calibrator fit`` makes it, on train + calib."""
    assert train.hidden is not None and test.hidden is not None
    data = train.data
    v2 = fit_hidden_calibrator(data.x, train.hidden, data.y, model_sha256="eval")
    setting = (int(v2.fit["components"]), float(v2.fit["l2"]))
    oof = out_of_fold_hidden(data.x, train.hidden, data.y, grid=[setting])[setting]
    return oof, v2.predict(test.data.x, test.hidden)


def v3_rows(
    train: LabelRun, test: LabelRun, sha256: str, cloud: np.ndarray, name: str
) -> tuple[list[dict[str, Any]], np.ndarray | None, dict[str, Any] | None]:
    """The shipped version-3 calibrator on eval, and its setting fitted on shuffled labels;
    with its scores on eval and the null's spread over ``NULL_SEEDS`` shufflings."""
    shipped, how = shipped_calibrator(sha256), "shipped"
    if shipped is None or shipped.probe is None:  # not shipped (at chance): the fitted one
        fitted = REPORTS / f"{name}-calibrator.json"
        shipped, how = (Calibrator.load(fitted) if fitted.is_file() else None), "not shipped"
    if shipped is None or shipped.probe is None:
        return [], None, None
    reads = shipped.probe.reads
    v3 = shipped.predict(test.data.x, states=[test.data.states[r] for r in reads])
    chosen = Setting.parse(str(shipped.fit.get("setting")))
    train_oof = out_of_fold(train.data, [chosen])[chosen]
    null, spread = shuffled_nulls(train, test, chosen, NULL_SEEDS)
    return (
        [
            measured(
                f"v3 ({how}: {shipped.fit.get('setting')})", train_oof, v3, test.data.y, cloud
            ),
            measured("v3 setting on shuffled labels (null)", train_oof, null, test.data.y, cloud),
        ],
        v3,
        spread,
    )


def shuffled_nulls(
    train: LabelRun, test: LabelRun, setting: Setting, seeds: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """``setting`` fitted on ``seeds`` shufflings of the labels: the first one's eval scores
    (the null row) and the spread of their eval AUROCs. One shuffle's null can land far from
    0.5, since a direction fitted on noise still correlates with what the features know about
    correctness."""
    first, aurocs = None, []
    for seed in range(seeds):
        y = np.random.default_rng(seed).permutation(train.data.y)
        scores = fit_setting(replace(train.data, y=y), setting).predict(test.data)
        value = auroc(scores, test.data.y)
        if value is None:
            raise SystemExit("probes: eval holds only right or only wrong answers")
        first = scores if first is None else first
        aurocs.append(value)
    assert first is not None
    values = np.array(aurocs, dtype=float)
    return first, {
        "seeds": seeds, "mean": round(float(values.mean()), 4),
        "sd": round(float(values.std(ddof=1)), 4),
        "min": round(float(values.min()), 4), "max": round(float(values.max()), 4),
    }  # fmt: skip


def profile_points(
    test: LabelRun, sha256: str, scores: dict[str, np.ndarray], cloud: np.ndarray
) -> dict[str, Any]:
    """The shipped routing profile on eval, as the runtime routes: its signal's scores against
    each operating point's per-domain taus (chosen on calib); share sent, accuracy, lift +- SE."""
    found = find_profile("auto", sha256)
    if found is None or found[0].signal not in scores:
        return {}
    profile, _ = found
    score, local = scores[profile.signal], test.data.y
    out: dict[str, Any] = {"name": profile.name, "signal": profile.signal, "points": {}}
    for point in profile.points:
        table = profile.table(point)
        kept = np.array(
            [route(float(v), table.tau_for(q.domain)) is Route.LOCAL
             for v, q in zip(score, test.questions, strict=True)]
        )  # fmt: skip
        out["points"][point] = routed_share(kept, local, cloud)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=EMBEDDED_NAME)
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--compact", type=compact_paths, nargs="+", metavar="RUN[,CHUNK...]",
                        help="committed compact runs instead of the store: train + calib's, "
                        "then eval's (else eval's raw states from the store)")  # fmt: skip
    args = parser.parse_args(argv)
    with label_runtime(args.model) as runtime:
        compact = args.compact or []
        if len(compact) > 2:
            parser.error("--compact takes train + calib's run and, optionally, eval's")
        train = load_compact(compact[0]) if compact else load_label_run(runtime)
        if len(compact) == 2:
            test = load_compact(compact[1])
        else:
            test = load_label_run(runtime, ["eval"], measure=True)
        file = runtime.model.file
    name = report_name(file.reference)
    swept = args.out / f"{name}.json"
    if not swept.is_file():
        parser.error(f"no probe sweep at {swept}: run python -m benchmarks.probes first")
    sweep = json.loads(swept.read_text())
    cloud = cloud_correct(test)
    rows = fitted_rows(train, test, sweep, cloud)
    v3, v3_scores, spread = v3_rows(train, test, file.sha256, cloud, name)
    rows += v3
    by_signal = {"bucket": test.bucket, "letter": test.letter_max}
    if v3_scores is not None:
        by_signal["calibrated"] = v3_scores
    profile = profile_points(test, file.sha256, by_signal, cloud)
    report = {
        "format": "foggen-probes-eval", "version": 1, "model": file.reference,
        "model_sha256": file.sha256, "n_eval": len(test.data.y), "n_train": len(train.data.y),
        "raw_accuracy": round(float(test.data.y.mean()), 4),
        "cloud_only_accuracy": round(float(cloud.mean()), 4), "signals": rows,
        "profile": profile, "null_spread": spread,
        "machine": machine(),
    }  # fmt: skip
    write_json(args.out / f"{name}-eval.json", report)
    for row in rows:
        auroc, se, apgr = row["auroc"], row["auroc_se"], row["apgr"]
        print(f"{row['signal']:60} AUROC {auroc:.3f} +- {se:.3f}  APGR {apgr}")
    if spread:
        print(f"null over {spread['seeds']} shuffles: {spread}")
    for point, at in (profile.get("points") or {}).items():
        print(f"profile {point}: {at}")
    write_readme(args.out)
    return 0


def fitted_rows(
    train: LabelRun, test: LabelRun, sweep: dict[str, Any], cloud: np.ndarray
) -> list[dict[str, Any]]:
    """The raw signals, and each fitted one (v1, the domain, each band's best read, v2)."""
    rows = [
        measured("bucket (raw)", train.bucket, test.bucket, test.data.y, cloud),
        measured("letter (raw)", train.letter_max, test.letter_max, test.data.y, cloud),
    ]
    settings = {
        "domain only": Setting(columns=DOMAIN_COLUMNS, l2=100.0),
        "calibrated v1 (outputs)": Setting(l2=100.0),
    }
    for band, curve in sweep["learning_curve"].items():
        settings[f"probe, best {band} read ({curve['read']})"] = Setting(
            (Read.parse(curve["read"]),)
        )
    for label, setting in settings.items():
        rows.append(measured(label, *fitted_scores(train, test, setting), test.data.y, cloud))
    if train.hidden is not None and test.hidden is not None:
        rows.append(
            measured(
                "calibrated v2 (final hidden state)", *v2_scores(train, test), test.data.y, cloud
            )
        )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
