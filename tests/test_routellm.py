"""RouteLLM's APGR and CPT against the random router, oracles and cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench import routellm

# 10 questions: the edge is right on 4, the cloud on those 4 and 4 more, both wrong on 2
EDGE = [True] * 4 + [False] * 6
CLOUD = [True] * 8 + [False] * 2


def test_a_constant_score_is_exactly_the_random_router() -> None:
    rng = np.random.default_rng(1)
    edge, cloud = rng.random(400) < 0.4, rng.random(400) < 0.7
    score = [0.5] * 400
    fractions, accuracy = routellm.accuracy_curve(score, edge, cloud)
    straight = edge.mean() + fractions * (cloud.mean() - edge.mean())
    assert np.max(np.abs(accuracy - straight)) < 1e-12
    assert routellm.apgr(score, edge, cloud) == pytest.approx(0.5, abs=1e-12)
    assert routellm.cpt(score, edge, cloud, recovered=0.5) == pytest.approx(0.5, abs=1e-12)
    assert routellm.cpt(score, edge, cloud, recovered=0.8) == pytest.approx(0.8, abs=1e-12)


def test_an_oracle_beats_random() -> None:
    # escalates the 6 edge-wrong questions first (one tie group holding the whole gain of 4):
    # PGR = k/6 up to k = 6, then 1 -> area (21/6 + 4 - 1/2) / 10 = 0.7
    score = [float(e) for e in EDGE]
    assert routellm.apgr(score, EDGE, CLOUD) == pytest.approx(0.7)
    assert routellm.cpt(score, EDGE, CLOUD, recovered=0.5) == pytest.approx(0.3)
    assert routellm.cpt(score, EDGE, CLOUD, recovered=0.8) == pytest.approx(0.48)


def test_an_anti_oracle_is_below_random() -> None:
    # escalates the 4 edge-right questions first (no gain), then the 6 edge-wrong: area 3/10
    score = [1.0 - e for e in EDGE]
    assert routellm.apgr(score, EDGE, CLOUD) == pytest.approx(0.3)
    assert routellm.cpt(score, EDGE, CLOUD, recovered=0.5) == pytest.approx(0.7)


def test_no_gap_to_recover_gives_none() -> None:
    score = [0.1, 0.2, 0.3, 0.4]
    equal = ([True, False, True, False], [False, True, True, False])  # 2/4 each
    worse = ([True, True, True, False], [True, False, False, False])  # cloud below edge
    for edge, cloud in (equal, worse):
        assert routellm.pgr_curve(score, edge, cloud) is None
        assert routellm.apgr(score, edge, cloud) is None
        assert routellm.cpt(score, edge, cloud, recovered=0.5) is None
        assert routellm.apgr_standard_error(score, edge, cloud, resamples=50) is None
        assert routellm.routellm_metrics(score, edge, cloud) == routellm.RouteLLMMetrics(
            None, None, None, None
        )


def test_a_hand_computed_curve() -> None:
    # escalation order 0.1, 0.2, 0.5, 0.9; gains (cloud - edge) +1, +1, -1, 0; edge alone 2/4
    score = [0.9, 0.2, 0.5, 0.1]
    edge = [True, False, True, False]
    cloud = [True, True, False, True]
    fractions, accuracy = routellm.accuracy_curve(score, edge, cloud)
    assert fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert accuracy.tolist() == [0.5, 0.75, 1.0, 0.75, 0.75]
    curve = routellm.pgr_curve(score, edge, cloud)
    assert curve is not None
    assert curve[1].tolist() == [0.0, 1.0, 2.0, 1.0, 1.0]  # gap 0.25; beats the cloud at 0.5
    # trapezoid: (0 + 1 + 2 + 1 + 1 - (0 + 1) / 2) / 4
    assert routellm.apgr(score, edge, cloud) == pytest.approx(1.125)
    assert routellm.cpt(score, edge, cloud, recovered=0.5) == pytest.approx(0.125)
    assert routellm.cpt(score, edge, cloud, recovered=0.8) == pytest.approx(0.2)
    assert routellm.cpt(score, edge, cloud, recovered=2.0) == pytest.approx(0.5)
    assert routellm.cpt(score, edge, cloud, recovered=2.5) is None


def test_a_tie_group_moves_linearly_between_its_ends() -> None:
    # groups {0.2, 0.2} gains +1, +1 and {0.7, 0.7} gains +1, 0; edge alone 1/4
    score = [0.7, 0.2, 0.7, 0.2]
    edge = [True, False, False, False]
    cloud = [True, True, True, True]
    _, accuracy = routellm.accuracy_curve(score, edge, cloud)
    # k = 3 is halfway through the second group: 0.75 or 1.0 in a fixed order, 0.875 expected
    assert accuracy.tolist() == [0.25, 0.5, 0.75, 0.875, 1.0]


def test_a_missing_score_escalates_first() -> None:
    # None ranks below -5.0: escalating 1 question takes it (gain +1), not the -5.0 (gain 0)
    edge = [True, False, False]
    cloud = [True, True, False]
    for missing in (None, float("nan")):
        _, accuracy = routellm.accuracy_curve([0.9, missing, -5.0], edge, cloud)
        assert accuracy.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])


def _informative(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    edge = rng.random(n) < 0.45
    cloud = rng.random(n) < 0.75
    score = np.round(np.where(edge, 0.6, 0.4) + rng.normal(0.0, 0.25, n), 2)  # with ties
    return score, edge, cloud


def test_the_bootstrap_error_is_small_positive_and_deterministic() -> None:
    score, edge, cloud = _informative(400)
    first = routellm.apgr_standard_error(score, edge, cloud)
    assert first is not None and 0.0 < first < 0.1
    assert routellm.apgr_standard_error(score, edge, cloud) == first
    assert routellm.apgr_standard_error(score, edge, cloud, seed=1) != first


def test_the_vectorised_bootstrap_matches_apgr_on_each_resample() -> None:
    score, edge, cloud = _informative(60)
    draws = np.random.default_rng(3).integers(0, 60, size=(40, 60))
    values = [routellm.apgr(score[d], edge[d], cloud[d]) for d in draws]
    expected = np.std([v for v in values if v is not None], ddof=1)
    got = routellm.apgr_standard_error(score, edge, cloud, resamples=40, seed=3)
    assert got == pytest.approx(expected, rel=1e-9)


def test_routellm_metrics_gathers_the_four() -> None:
    score, edge, cloud = _informative(200)
    result = routellm.routellm_metrics(score, edge, cloud)
    assert result.apgr == routellm.apgr(score, edge, cloud)
    assert result.apgr is not None and result.apgr > 0.5
    assert result.apgr_se == routellm.apgr_standard_error(score, edge, cloud)
    assert result.cpt50 == routellm.cpt(score, edge, cloud, recovered=0.5)
    assert result.cpt80 == routellm.cpt(score, edge, cloud, recovered=0.8)
    assert result.cpt50 is not None and result.cpt80 is not None
    assert 0.0 < result.cpt50 < 0.5 and result.cpt50 < result.cpt80


def test_inputs_of_unequal_length_are_refused() -> None:
    with pytest.raises(ValueError, match=r"one entry per question \(got 3, 2 and 3\)"):
        routellm.apgr([0.1, 0.2, 0.3], [True, False], [True, True, False])
    with pytest.raises(ValueError, match="no questions"):
        routellm.accuracy_curve([], [], [])
    with pytest.raises(ValueError, match="finite"):
        routellm.cpt([0.1], [False], [True], recovered=float("nan"))
