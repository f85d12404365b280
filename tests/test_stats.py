"""The benchmarks' standard errors against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.stats import auroc_se, binomial_se, lift_se, mean_se, paired_se


def test_binomial_standard_error() -> None:
    assert binomial_se(0.25, 12) == 0.125  # sqrt(0.25 * 0.75 / 12) = sqrt(1 / 64)
    assert binomial_se(0.5, 100) == 0.05
    assert binomial_se(0.0, 7) == binomial_se(1.0, 7) == 0.0
    assert math.isnan(binomial_se(0.5, 0))  # no items: nothing measured
    for p, n in ((1.5, 10), (-0.1, 10), (0.5, -1)):
        with pytest.raises(ValueError, match="0 <= p <= 1"):
            binomial_se(p, n)


def test_standard_error_of_a_mean() -> None:
    # [1, 0, 0, 0]: mean 1/4, squared deviations 9/16 + 3/16 = 3/4, / (n - 1) = 1/4: sd 1/2
    assert mean_se([1.0, 0.0, 0.0, 0.0]) == 0.25  # 1/2 / sqrt(4)
    assert mean_se(np.array([True, False, False, False])) == 0.25
    assert mean_se([3.0, 3.0, 3.0]) == 0.0
    assert math.isnan(mean_se([1.0])) and math.isnan(mean_se([]))


def test_paired_standard_error_is_that_of_the_differences() -> None:
    # differences [1, 0, 0, -1]: mean 0, squares sum to 2, / 3: sd sqrt(2/3), / 2 = sqrt(1/6)
    a, b = np.array([1, 1, 0, 0], dtype=bool), np.array([0, 1, 0, 1], dtype=bool)
    assert paired_se(a, b) == pytest.approx(math.sqrt(1 / 6), abs=1e-15)
    assert paired_se([0.2, 0.8], [0.2, 0.8]) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        paired_se([1.0, 2.0], [1.0])


def test_hanley_mcneil_standard_error() -> None:
    # one of each at 0.5: q1 = q2 = 1/3, var = 0.5 * 0.5 / 1
    assert auroc_se(0.5, positives=1, negatives=1) == 0.5
    # 0.8 on 10 + 20: q1 = 2/3, q2 = 32/45; var = (0.16 + 9 (2/3 - 0.64) + 19 (32/45 - 0.64))
    # / 200 = (0.16 + 0.24 + 1.3511...) / 200
    assert auroc_se(0.8, positives=10, negatives=20) == pytest.approx(
        math.sqrt((0.16 + 0.24 + 19 * (32 / 45 - 0.64)) / 200), rel=1e-12
    )
    assert auroc_se(0.8, positives=10, negatives=20) == pytest.approx(0.0935711, abs=1e-7)
    assert math.isnan(auroc_se(0.7, positives=0, negatives=5))


def test_lift_standard_error() -> None:
    rng = np.random.default_rng(1)
    local, cloud = rng.random(400) < 0.4, rng.random(400) < 0.8
    # keeping everything (or nothing) is random routing of the same share: no lift, no spread
    assert lift_se(np.ones(400, bool), local, cloud) == 0.0
    assert lift_se(np.zeros(400, bool), local, cloud) == 0.0
    # a router that keeps the right answers: a real spread, about halved by four times the data
    small = lift_se(local, local, cloud)
    big = lift_se(np.tile(local, 4), np.tile(local, 4), np.tile(cloud, 4))
    assert 0.005 < small < 0.05
    assert 0.4 < big / small < 0.6
    assert math.isnan(lift_se([True], [True], [False]))
    with pytest.raises(ValueError, match="one value per question"):
        lift_se([True, False], [True], [False])
