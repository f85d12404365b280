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

from benchmarks.probes.compact import load_compact
from benchmarks.probes.data import LabelRun, load_label_run
from benchmarks.probes.sweep import measured
from benchmarks.report import machine, write_json
from benchmarks.simulated_cloud import AnswerBook, SimulatedCloudConfig
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.config import RuntimeConfig
from edge_runtime.routing.calibrator import shipped_calibrator
from edge_runtime.routing.fit_hidden import fit_hidden_calibrator
from edge_runtime.routing.fit_hidden import out_of_fold as out_of_fold_hidden
from edge_runtime.routing.fit_probe import DOMAIN_COLUMNS, Setting, fit_setting, out_of_fold
from edge_runtime.routing.probe import Read
from edge_runtime.runtime import EdgeRuntime

REPORTS = Path("reports/probes")


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
    train: LabelRun, test: LabelRun, sha256: str, cloud: np.ndarray
) -> list[dict[str, Any]]:
    """The shipped version-3 calibrator on eval, and its setting fitted on shuffled labels."""
    shipped = shipped_calibrator(sha256)
    if shipped is None or shipped.probe is None:
        return []
    reads = shipped.probe.reads
    v3 = shipped.predict(test.data.x, states=[test.data.states[r] for r in reads])
    chosen = Setting(reads, kind=shipped.probe.kind)
    train_oof = out_of_fold(train.data, [chosen])[chosen]
    rng = np.random.default_rng(0)
    null_train = replace(train.data, y=rng.permutation(train.data.y))
    null = fit_setting(null_train, chosen).predict(test.data)
    return [
        measured(f"v3 (shipped: {shipped.fit.get('setting')})", train_oof, v3, test.data.y, cloud),
        measured("v3 setting on shuffled labels (null)", train_oof, null, test.data.y, cloud),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=EMBEDDED_NAME)
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--compact", type=Path, nargs=2, metavar=("TRAIN", "EVAL"),
                        help="committed compact runs instead of the store")  # fmt: skip
    args = parser.parse_args(argv)
    config = replace(RuntimeConfig.from_env(), model=args.model, calibrator="none")
    with EdgeRuntime.load(config, capture_hidden=False) as runtime:
        if args.compact:
            train, test = (load_compact(path) for path in args.compact)
        else:
            train = load_label_run(runtime, ["train", "calib"])
            test = load_label_run(runtime, ["eval"], measure=True)
        file = runtime.model.file
    name = file.reference.replace(":", "-").replace("/", "-")
    sweep = json.loads((args.out / f"{name}.json").read_text())
    cloud = cloud_correct(test)
    rows = [
        measured("bucket (raw)", train.bucket, test.bucket, test.data.y, cloud),
        measured("letter (raw)", train.letter_max, test.letter_max, test.data.y, cloud),
    ]
    settings = {
        "domain only": Setting(columns=DOMAIN_COLUMNS, l2=100.0),
        "calibrated v1 (outputs)": Setting(l2=100.0),
    }
    for band, curve in sweep["learning_curve"].items():
        position, layer = curve["read"].split("@")
        settings[f"probe, best {band} read ({curve['read']})"] = Setting(
            (Read(int(layer), position),)
        )
    for label, setting in settings.items():
        rows.append(measured(label, *fitted_scores(train, test, setting), test.data.y, cloud))
    if train.hidden is not None and test.hidden is not None:
        rows.append(
            measured(
                "calibrated v2 (final hidden state)", *v2_scores(train, test), test.data.y, cloud
            )
        )
    rows += v3_rows(train, test, file.sha256, cloud)
    report = {
        "format": "foggen-probes-eval", "version": 1, "model": file.reference,
        "model_sha256": file.sha256, "n_eval": len(test.data.y), "n_train": len(train.data.y),
        "raw_accuracy": round(float(test.data.y.mean()), 4),
        "cloud_only_accuracy": round(float(cloud.mean()), 4), "signals": rows,
        "machine": machine(),
    }  # fmt: skip
    write_json(args.out / f"{name}-eval.json", report)
    for row in rows:
        auroc, se, apgr = row["auroc"], row["auroc_se"], row["apgr"]
        print(f"{row['signal']:60} AUROC {auroc:.3f} +- {se:.3f}  APGR {apgr}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
