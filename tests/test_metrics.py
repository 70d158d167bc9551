"""Calibration metrics: hand-checked values, agreement with reference implementations, edge cases."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from calibration import metrics
from calibration.metrics import (
    brier_score,
    clopper_pearson_interval,
    coverage_agreement_curve,
    expected_calibration_error,
    reliability_curve,
)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(metrics).failed == 0


def test_ece_hand_computed() -> None:
    # bins of width 0.2: {0.9, 0.8} -> bin 4, 0.6 -> bin 3, 0.55 -> bin 2
    conf = [0.9, 0.8, 0.6, 0.55]
    ok = [True, True, False, True]
    expected = (2 * abs(1 - 0.85) + abs(0 - 0.6) + abs(1 - 0.55)) / 4
    assert expected_calibration_error(conf, ok, n_bins=5) == pytest.approx(expected)


def test_ece_zero_when_calibrated_and_one_when_maximally_wrong() -> None:
    conf = np.full(8, 0.75)
    ok = np.array([1, 1, 1, 0, 1, 1, 1, 0], dtype=bool)
    assert expected_calibration_error(conf, ok) == pytest.approx(0.0)
    assert expected_calibration_error(np.ones(5), np.zeros(5, dtype=bool)) == pytest.approx(1.0)


def test_confidence_one_falls_in_last_bin() -> None:
    _, _, count = reliability_curve([1.0, 0.95, 0.05], [True, True, False], n_bins=10)
    assert count.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]


def test_reliability_curve_keeps_empty_bins() -> None:
    mean_conf, accuracy, count = reliability_curve([0.15, 0.18, 0.92], [False, True, True], n_bins=10)
    assert len(mean_conf) == len(accuracy) == len(count) == 10
    assert count.sum() == 3
    assert mean_conf[1] == pytest.approx(0.165) and accuracy[1] == pytest.approx(0.5)
    assert np.isnan(accuracy[0]) and count[0] == 0


def test_ece_matches_reliability_curve_on_random_data() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, 5000)
    ok = rng.uniform(size=5000) < conf  # calibrated by construction
    assert expected_calibration_error(conf, ok, 10) < 0.03
    overconfident = rng.uniform(size=5000) < conf - 0.2
    assert expected_calibration_error(conf, overconfident, 10) == pytest.approx(0.2, abs=0.03)


def test_brier_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    conf = rng.uniform(size=200)
    ok = rng.uniform(size=200) < conf
    assert brier_score(conf, ok) == pytest.approx(brier_score_loss(ok, conf))


def test_brier_single_class_is_fine() -> None:
    assert brier_score([0.9, 0.7], [True, True]) == pytest.approx((0.01 + 0.09) / 2)


def test_coverage_agreement_curve_orders_and_groups_ties() -> None:
    conf = [0.6, 0.9, 0.9, 0.7, 0.6]
    ok = [False, True, False, True, True]
    thresholds, coverage, agreement = coverage_agreement_curve(conf, ok)
    assert thresholds.tolist() == [0.9, 0.7, 0.6]  # ties are one step
    assert coverage.tolist() == pytest.approx([0.4, 0.6, 1.0])
    assert agreement.tolist() == pytest.approx([0.5, 2 / 3, 0.6])
    assert agreement[-1] == pytest.approx(np.mean(ok))


def test_coverage_curve_is_monotone_on_random_data() -> None:
    rng = np.random.default_rng(3)
    conf = rng.uniform(size=300).round(2)
    ok = rng.uniform(size=300) < conf
    thresholds, coverage, _ = coverage_agreement_curve(conf, ok)
    assert np.all(np.diff(thresholds) < 0)
    assert np.all(np.diff(coverage) > 0)
    assert coverage[-1] == pytest.approx(1.0)


def test_empty_input() -> None:
    assert np.isnan(expected_calibration_error([], []))
    assert np.isnan(brier_score([], []))
    mean_conf, accuracy, count = reliability_curve([], [], n_bins=4)
    assert count.tolist() == [0, 0, 0, 0] and np.isnan(mean_conf).all() and np.isnan(accuracy).all()
    for array in coverage_agreement_curve([], []):
        assert array.size == 0


@pytest.mark.parametrize(
    ("conf", "ok"),
    [([0.5, 0.6], [True]), ([1.2], [True]), ([-0.1], [False]), ([float("nan")], [True]), ([0.5], [2])],
)
def test_bad_input_raises(conf: list[float], ok: list[int]) -> None:
    with pytest.raises(ValueError):
        expected_calibration_error(conf, ok)


def test_clopper_pearson() -> None:
    assert clopper_pearson_interval(0, 10)[0] == 0.0
    assert clopper_pearson_interval(10, 10)[1] == 1.0
    assert all(np.isnan(clopper_pearson_interval(0, 0)))
    # (1 - 0.95)^n check: all-success lower bound for alpha = 0.1 one side 0.05
    lo, _ = clopper_pearson_interval(59, 59, alpha=0.10)
    assert lo == pytest.approx(0.05 ** (1 / 59))
    statsmodels = pytest.importorskip("statsmodels.stats.proportion")
    lo, hi = clopper_pearson_interval(37, 50, alpha=0.05)
    ref = statsmodels.proportion_confint(37, 50, alpha=0.05, method="beta")
    assert (lo, hi) == pytest.approx(ref)
    with pytest.raises(ValueError):
        clopper_pearson_interval(5, 3)


def test_clopper_pearson_vectorised_matches_scalar() -> None:
    k, n = np.array([0, 3, 10, 0]), np.array([10, 10, 10, 0])
    lower, upper = clopper_pearson_interval(k, n, alpha=0.1)
    for i in range(3):
        assert (lower[i], upper[i]) == pytest.approx(
            clopper_pearson_interval(int(k[i]), int(n[i]), alpha=0.1)
        )
    assert np.isnan(lower[3]) and np.isnan(upper[3])
