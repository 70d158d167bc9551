"""Calibration metrics for judge confidence, as plain functions over arrays (scikit-learn style).

Every function takes ``confidence`` (the probability the pipeline assigns to its own label being
right, in [0, 1]) and ``correct`` (whether that label matched the human gold label). Nothing here
knows about judges, pairs or databases: the caller builds the two arrays.

Empty input is legal (a project with no gold labels yet): scalar metrics return ``nan`` and
curves return empty arrays, so a report can say "not enough data" instead of crashing.

The exact (Clopper--Pearson) binomial bounds live here too, the one copy the gate's threshold
test (:mod:`calibration.threshold`), the cascade and the report all use:
:func:`clopper_pearson_upper` / :func:`clopper_pearson_lower` (one-sided, level 1 - delta) and
:func:`clopper_pearson_interval` (two-sided, built from the two).

Example
-------
>>> import numpy as np
>>> conf = np.array([0.9, 0.8, 0.6, 0.55])
>>> ok = np.array([True, True, False, True])
>>> round(expected_calibration_error(conf, ok, n_bins=5), 4)
0.3375
>>> round(brier_score(conf, ok), 4)
0.1531
>>> thresholds, coverage, agreement = coverage_agreement_curve(conf, ok)
>>> thresholds.tolist(), coverage.tolist(), [round(float(a), 3) for a in agreement]
([0.9, 0.8, 0.6, 0.55], [0.25, 0.5, 0.75, 1.0], [1.0, 1.0, 0.667, 0.75])
>>> round(clopper_pearson_upper(0, 22, 0.1), 3), round(clopper_pearson_lower(22, 22, 0.1), 3)
(0.099, 0.901)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import beta

__all__ = [
    "brier_score",
    "clopper_pearson_interval",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "coverage_agreement_curve",
    "expected_calibration_error",
    "reliability_curve",
]


def _check(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    conf = np.asarray(confidence, dtype=float).ravel()
    ok = np.asarray(correct).ravel()
    if conf.shape != ok.shape:
        raise ValueError(f"confidence and correct differ in length: {conf.size} != {ok.size}")
    if conf.size and (np.isnan(conf).any() or conf.min() < 0.0 or conf.max() > 1.0):
        # A confidence outside [0, 1] means the caller passed a score, not a probability;
        # silently clipping it would make the reliability diagram lie.
        raise ValueError("confidence must be probabilities in [0, 1] without NaN")
    if ok.size and not np.isin(ok, (0, 1, True, False)).all():
        raise ValueError("correct must be boolean (or 0/1)")
    return conf, ok.astype(float)


def _bin_index(conf: npt.NDArray[Any], n_bins: int) -> npt.NDArray[Any]:
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    # Equal-width bins on [0, 1]; confidence exactly 1.0 goes to the last bin rather than
    # an extra overflow bin (judges often report 1.0).
    return np.asarray(np.minimum((conf * n_bins).astype(int), n_bins - 1))


def reliability_curve(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 10
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """Per-bin mean confidence, accuracy and count over ``n_bins`` equal-width bins of [0, 1].

    Unlike :func:`sklearn.calibration.calibration_curve`, empty bins are kept (mean and accuracy
    ``nan``, count 0) so that bin ``i`` always covers ``[i/n_bins, (i+1)/n_bins)`` and the counts
    can be drawn as a histogram under the diagram.
    """
    conf, ok = _check(confidence, correct)
    idx = _bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    sum_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    sum_ok = np.bincount(idx, weights=ok, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, sum_conf / count, np.nan)
        accuracy = np.where(count > 0, sum_ok / count, np.nan)
    return mean_conf, accuracy, count


def expected_calibration_error(confidence: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 10) -> float:
    """ECE: count-weighted mean of ``|accuracy - mean confidence|`` over equal-width bins.

    Returns ``nan`` for empty input. Lower is better; 0 means that, bin by bin, the stated
    confidence equals the observed agreement with humans.
    """
    mean_conf, accuracy, count = reliability_curve(confidence, correct, n_bins)
    total = count.sum()
    if total == 0:
        return float("nan")
    filled = count > 0
    return float(np.sum(count[filled] * np.abs(accuracy[filled] - mean_conf[filled])) / total)


def brier_score(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> float:
    """Mean squared error between confidence and correctness (0 best, 1 worst); ``nan`` if empty.

    Computed directly rather than with ``sklearn.metrics.brier_score_loss``, which refuses (or
    warns on) a single-class ``y_true`` -- common early on when every gold label so far agrees.
    """
    conf, ok = _check(confidence, correct)
    if conf.size == 0:
        return float("nan")
    return float(np.mean((conf - ok) ** 2))


def coverage_agreement_curve(
    confidence: npt.ArrayLike, correct: npt.ArrayLike
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """Coverage and agreement of the rule "auto-accept if confidence >= t" for every distinct t.

    Thresholds are sorted from most to least confident, so coverage rises from the most
    confident group to 1.0 while agreement (accuracy among the accepted) typically falls.
    Tied confidences form one step: a threshold cannot accept half of a tie.
    """
    conf, ok = _check(confidence, correct)
    if conf.size == 0:
        empty = np.array([], dtype=float)
        return empty, empty.copy(), empty.copy()
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    cum_ok = np.cumsum(ok)
    # Last position of each run of equal confidence = the cut for that threshold.
    last_of_run = np.r_[conf[1:] != conf[:-1], True]
    accepted = np.flatnonzero(last_of_run) + 1
    thresholds = conf[last_of_run]
    coverage = accepted / conf.size
    agreement = cum_ok[accepted - 1] / accepted
    return thresholds, coverage, agreement


def clopper_pearson_upper(k: npt.ArrayLike, n: npt.ArrayLike, delta: float) -> float | npt.NDArray[Any]:
    """One-sided exact (Clopper--Pearson) upper bound, level 1 - delta, on a binomial rate.

    ``k`` events in ``n`` trials (the gate bounds its disagreement rate this way); 1 where
    k == n and for n == 0, where nothing bounds the rate. Scalars in, float out; arrays in,
    array out.
    """
    k_arr = np.asarray(k, dtype=float)
    n_arr = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        # beta.ppf is undefined at k == n (a zero shape parameter); that end is 1.
        ub = beta.ppf(1.0 - delta, k_arr + 1.0, np.maximum(n_arr - k_arr, 1e-12))
    ub = np.where((n_arr <= 0) | (k_arr >= n_arr), 1.0, ub)
    return float(ub) if ub.ndim == 0 else ub


def clopper_pearson_lower(k: npt.ArrayLike, n: npt.ArrayLike, delta: float) -> float | npt.NDArray[Any]:
    """One-sided exact (Clopper--Pearson) lower bound, level 1 - delta, on a binomial rate.

    ``k`` events in ``n`` trials (the report bounds agreement this way); 0 where k == 0 and
    for n == 0. Scalars in, float out; arrays in, array out.
    """
    k_arr = np.asarray(k, dtype=float)
    n_arr = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        # beta.ppf is undefined at k == 0 (a zero shape parameter); that end is 0.
        lb = beta.ppf(delta, np.maximum(k_arr, 1e-12), n_arr - k_arr + 1)
    lb = np.where((n_arr <= 0) | (k_arr <= 0), 0.0, lb)
    return float(lb) if lb.ndim == 0 else lb


def clopper_pearson_interval(
    k: npt.ArrayLike, n: npt.ArrayLike, alpha: float = 0.05
) -> tuple[float, float] | tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Exact two-sided (1 - alpha) binomial interval for ``k`` successes out of ``n``.

    The one-sided bounds at ``alpha / 2`` each (so ``clopper_pearson_lower(k, n, delta)`` is the
    first value at ``alpha = 2 * delta``). ``(nan, nan)`` where ``n == 0``. Scalars in, floats
    out; arrays in, arrays out (vectorised, so a running audit band over thousands of audits
    costs one call).
    """
    k_arr, n_arr = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if np.any(n_arr < 0) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError(f"need 0 <= k <= n, got k={k!r}, n={n!r}")
    lower = np.where(n_arr == 0, np.nan, clopper_pearson_lower(k_arr, n_arr, alpha / 2))
    upper = np.where(n_arr == 0, np.nan, clopper_pearson_upper(k_arr, n_arr, alpha / 2))
    if lower.ndim == 0:
        return float(lower), float(upper)
    return lower, upper
