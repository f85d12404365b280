"""A named model's routing profile (``edge_runtime.routing.profile``) from its labelled passes:
the signal that ranks its answers best there, and per-domain taus at 50 % and 70 % cloud.

The per-domain taus send the target share of all questions up, not that share of each domain:
a question goes up when the cloud's expected gain over the local answer is among the largest,
so domain d's tau is the cloud's accuracy there (the card's cloud-only figures) plus one offset
chosen for the share. Sending the same share of every domain threw away what the domain tells
(on the 1.5B's eval: lift +2.7 points at 47 % sent, against +6.0 with the gain rule and +4.0
with one global tau: reports/probes)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.probes.compact import compact_paths, load_compact
from benchmarks.probes.data import LabelRun, label_runtime, load_label_run, report_name
from benchmarks.report import write_json
from benchmarks.simulated_cloud import DEFAULT_ACCURACY
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.provenance import git_commit
from edge_runtime.routing import metrics
from edge_runtime.routing.calibrator import Calibrator, shipped_calibrator
from edge_runtime.routing.fit_probe import Setting, out_of_fold
from edge_runtime.routing.profile import (
    FORMAT,
    VERSION,
    Profile,
    content_sha256,
    shipped_profile_path,
)
from edge_runtime.routing.rule import Signal
from edge_runtime.routing.taus import FORMAT as TAUS_FORMAT
from edge_runtime.routing.taus import VERSION as TAUS_VERSION

POINTS = {"cloud-50": 0.5, "cloud-70": 0.7}
DEFAULT_POINT = "cloud-50"
CHANCE = 0.56  # below this AUROC a signal is called "at chance" (about 2 SE above 0.5 at n=1,000)
# the card's cloud-only accuracy per domain (what the simulated cloud answers at), as fractions
CLOUD_ACCURACY = {d: percent / 100.0 for d, percent in DEFAULT_ACCURACY.items()}
DOMAIN_TAUS = "the cloud's accuracy in the domain (the card's cloud-only figures) plus one offset"
DESCRIBED = {
    Signal.BUCKET: "the confidence bucket it writes",
    Signal.LETTER: "the probability of the letter it answers",
    Signal.CALIBRATED: "p_correct, a probe of its layer outputs (calibrator version 3)",
}


def _tau(scores: np.ndarray, correct: np.ndarray, fraction: float) -> dict[str, Any]:
    pick = metrics.recommend_tau(
        scores.tolist(), correct.tolist(), [True] * len(scores), target_cloud_fraction=fraction
    )
    return {"tau": pick.tau, "cloud_fraction": pick.cloud_fraction, "n": len(scores)}


def gain_taus(
    scores: np.ndarray, domains: Sequence[str], fraction: float, cloud: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """Per domain: its tau, ``cloud[d] + offset``, the offset the quantile of score minus the
    cloud's accuracy that sends ``fraction`` of all the questions up; with the share of the
    domain it sends and how many questions it saw."""
    by_domain = np.array(domains)
    known = np.array([d in cloud for d in domains])
    gain = scores[known] - np.array([cloud[d] for d in by_domain[known]])
    offset = float(np.quantile(gain, fraction))
    out = {}
    for d in sorted(set(by_domain[known].tolist())):
        tau = min(1.0, max(0.0, cloud[d] + offset))
        mine = scores[by_domain == d]
        sent = metrics.cloud_fraction(mine.tolist(), tau)
        out[d] = {"tau": round(tau, 6), "cloud_fraction": round(sent, 4), "n": len(mine)}
    return out


def tau_table(
    scores: np.ndarray, correct: np.ndarray, domains: Sequence[str], *, signal: Signal,
    sha256: str, fraction: float, source: Mapping[str, Any], p_correct_version: int | None,
) -> dict[str, Any]:  # fmt: skip
    """The global tau sends ``fraction`` of the questions up (a question without a domain);
    the domains' taus follow :func:`gain_taus`."""
    table: dict[str, Any] = {
        "format": TAUS_FORMAT,
        "version": TAUS_VERSION,
        "model_sha256": sha256,
        "signal": signal.value,
        "target": {"cloud_fraction": fraction},
        "global": _tau(scores, correct, fraction),
        "domains": gain_taus(scores, domains, fraction, CLOUD_ACCURACY),
        "source": {**source, "domain_taus": DOMAIN_TAUS},
    }
    if signal is Signal.CALIBRATED and p_correct_version is not None:
        table["p_correct_version"] = p_correct_version
    return table


def build_profile(
    *, name: str, sha256: str, signals: Mapping[Signal, np.ndarray], aurocs: Mapping[Signal, float],
    correct: np.ndarray, domains: Sequence[str], calibrator: Calibrator | None,
    source: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The profile on the signal with the best AUROC (ties: the simpler one, in enum order);
    ``signals`` are out-of-fold scores where they were fitted. When every signal is at chance
    the best of them won by noise: the profile then routes on the letter probability (nothing
    fitted, and fine-grained enough to send the chosen share up)."""
    best = max(aurocs, key=lambda s: (round(aurocs[s], 3), -list(Signal).index(s)))
    at_chance = aurocs[best] < CHANCE
    if at_chance:
        best = Signal.LETTER
    version = None if calibrator is None or best is not Signal.CALIBRATED else calibrator.version
    others = ", ".join(f"{s.value} {aurocs[s]:.2f}" for s in aurocs if s is not best)
    note = (
        f"Routes on {DESCRIBED[best]}: on {len(correct)} labelled questions outside eval it "
        f"ranks right answers above wrong ones at AUROC {aurocs[best]:.2f} ({others})."
    )
    if at_chance:
        note += (
            f" Every signal of this model is at chance (below AUROC {CHANCE}): routing sends "
            "the chosen share of questions up, but cannot tell which of its answers are wrong."
        )
    profile = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "model_sha256": sha256,
        "signal": best.value,
        "calibrator_sha256": (
            content_sha256(calibrator.to_dict()) if version is not None and calibrator else None
        ),
        "default_point": DEFAULT_POINT,
        "points": {
            point: tau_table(
                signals[best],
                correct,
                domains,
                signal=best,
                sha256=sha256,
                fraction=fraction,
                source=source,
                p_correct_version=version,
            )  # fmt: skip
            for point, fraction in POINTS.items()
        },
        "note": note,
        "chosen_on": {"aurocs": {s.value: round(a, 4) for s, a in aurocs.items()}, **source},
    }
    Profile.from_dict(profile, origin="the built profile")  # what we write, the runtime reads
    return profile


def profile_for(
    run: LabelRun, *, name: str, sha256: str, calibrator: Calibrator, setting: Setting,
    splits: str,
) -> dict[str, Any]:  # fmt: skip
    """The profile of a model whose version-3 calibrator fits ``setting`` on ``run``: the
    calibrated signal scored out of fold beside the raw bucket and letter probability."""
    oof = out_of_fold(run.data, [setting])[setting]
    signals = {Signal.BUCKET: run.bucket, Signal.LETTER: run.letter_max, Signal.CALIBRATED: oof}
    aurocs = {s: metrics.auroc(v.tolist(), run.data.y) or 0.5 for s, v in signals.items()}
    return build_profile(
        name=name, sha256=sha256, signals=signals, aurocs=aurocs, correct=run.data.y,
        domains=run.domains, calibrator=calibrator,
        source={"split": splits, "n_questions": len(run.data.y), "git_commit": git_commit()},
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """python -m benchmarks.probes.profile [--model NAME] [--compact RUN] [--ship]: the routing
    profile again from the shipped calibrator (no sweep), e.g. after a change of tau rule."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", default=EMBEDDED_NAME)
    parser.add_argument("--splits", default="train,calib")
    parser.add_argument("--compact", type=compact_paths, metavar="RUN[,CHUNK...]",
                        help="a committed compact run instead of the store")  # fmt: skip
    parser.add_argument("--ship", action="store_true", help="ship the profile in the package")
    parser.add_argument("--out", type=Path, default=Path("reports/probes"))
    args = parser.parse_args(argv)
    with label_runtime(args.model) as runtime:
        run = load_compact(args.compact) if args.compact else load_label_run(
            runtime, args.splits.split(",")
        )  # fmt: skip
        file = runtime.model.file
    calibrator = shipped_calibrator(file.sha256)
    if calibrator is None or calibrator.probe is None:
        parser.error(f"{file.reference} ships no version-3 calibrator: run benchmarks.probes")
    setting = Setting.parse(str(calibrator.fit.get("setting")))
    profile = profile_for(
        run, name=file.reference, sha256=file.sha256, calibrator=calibrator, setting=setting,
        splits=args.splits,
    )  # fmt: skip
    name = report_name(file.reference)
    write_json(args.out / f"{name}-profile.json", profile)
    if args.ship:
        write_json(shipped_profile_path(file.sha256), profile)
    print(f"profile: {profile['signal']}; {profile['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
