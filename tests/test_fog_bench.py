"""``make fog``'s offline curves: the arithmetic on small known cases, and the report from the
committed outcomes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.fog.__main__ import main
from benchmarks.fog.curves import (
    NEVER,
    Tier,
    gateway_sweep,
    kiosk_sweep,
    least_cloud_within,
    point,
    random_accuracy,
)
from benchmarks.fog.report import gain_rule
from benchmarks.probes.profile import CLOUD_ACCURACY

ROOT = Path(__file__).resolve().parent.parent


def _tier(correct: list[bool], score: list[float]) -> Tier:
    return Tier("t", np.array(correct), np.array(score, dtype=float))


def test_each_tier_keeps_what_it_is_sure_of_and_passes_the_rest_up() -> None:
    kiosk = _tier([True, False, False, False], [0.9, 0.1, 0.1, 0.1])
    gateway = _tier([False, True, True, False], [0.0, 0.8, 0.7, 0.2])
    cloud = np.array([False, False, True, True])
    p = point(kiosk, gateway, cloud, 0.5, 0.5)
    assert (p.kiosk, p.gateway, p.cloud) == (0.25, 0.5, 0.25)
    assert (p.kiosk_accuracy, p.gateway_accuracy, p.cloud_accuracy) == (1.0, 1.0, 1.0)
    assert p.accuracy == 1.0
    everything_up = point(kiosk, gateway, cloud, NEVER, NEVER)
    assert everything_up.cloud == 1.0 and everything_up.accuracy == 0.5
    sweep = gateway_sweep(kiosk, gateway, cloud, NEVER)
    assert [q.cloud for q in sweep] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert least_cloud_within(sweep, floor=0.75).cloud == 0.5  # type: ignore[union-attr]
    assert least_cloud_within(sweep, floor=1.01) is None
    assert [q.cloud for q in kiosk_sweep(kiosk, cloud)] == [0.0, 0.75, 1.0]


def test_random_routing_is_the_share_weighted_accuracy() -> None:
    assert random_accuracy([(0.2, 0.25), (0.3, 0.5)], 0.8) == pytest.approx(
        0.2 * 0.25 + 0.3 * 0.5 + 0.5 * 0.8
    )


def test_the_report_is_rebuilt_from_the_committed_outcomes(tmp_path: Path) -> None:
    shutil.copy(ROOT / "reports" / "fog" / "outcomes.jsonl", tmp_path / "outcomes.jsonl")
    main(["--report-only", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "fog.json").read_text())
    assert report["n"] == 350 and report["http_disagreements"] == 0
    assert report["cloud"]["simulated"] and "†" in (tmp_path / "fog.md").read_text()
    main_curve = report["curves"]["gateway calibrated -> cloud"]
    assert min(main_curve["cloud"]) == 0.0 and max(main_curve["cloud"]) == 1.0
    at_all = report["summary"]["gateway calibrated -> cloud"]["at"]["1.00"]
    assert at_all["accuracy"] == pytest.approx(report["cloud_only"], abs=1e-4)
    for gain in ("calibrated (gain rule)", "letter (gain rule)"):  # the profiles' taus, swept
        assert report["summary"][f"gateway {gain} -> cloud"]["at"]["1.00"] == at_all


def test_the_gain_rule_sweeps_the_profiles_per_domain_taus_as_one_threshold() -> None:
    """A domain's tau is the cloud's accuracy there plus one offset: where the cloud is strong
    the same score goes up, where it is weak it stays; a domain the cloud has no figure for
    has no score (passed up)."""
    gateway = _tier([True, True, False], [0.6, 0.6, 0.6])
    gain = gain_rule(gateway, ["kazakh", "math", "astrology"], "calibrated (gain rule)")
    offset = 0.6 - CLOUD_ACCURACY["kazakh"] + 0.01  # just above kazakh's gain, below math's
    kept = gain.keeps((offset + 1) / 2)
    assert CLOUD_ACCURACY["kazakh"] > CLOUD_ACCURACY["math"]
    assert kept.tolist() == [False, True, False] and np.isnan(gain.score[2])
    assert np.array_equal(gain.correct, gateway.correct)
