import numpy as np
import pytest
from scipy.stats import binomtest

from calibration.metrics import clopper_pearson_upper
from calibration.threshold import default_min_accept, min_accept_for, select_threshold

ALPHA, DELTA = 0.1, 0.1


def test_clopper_pearson_matches_exact_interval():
    for k, n in [(0, 10), (3, 40), (10, 100), (7, 7)]:
        # The one-sided (1 - delta) bound is the upper end of the two-sided (1 - 2 delta) exact interval.
        expected = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * DELTA, method="exact").high
        assert clopper_pearson_upper(k, n, DELTA) == pytest.approx(expected, abs=1e-9)
    assert clopper_pearson_upper(0, 0, DELTA) == 1.0


def test_min_accept_helpers():
    assert min_accept_for(ALPHA, DELTA) == 22
    assert clopper_pearson_upper(0, 22, DELTA) <= ALPHA < clopper_pearson_upper(0, 21, DELTA)
    m = default_min_accept(ALPHA, DELTA)
    assert clopper_pearson_upper(int(0.05 * m), m, DELTA) <= ALPHA


def _true_risk(t: float) -> float:
    # Scores ~ U(0,1), P(wrong | s) = 0.3 (1 - s)  =>  risk among s >= t is 0.15 (1 - t).
    return 0.15 * (1.0 - t)


PROCEDURES = {
    "fixed sequence": {},
    "two starts": {"starts": 2},
    "three starts on a 20-quantile grid": {"starts": 3, "grid": 20},
    "20-quantile grid": {"grid": 20},
}


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_guarantee_holds_in_at_least_1_minus_delta_of_calibration_sets(procedure: str):
    rng = np.random.default_rng(0)
    reps, n = (1000 if procedure == "fixed sequence" else 400), 300
    violations = opened = 0
    for _ in range(reps):
        s = rng.uniform(size=n)
        correct = rng.uniform(size=n) >= 0.3 * (1 - s)
        res = select_threshold(s, correct, ALPHA, DELTA, n_min=50, **PROCEDURES[procedure])
        if res.open:
            opened += 1
            violations += _true_risk(res.threshold) > ALPHA
    assert opened > reps * 0.3, "the test should often find the safe region"
    # Binomial MC slack: delta + 3 sd of a proportion over 1000 draws.
    assert violations / reps <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / reps)


def test_flat_risk_just_above_alpha_rarely_opens():
    # Every threshold is bad (risk 0.12 > 0.1): any open gate is a violation; must be <= delta.
    rng = np.random.default_rng(1)
    reps = 1000
    opened = sum(
        select_threshold(rng.uniform(size=300), rng.uniform(size=300) >= 0.12, ALPHA, DELTA).open
        for _ in range(reps)
    )
    assert opened / reps <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / reps)


def test_closed_with_too_few_labels():
    res = select_threshold(np.ones(49), np.ones(49), ALPHA, DELTA, n_min=50)
    assert not res.open and res.threshold is None and "too few usable labels" in res.reason
    # NaNs are not usable labels.
    conf = np.r_[np.ones(40), np.full(20, np.nan)]
    assert select_threshold(conf, np.ones(60), ALPHA, DELTA, n_min=50).n_used == 40


def test_closed_when_nothing_passes_and_reason_says_why():
    rng = np.random.default_rng(2)
    res = select_threshold(rng.uniform(size=500), rng.uniform(size=500) < 0.7, ALPHA, DELTA)
    assert not res.open and res.threshold is None and "no threshold passes" in res.reason
    assert res.curve["tested"].count(True) == 1, "fixed sequence stops at the first failure"


def test_open_result_is_consistent_with_curve():
    rng = np.random.default_rng(3)
    s = rng.uniform(size=2000)
    res = select_threshold(s, rng.uniform(size=2000) >= 0.3 * (1 - s), ALPHA, DELTA)
    assert res.open and res.agreement_lower_bound >= 1 - ALPHA
    assert res.n_accepted == int((s >= res.threshold).sum())
    assert res.expected_coverage == pytest.approx(res.n_accepted / 2000)
    assert res.accepts(res.threshold) and not res.accepts(res.threshold - 1e-9)
    passed = np.array(res.curve["passed"])
    assert passed.sum() >= 1 and res.curve["threshold"][np.flatnonzero(passed)[-1]] == res.threshold


def test_hard_flagged_pairs_count_but_are_never_accepted():
    conf = np.r_[np.full(100, 0.99), np.full(100, -np.inf)]
    correct = np.r_[np.ones(100), np.zeros(100)]
    res = select_threshold(conf, correct, ALPHA, DELTA)
    assert res.open and res.n_used == 200 and res.expected_coverage == pytest.approx(0.5)


def test_ties_in_scores_are_accepted_together():
    conf = np.r_[np.full(60, 0.9), np.full(60, 0.8)]
    correct = np.r_[np.ones(60), np.r_[np.ones(30), np.zeros(30)]]
    res = select_threshold(conf, correct, ALPHA, DELTA)
    assert res.threshold == 0.9 and res.n_accepted == 60


def _risk_above(p_wrong, t: float) -> float:
    """True disagreement rate among scores >= t for scores ~ U(0, 1), numerically."""
    grid = np.linspace(t, 1.0, 4001)
    return float(np.mean(p_wrong(grid)))


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_guarantee_holds_where_risk_is_flat_near_the_top(procedure: str):
    """Scores ~ U(0,1), P(wrong | s) = 0.05 + 0.35 (1 - s)^2, target 0.8: the whole range is
    safe but every threshold's risk is close to alpha near the bottom; the top is so good that
    the fixed sequence starts with very few pairs, where one early error ends it."""
    alpha, reps, n = 0.2, 600, 283
    p_wrong = lambda s: 0.05 + 0.35 * (1 - s) ** 2  # noqa: E731
    rng = np.random.default_rng(1)
    violations = 0
    coverage = []
    for _ in range(reps):
        s = rng.uniform(size=n)
        res = select_threshold(
            s, rng.uniform(size=n) >= p_wrong(s), alpha, DELTA, n_min=50, **PROCEDURES[procedure]
        )
        coverage.append(res.expected_coverage)
        violations += res.open and _risk_above(p_wrong, res.threshold) > alpha
    assert violations / reps <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / reps)
    if procedure == "two starts":
        # One unlucky block near the top no longer closes the gate: measured 0.62 -> 0.92 mean
        # coverage against the single fixed sequence on these draws.
        single = np.mean(
            [
                select_threshold(s, c, alpha, DELTA, n_min=50).expected_coverage
                for s, c in ((s, rng.uniform(size=n) >= p_wrong(s)) for s in rng.uniform(size=(200, n)))
            ]
        )
        assert np.mean(coverage) > single + 0.15


def test_starts_and_grid_are_validated():
    with pytest.raises(ValueError):
        select_threshold(np.ones(60), np.ones(60), ALPHA, DELTA, starts=0)
    with pytest.raises(ValueError):
        select_threshold(np.ones(60), np.ones(60), ALPHA, DELTA, grid=0)
