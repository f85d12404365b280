"""The routing metrics against cases computed by hand."""

from __future__ import annotations

import math

import pytest

from edge_runtime.routing import metrics


def test_auroc_counts_pairs_and_half_ties() -> None:
    # correct: 0.35, 0.8; wrong: 0.1, 0.4 -> pairs won: (0.35>0.1), (0.8>0.1), (0.8>0.4) = 3/4
    assert metrics.auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert metrics.auroc([0.5, 0.5], [True, False]) == 0.5
    assert metrics.auroc([0.9, 0.1], [False, True]) == 0.0


def test_auroc_ranks_a_missing_score_lowest_and_needs_both_classes() -> None:
    assert metrics.auroc([None, 0.2], [False, True]) == 1.0
    assert metrics.auroc([float("nan"), 0.2], [True, False]) == 0.0
    assert metrics.auroc([0.3, 0.6], [True, True]) is None


def test_ece_weights_each_bin_by_its_share() -> None:
    # bin [0, 0.1): conf 0, accuracy 1/2 -> 0.5 x 2/4; bin [0.9, 1]: conf 1, accuracy 1 -> 0
    assert metrics.ece([0.0, 0.0, 1.0, 1.0], [False, True, True, True]) == pytest.approx(0.25)
    assert metrics.ece([0.25] * 4, [True, False, False, False]) == pytest.approx(0.0)
    # 0.3 and 0.35 share a bin: mean conf 0.325, accuracy 0.5 -> 0.175
    assert metrics.ece([0.3, 0.35], [True, False]) == pytest.approx(0.175)
    assert metrics.ece([None, None], [True, False]) is None


def test_reliability_puts_one_in_the_last_bin_and_skips_missing() -> None:
    bins = metrics.reliability([1.0, 0.95, None, 0.05], [True, False, True, True], bins=10)
    assert len(bins) == 10
    assert bins[9].count == 2 and bins[9].accuracy == 0.5
    assert bins[0].count == 1 and sum(b.count for b in bins) == 3


def test_random_baseline_is_the_cards_formula() -> None:
    # finance on the card: p = 0.70, cloud 69.5, raw 32.2 -> 58.3 (the card prints 58.2)
    assert metrics.random_baseline(0.70, 69.5, 32.2) == pytest.approx(58.31)
    assert metrics.random_baseline(0.0, 0.9, 0.3) == 0.3
    assert metrics.random_baseline(1.0, 0.9, 0.3) == 0.9


def test_operating_point_and_lift() -> None:
    # kept: q0 (right), q2 (right); routed: q1 (cloud right), q3 (cloud wrong) -> 3/4
    point = metrics.operating_point([1, 0, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], 0.5)
    assert point.cloud_fraction == 0.5
    assert point.accuracy == 0.75
    assert point.random == pytest.approx(0.5)  # 0.5 x cloud 0.5 + 0.5 x raw 0.5
    assert point.lift == pytest.approx(0.25)


def test_a_missing_score_escalates_and_a_tie_stays_local() -> None:
    assert metrics.keeps_local([0.5, None, float("nan"), 0.49], 0.5).tolist() == [
        True, False, False, False,
    ]  # fmt: skip


def test_tau_sweep_over_buckets() -> None:
    scores, local, cloud = [0.0, 0.25, 0.5, 1.0], [0, 1, 0, 1], [1, 1, 1, 1]
    sweep = metrics.tau_sweep(scores, local, cloud)
    assert [p.tau for p in sweep][:3] == [0.0, 0.05, 0.1] and sweep[-1].tau == 1.0
    by_tau = {p.tau: p for p in sweep}
    assert by_tau[0.0].cloud_fraction == 0.0 and by_tau[0.0].accuracy == 0.5
    assert by_tau[0.25].cloud_fraction == 0.25
    assert by_tau[0.3].cloud_fraction == 0.5 and by_tau[0.3].accuracy == 0.75
    assert by_tau[1.0].cloud_fraction == 0.75 and by_tau[1.0].accuracy == 1.0


def test_risk_coverage_takes_ties_together() -> None:
    points = metrics.risk_coverage([0.9, 0.5, 0.5, 0.1], [True, False, True, False])
    assert points == [(0.25, 0.0), (0.75, pytest.approx(1 / 3)), (1.0, 0.5)]


BUCKETS = [0.0] * 4 + [0.25] * 3 + [0.5] * 2 + [1.0]  # fractions routed: 0, .4, .7, .9
LOCAL = [False] * 4 + [False, True, True] + [True, True] + [True]
CLOUD = [True] * 10


def test_recommender_on_a_five_valued_signal_never_interpolates() -> None:
    assert metrics.achievable_taus(BUCKETS) == [0.0, 0.25, 0.5, 1.0]
    pick = metrics.recommend_tau(BUCKETS, LOCAL, CLOUD, target_cloud_fraction=0.3)
    assert pick.tau == 0.25 and pick.cloud_fraction == pytest.approx(0.4)
    assert not pick.met and "nearest achievable cloud fraction 0.400" in pick.note
    exact = metrics.recommend_tau(BUCKETS, LOCAL, CLOUD, target_cloud_fraction=0.7)
    assert exact.tau == 0.5 and exact.met
    top = metrics.recommend_tau(BUCKETS, LOCAL, CLOUD, target_cloud_fraction=1.0)
    assert top.tau == 1.0 and top.cloud_fraction == pytest.approx(0.9)


def test_recommender_for_a_target_accuracy() -> None:
    # accuracies at tau 0, 0.25, 0.5, 1.0: 0.6, 0.9, 1.0, 1.0 -> 0.5 is the cheapest >= 0.95
    pick = metrics.recommend_tau(BUCKETS, LOCAL, CLOUD, target_accuracy=0.95)
    assert pick.tau == 0.5 and pick.met and pick.accuracy == 1.0
    unreachable = metrics.recommend_tau(BUCKETS, LOCAL, [False] * 10, target_accuracy=0.99)
    assert not unreachable.met and unreachable.accuracy < 0.99
    with pytest.raises(ValueError):
        metrics.recommend_tau(BUCKETS, LOCAL, CLOUD)


def test_accuracy_of_nothing_is_nan() -> None:
    assert math.isnan(metrics.accuracy([]))
