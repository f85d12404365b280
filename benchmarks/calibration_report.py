"""How well each routing signal ranks and calibrates, measured on the eval split.

    python -m benchmarks.calibration_report [--eval-per-domain 50] [--calib-limit N]
        [--passes PATH] [--out reports/calibration-270m.json]

1. Fast passes of the edge model over the eval questions (stratified) and the calib split,
   each question once, kept in a JSON Lines file (``--passes``) so an interrupted run resumes.
2. The calibrator is fitted on calib only (as ``foggen calibrator fit`` does) and written to
   the cache; eval is only measured.
3. For each signal (emitted bucket, bucket expectation, letter max-prob, calibrated): AUROC and
   ECE on eval, and system accuracy vs Random at the same cloud fraction (lift) with the
   SIMULATED cloud's per-question correctness, at the tau routing ~70% and the tau
   ``recommend_tau`` picks for 50% - each tau chosen on calib (then applied to eval) and, for
   reference, chosen on eval itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import machine, write_json
from benchmarks.simulated_cloud import LABEL, AnswerBook, SimulatedCloudConfig
from edge_runtime.config import NO_CALIBRATOR, RuntimeConfig, foggen_home
from edge_runtime.mcq import DOMAINS, load_questions
from edge_runtime.provenance import git_commit
from edge_runtime.question import Question
from edge_runtime.routing import metrics
from edge_runtime.routing.calibrator import FEATURE_NAMES, calibrator_path, features
from edge_runtime.routing.fit import (
    Observation,
    cross_validated,
    design,
    fit_calibrator,
    observations,
)
from edge_runtime.routing.passes import result_from_row
from edge_runtime.runtime import EdgeRuntime

SIGNALS = ("bucket", "bucket_expectation", "letter_max", "calibrated")
TARGETS = {"route_70": 0.7, "route_50": 0.5}
EXPECTATION, LETTER_MAX = (
    FEATURE_NAMES.index("bucket_expectation"),
    FEATURE_NAMES.index("letter_max"),
)


def interleaved(split: str, per_domain: int | None) -> list[Question]:
    """Round-robin over the domains, so a partial run stays balanced."""
    lists = [load_questions(d, split)[:per_domain] for d in DOMAINS]
    return [q for group in itertools.zip_longest(*lists) for q in group if q is not None]


def _key(split: str, question: Question) -> str:
    return f"{split}:{question.id}"


def _to_row(split: str, o: Observation) -> dict[str, Any]:
    r = o.result
    return {
        "key": _key(split, o.question),
        "letter": r.letter,
        "bucket": r.bucket,
        "bucket_probs": r.bucket_probs,
        "letter_probs": r.letter_probs,
        "n_prompt_tokens": r.n_prompt_tokens,
    }


def _from_row(question: Question, row: dict[str, Any]) -> Observation:
    result = result_from_row(row)
    x = features(result, question, row["n_prompt_tokens"])
    return Observation(question, result, x, result.letter == question.answer)


def passes(
    runtime: EdgeRuntime | None, split: str, questions: list[Question], store: Path
) -> list[Observation]:
    """The fast pass of each question, from ``store`` when already there, else run and kept."""
    done: dict[str, dict[str, Any]] = {}
    if store.exists():
        for line in store.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done[row["key"]] = row
    missing = [q for q in questions if _key(split, q) not in done]
    if missing and runtime is not None:
        store.parent.mkdir(parents=True, exist_ok=True)
        with store.open("a", encoding="utf-8") as handle:
            for o in observations(runtime, missing):
                row = _to_row(split, o)
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                done[row["key"]] = row
    return [_from_row(q, done[_key(split, q)]) for q in questions if _key(split, q) in done]


def scores_of(obs: list[Observation], calibrated: np.ndarray) -> dict[str, list[float | None]]:
    x, _ = design(obs)
    return {
        "bucket": [o.result.confidence for o in obs],
        "bucket_expectation": x[:, EXPECTATION].tolist(),
        "letter_max": x[:, LETTER_MAX].tolist(),
        "calibrated": calibrated.tolist(),
    }


def cloud_correct(obs: list[Observation]) -> np.ndarray:
    """The simulated cloud's per-question correctness (the card's cloud-only accuracies)."""
    book = AnswerBook.bundled(SimulatedCloudConfig())
    return np.array([bool(book.reply(o.question.text, o.question.choices).correct) for o in obs])


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def signal_report(
    name: str,
    evaluation: tuple[dict[str, list[float | None]], np.ndarray, np.ndarray],
    calib: tuple[dict[str, list[float | None]], np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """AUROC, ECE and the two operating points of one signal on eval."""
    scores, local, cloud = evaluation[0][name], evaluation[1], evaluation[2]
    calib_scores, calib_local, calib_cloud = calib[0][name], calib[1], calib[2]
    report: dict[str, Any] = {
        "auroc": metrics.auroc(scores, local),
        "ece": metrics.ece(scores, local),
        "distinct_values": len(set(scores)),
    }
    for label, target in TARGETS.items():
        picks = {
            "tau_from_calib": metrics.recommend_tau(
                calib_scores, calib_local, calib_cloud, target_cloud_fraction=target
            ),
            "tau_from_eval": metrics.recommend_tau(
                scores, local, cloud, target_cloud_fraction=target
            ),
        }
        report[label] = {
            origin: _rounded(asdict(metrics.operating_point(scores, local, cloud, pick.tau)))
            for origin, pick in picks.items()
        }
    return report


def per_domain(obs: list[Observation], p: np.ndarray, cloud: np.ndarray) -> dict[str, Any]:
    _, local = design(obs)
    table = {}
    for domain in DOMAINS:
        rows = np.array([o.question.domain == domain for o in obs])
        if not rows.any():
            continue
        table[domain] = _rounded(
            {
                "n": int(rows.sum()),
                "local_accuracy": float(local[rows].mean()),
                "cloud_accuracy": float(cloud[rows].mean()),
                "mean_p_correct": float(p[rows].mean()),
                "auroc_calibrated": metrics.auroc(p[rows].tolist(), local[rows]),
            }
        )
    return table


def measure(calib: list[Observation], evaluation: list[Observation], sha256: str) -> dict[str, Any]:
    x_calib, y_calib = design(calib)
    x_eval, y_eval = design(evaluation)
    calibrator = fit_calibrator(x_calib, y_calib, model_sha256=sha256, extra={"mode": "fast"})
    p_eval = calibrator.predict(x_eval)
    cloud_eval, cloud_calib = cloud_correct(evaluation), cloud_correct(calib)
    weights = np.round(calibrator.weights, 4).tolist()
    eval_side = (scores_of(evaluation, p_eval), y_eval, cloud_eval)
    calib_side = (scores_of(calib, cross_validated(x_calib, y_calib)), y_calib, cloud_calib)
    return {
        "calibrator": {
            "fit": calibrator.fit,
            "weights": dict(zip(FEATURE_NAMES, weights, strict=True)),
            "bias": round(calibrator.bias, 4),
        },
        "eval": {
            "n": len(evaluation),
            "local_accuracy": float(y_eval.mean()),
            "cloud_accuracy": float(cloud_eval.mean()),
            "signals": {s: signal_report(s, eval_side, calib_side) for s in SIGNALS},
            "calib_side": {  # the same on calib (calibrated: out-of-fold), for comparison
                s: {
                    "auroc": metrics.auroc(calib_side[0][s], y_calib),
                    "ece": metrics.ece(calib_side[0][s], y_calib),
                }
                for s in SIGNALS
            },
            "per_domain": per_domain(evaluation, p_eval, cloud_eval),
            "reliability_calibrated": [
                asdict(b) for b in metrics.reliability(p_eval.tolist(), y_eval)
            ],
        },
        "_calibrator": calibrator,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-per-domain", type=int, default=50, help="0: all 1,400")
    parser.add_argument("--calib-limit", type=int, default=None, help="calib questions/domain")
    parser.add_argument("--passes", default="reports/calibration-passes.jsonl")
    parser.add_argument("--out", default="reports/calibration-270m.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-save", action="store_true", help="do not write it to the cache")
    args = parser.parse_args(argv)
    config = RuntimeConfig(n_threads=args.threads, calibrator=NO_CALIBRATOR)
    store = Path(args.passes)
    with EdgeRuntime.load(config, capture_hidden=True) as runtime:
        per_domain = args.eval_per_domain or None
        evaluation = passes(runtime, "eval", interleaved("eval", per_domain), store)
        calib = passes(runtime, "calib", interleaved("calib", args.calib_limit), store)
        file = runtime.model.file
    result = measure(calib, evaluation, file.sha256)
    calibrator = result.pop("_calibrator")
    if not args.no_save:
        result["calibrator"]["path"] = str(
            calibrator.save(calibrator_path(foggen_home(), file.sha256))
        )
    report = {
        "benchmark": "calibration",
        "cloud": f"{LABEL}: per-question correctness at the card's cloud-only accuracies",
        "model": {"reference": file.reference, "sha256": file.sha256},
        "settings": {
            "mode": "fast",
            "eval_per_domain": per_domain,  # null: all
            "calib_per_domain": args.calib_limit,
            "targets": TARGETS,
        },
        "machine": machine(),
        "git_commit": git_commit(),
        **result,
    }
    print(write_json(args.out, report))


if __name__ == "__main__":
    main()
