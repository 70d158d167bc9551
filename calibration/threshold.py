"""Pick an auto-accept threshold with a finite-sample agreement guarantee.

Procedure (fixed-sequence testing with exact binomial bounds, as in Learn-then-Test /
Trust or Escalate): given calibration pairs with a confidence score and a 0/1 "the human
agrees with the predicted label", candidate thresholds are the distinct scores, tested from
the most to the least confident. For threshold t let R(t) be the disagreement rate among
future pairs with score >= t. Each t tests H0(t): R(t) > alpha by the one-sided
Clopper--Pearson upper bound (:func:`calibration.metrics.clopper_pearson_upper`) at level
1 - delta on the disagreements among calibration pairs with score >= t; H0 is rejected
when the bound is <= alpha. Testing stops at the first
threshold that fails; the chosen threshold is the last (lowest) one that passed. Because the
order is fixed before the labels are looked at, no multiplicity correction is needed: with
probability >= 1 - delta over the calibration sample, every accepted threshold -- in
particular the chosen one -- has R(t) <= alpha, i.e. agreement of auto-accepted pairs >=
1 - alpha. The gate stays closed (threshold None) when fewer than ``n_min`` usable labels
exist or when even the first threshold fails.

Where the sequence starts is a design choice that may use the scores but not the labels:
testing begins at the first threshold accepting at least ``min_accept`` calibration pairs.
Why it matters: one failure ends the sequence, so a start in a region whose agreement is
barely above target (continuous judge confidences: the top pairs are ~92 % right) closes the
gate on one unlucky block, while a start far down skips a small clean top (coarse vote
scores). No fixed rule of thumb wins on both shapes, so the start is chosen per fit from the
scores alone: given ``expected`` (a label-free estimate of P(correct) per pair -- the
calibrator's out-of-fold confidences), :func:`power_start` simulates correctness from those
estimates, runs the sequence from every feasible start and takes the start with the highest
expected coverage. Without estimates (a vote score is no probability) the start is
:func:`default_min_accept` (38 for alpha = delta = 0.1), the smallest count at which a
disagreement rate of alpha/2 would pass. Either way the start ignores the ``correct`` labels,
so the guarantee below is unchanged; a poor estimate costs coverage, not validity. Figures
(LLMBar, PandaLM, simulated judges) are in the README's measurements.

Assumptions, and where they break:

* Exchangeability: calibration pairs and future pairs are draws from the same distribution.
  Breaks under drift (new prompt types, new judge model versions, a different label policy);
  the audit stream and :mod:`calibration.drift` exist to catch that.
* The score function is fixed independently of the labels used here. Holds exactly when the
  calibrator is fitted on other labels (split mode). With cross-fitting the score on each
  calibration pair is out-of-sample but the deployed model saw all of them, so the guarantee
  is approximate; :mod:`calibration.lab.simulate` checks it empirically.
* The labels are a random sample of the pairs the gate will see, not pairs reviewers chose
  (hard, disputed or flagged items make the bound pessimistic; easy ones make it optimistic).
* Humans are the reference: the guarantee is agreement with the labelling process that
  produced the gold labels, label noise included.
* The guarantee is marginal over calibration draws (holds for 1 - delta of them) and is about
  the population rate, not the agreement observed on any particular finite batch.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> conf = rng.uniform(size=2000)
>>> correct = rng.uniform(size=2000) < 0.6 + 0.4 * conf   # agreement rises with confidence
>>> res = select_threshold(conf, correct, alpha=0.1, delta=0.1)
>>> res.open, 0.5 < res.threshold < 0.7, res.agreement_lower_bound >= 0.9
(True, True, True)
>>> select_threshold(conf[:10], correct[:10], alpha=0.1, delta=0.1).reason
'too few usable labels: 10 < n_min=50'
>>> round(clopper_pearson_upper(0, 22, 0.1), 3), min_accept_for(0.1, 0.1), default_min_accept(0.1, 0.1)
(0.099, 22, 38)

With label-free estimates of P(correct) the start is chosen by power: here the top is only
~0.93 right for a target of 0.85, so it starts far below the fixed 25 and expects more:

>>> s = np.linspace(1, 0, 300)
>>> start = power_start(s, 0.93 - 0.1 * s[::-1] ** 2, alpha=0.15, delta=0.1)
>>> start.min_accept > 2 * start.default_min_accept, start.expected_coverage > start.default_expected_coverage
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom

from calibration.metrics import clopper_pearson_upper

__all__ = [
    "PowerStart",
    "ThresholdResult",
    "power_start",
    "default_min_accept",
    "min_accept_for",
    "select_threshold",
]


def min_accept_for(alpha: float, delta: float) -> int:
    """Smallest accepted count whose bound can pass at all (zero disagreements): (1-alpha)^n <= delta."""
    return int(math.ceil(math.log(delta) / math.log(1.0 - alpha) - 1e-12))


def default_min_accept(alpha: float, delta: float, slack: float = 0.5) -> int:
    """Where the test sequence starts by default: the smallest accepted count n at which an
    observed disagreement rate of ``slack * alpha`` (k = floor(slack * alpha * n)) passes.

    Starting where zero errors are needed (:func:`min_accept_for`) makes one early error end
    the sequence; starting too late skips small high-precision regions. This rule uses no
    labels, so it keeps the guarantee. alpha = delta = 0.1 gives 38.
    """
    for n in range(1, 100_000):
        k = math.floor(slack * alpha * n)
        if clopper_pearson_upper(k, n, delta) <= alpha:
            return n
    raise ValueError("no feasible start; alpha or delta too small")


@dataclass(frozen=True)
class PowerStart:
    """Where :func:`power_start` starts the sequence and why: ``min_accept`` (accepted count of
    the first tested threshold) and the coverage it expected there and at the default start."""

    min_accept: int
    expected_coverage: float
    default_min_accept: int
    default_expected_coverage: float


def pass_limits(n: NDArray[Any], alpha: float, delta: float) -> NDArray[Any]:
    """Per accepted count n, the most disagreements whose Clopper--Pearson bound still passes
    (-1 where none does). By the binomial/beta duality the bound is <= alpha exactly when
    P(Binomial(n, alpha) <= k) <= delta, so the limit is read off the binomial CDF."""
    n = np.asarray(n, dtype=np.int64)
    k = binom.ppf(delta, n, alpha).astype(np.int64)  # smallest k with CDF(k) >= delta
    return np.asarray(np.where(binom.cdf(k, n, alpha) <= delta, k, k - 1))


TIE_SHARE = 0.01  # expected coverages this close (share of the pairs) count as a tie in power_start


def power_start(
    confidence: NDArray[Any],
    expected: NDArray[Any],
    alpha: float,
    delta: float,
    draws: int = 400,
    seed: int = 0,
) -> PowerStart:
    """Choose where the fixed sequence starts from the scores alone, by its expected coverage.

    Why: the fixed sequence stops at its first failure, so a start in a region whose
    agreement is barely above target (continuous confidences: the top pairs are ~92 % right)
    closes the gate on one unlucky block, while a start far down skips a small clean top
    (coarse vote scores: big blocks that are all right). Which is better depends on the
    score shape, so the start is chosen per fit: correctness is drawn ``draws`` times from
    the label-free estimate ``expected`` (P(correct) per pair, e.g. the calibrator's
    out-of-fold confidence), the sequence is run from every feasible start on each draw, and
    the start with the highest mean accepted count wins; starts within ``TIE_SHARE`` of the
    best count as ties, and the one nearest :func:`default_min_accept` wins them.

    Validity: the start is a function of the scores and their estimates, not of the
    ``correct`` labels the test then uses, so the fixed-sequence guarantee stands as it does
    for any label-free start (with cross-fitted scores it is as approximate as the scores
    themselves are; tests/test_threshold_procedures.py measures it on simulated judges).
    A wrong estimate costs coverage, never validity. Deterministic for a given ``seed``.
    """
    conf = np.asarray(confidence, dtype=float)
    exp = np.clip(np.nan_to_num(np.asarray(expected, dtype=float), nan=0.5), 0.0, 1.0)
    order = np.argsort(-conf, kind="stable")
    s, p = conf[order], exp[order]
    keep = np.isfinite(s)
    s, p = s[keep], p[keep]
    default = default_min_accept(alpha, delta)
    if s.size == 0:
        return PowerStart(default, 0.0, default, 0.0)
    last_of_run = np.r_[s[1:] != s[:-1], True]
    n_acc = np.arange(1, s.size + 1)[last_of_run]
    limits = pass_limits(n_acc, alpha, delta)
    feasible = np.flatnonzero(limits >= 0)
    if feasible.size == 0:
        return PowerStart(default, 0.0, default, 0.0)
    rng = np.random.default_rng(seed)
    errs = rng.uniform(size=(draws, s.size)) >= p  # simulated disagreements
    cum_k = np.cumsum(errs, axis=1)[:, last_of_run][:, feasible]
    fails = cum_k > limits[feasible]
    c = feasible.size
    # First failure at or after each start, per draw (c when none): a reverse running minimum.
    idx = np.where(fails, np.arange(c), c)
    next_fail = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
    chosen = next_fail - 1  # the last candidate passed before that failure
    n_feasible = np.r_[0, n_acc[feasible]]
    covered = np.where(chosen >= np.arange(c), n_feasible[chosen + 1], 0).mean(axis=0)
    d = int(np.searchsorted(n_acc[feasible], default))
    default_cov = float(covered[d]) if d < c else 0.0
    # Move off the default start only for a material gain (TIE_SHARE of the pairs): where many
    # starts tie (a clean panel: every start reaches the end in every draw) the estimates are
    # too optimistic to tell them apart, and the earliest would need zero errors to pass.
    near = np.flatnonzero(covered >= covered.max() - TIE_SHARE * s.size)
    best = int(near[np.argmin(np.abs(np.log(n_acc[feasible][near] / default)))])
    return PowerStart(
        min_accept=int(n_acc[feasible][best]),
        expected_coverage=float(covered[best] / s.size),
        default_min_accept=default,
        default_expected_coverage=default_cov / s.size,
    )


@dataclass
class ThresholdResult:
    """The chosen threshold and the evidence for it.

    ``agreement_lower_bound`` is the (1 - delta) lower confidence bound on agreement of pairs
    scored >= threshold; ``expected_coverage`` the share of usable calibration pairs at or
    above it. ``curve`` holds one entry per candidate threshold (JSON-friendly lists).
    """

    threshold: float | None
    open: bool
    reason: str
    n_used: int
    n_accepted: int
    agreement_lower_bound: float | None
    expected_coverage: float
    alpha: float = 0.1
    delta: float = 0.1
    curve: dict[str, list[Any]] = field(default_factory=dict)

    def accepts(self, confidence: float) -> bool:
        return self.open and self.threshold is not None and bool(confidence >= self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_threshold(
    confidence: Sequence[float] | NDArray[Any],
    correct: Sequence[float] | NDArray[Any],
    alpha: float,
    delta: float,
    n_min: int = 50,
    min_accept: int | None = None,
    starts: int = 1,
    grid: int | None = None,
    expected: Sequence[float] | NDArray[Any] | None = None,
) -> ThresholdResult:
    """Fixed-sequence Clopper--Pearson threshold selection (see module docstring).

    ``starts`` > 1 runs that many fixed sequences, each at level delta / starts (Bonferroni:
    with probability >= 1 - delta none of them passes a bad threshold), starting at accepted
    counts spread evenly from the first start to the last scored pair, and keeps the lowest
    threshold any of them passed: one unlucky block near the top no longer ends the search.
    ``grid`` keeps only the candidates at ``grid`` evenly spaced quantiles of the scores
    (chosen from the scores alone, so without looking at the labels): fewer, larger steps.

    ``confidence``: score per calibration pair (higher = more likely correct). ``-inf`` marks a
    pair that may never be auto-accepted (a hard flag): it counts as a usable label but no
    threshold accepts it. NaN in either array drops the pair. ``correct``: 1 if the human
    label equals the predicted label, else 0. Returns a closed result (threshold None) with the
    reason when there are fewer than ``n_min`` usable labels or no threshold passes.

    ``expected``: a label-free estimate of P(correct) per pair (same alignment; the
    calibrator's out-of-fold confidences). Given, and ``min_accept`` None, the sequence starts
    where :func:`power_start` expects the most coverage; otherwise at :func:`default_min_accept`.
    """
    if not (0.0 < alpha < 1.0 and 0.0 < delta < 1.0):
        raise ValueError("alpha and delta must be in (0, 1)")
    conf, corr, exp = _usable_pairs(confidence, correct, expected)
    n_used = int(conf.size)
    if starts < 1 or (grid is not None and grid < 1):
        raise ValueError("starts and grid must be >= 1")
    level = delta / starts  # each sequence's share of delta
    if min_accept is not None:
        m = int(min_accept)
    elif exp is not None and starts == 1 and grid is None and n_used >= n_min:
        m = power_start(conf, exp, alpha, level).min_accept
    else:
        m = default_min_accept(alpha, level)
    if n_used < n_min:
        return _closed(f"too few usable labels: {n_used} < n_min={n_min}", n_used, alpha, delta, {})

    cands = _candidates(conf, corr, level)
    n_acc, ub = cands.n_accepted, cands.upper_bound
    eligible = n_acc >= m
    if grid is not None and cands.n_scored:
        eligible &= _on_grid(n_acc, cands.n_scored, grid)
    tested, passed, chosen = _run_sequences(cands, eligible, alpha, m, starts)
    # For the reason: the first failure, or the one right after the chosen threshold.
    fails = np.flatnonzero(tested & ~passed)
    later = fails[fails > chosen]
    failed_at = int(later[0]) if later.size else -1
    curve = _curve(cands, n_used, tested, passed)
    if chosen < 0:
        return _closed(_closed_reason(cands, eligible, failed_at, m, alpha), n_used, alpha, delta, curve)
    return ThresholdResult(
        threshold=float(cands.threshold[chosen]),
        open=True,
        reason=_open_reason(cands, chosen, failed_at, n_used, alpha, delta),
        n_accepted=int(n_acc[chosen]),
        agreement_lower_bound=float(1.0 - ub[chosen]),
        expected_coverage=float(n_acc[chosen] / n_used),
        curve=curve,
        n_used=n_used,
        alpha=alpha,
        delta=delta,
    )


@dataclass
class _Candidates:
    """The candidate thresholds, one per distinct finite score, most confident first.

    Per candidate: the calibration pairs it accepts (every pair tied with it included), their
    disagreements, and the Clopper--Pearson upper bound on the disagreement rate.
    ``n_scored``: pairs with a finite score (those a threshold can accept).
    """

    threshold: NDArray[Any]
    n_accepted: NDArray[Any]
    n_disagree: NDArray[Any]
    upper_bound: NDArray[Any]
    n_scored: int


def _usable_pairs(
    confidence: Sequence[float] | NDArray[Any],
    correct: Sequence[float] | NDArray[Any],
    expected: Sequence[float] | NDArray[Any] | None,
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any] | None]:
    """The three arrays, checked for shape, without the pairs whose score or label is NaN."""
    conf = np.asarray(confidence, dtype=float)
    corr = np.asarray(correct, dtype=float)
    if conf.shape != corr.shape:
        raise ValueError(f"confidence and correct differ in shape: {conf.shape} vs {corr.shape}")
    usable = ~np.isnan(conf) & ~np.isnan(corr)
    exp = None
    if expected is not None:
        exp = np.asarray(expected, dtype=float)
        if exp.shape != conf.shape:
            raise ValueError(f"expected and confidence differ in shape: {exp.shape} vs {conf.shape}")
        exp = exp[usable]
    return conf[usable], corr[usable], exp


def _candidates(conf: NDArray[Any], corr: NDArray[Any], level: float) -> _Candidates:
    # Sort once, most confident first; a threshold at a distinct score accepts every pair tied with it.
    order = np.argsort(-conf, kind="stable")
    s, errs = conf[order], 1.0 - corr[order]
    finite = np.isfinite(s)
    s, errs = s[finite], errs[finite]
    cum_n = np.arange(1, s.size + 1)
    cum_k = np.cumsum(errs)
    last_of_run = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, dtype=bool)
    n_acc, k_acc = cum_n[last_of_run], cum_k[last_of_run]
    return _Candidates(
        threshold=s[last_of_run],
        n_accepted=n_acc,
        n_disagree=k_acc,
        upper_bound=np.asarray(clopper_pearson_upper(k_acc, n_acc, level), dtype=float).reshape(-1),
        n_scored=int(s.size),
    )


def _on_grid(n_accepted: NDArray[Any], n_scored: int, grid: int) -> NDArray[Any]:
    """Per candidate: is it the first at or past one of ``grid`` evenly spaced quantile counts?

    The counts depend on the scores only, so the choice does not look at the labels.
    """
    marks = np.unique(np.ceil(np.arange(1, grid + 1) / grid * n_scored))
    return np.isin(np.arange(n_accepted.size), np.searchsorted(n_accepted, marks))


def _run_sequences(
    cands: _Candidates, eligible: NDArray[Any], alpha: float, min_accept: int, starts: int
) -> tuple[NDArray[Any], NDArray[Any], int]:
    """Run the ``starts`` fixed sequences over the eligible candidates.

    Returns which candidates were tested, which passed, and the index of the lowest threshold
    any sequence passed (-1 when none did).
    """
    tested = np.zeros_like(eligible)
    passed = np.zeros_like(eligible)
    chosen = -1
    candidates = np.flatnonzero(eligible)
    first_counts = min_accept + np.arange(starts) / starts * max(0, cands.n_scored - min_accept)
    for start in np.unique(np.searchsorted(cands.n_accepted[candidates], first_counts)):
        for i in candidates[start:]:
            if tested[i] and not passed[i]:
                break  # an earlier sequence failed here at the same level: this one would too
            tested[i] = True
            if cands.upper_bound[i] > alpha:
                break
            passed[i] = True
            chosen = max(chosen, int(i))
    return tested, passed, chosen


def _curve(
    cands: _Candidates, n_used: int, tested: NDArray[Any], passed: NDArray[Any]
) -> dict[str, list[Any]]:
    """The evidence at every candidate threshold, as JSON-friendly lists."""
    n_acc = cands.n_accepted
    return {
        "threshold": cands.threshold.tolist(),
        "n_accepted": n_acc.astype(int).tolist(),
        "coverage": (n_acc / n_used).tolist(),
        "agreement": (1.0 - cands.n_disagree / n_acc).tolist(),
        "agreement_lower_bound": (1.0 - cands.upper_bound).tolist(),
        "tested": tested.tolist(),
        "passed": passed.tolist(),
    }


def _closed(
    reason: str, n_used: int, alpha: float, delta: float, curve: dict[str, list[Any]]
) -> ThresholdResult:
    return ThresholdResult(
        None,
        False,
        reason,
        n_accepted=0,
        agreement_lower_bound=None,
        expected_coverage=0.0,
        curve=curve,
        n_used=n_used,
        alpha=alpha,
        delta=delta,
    )


def _open_reason(
    cands: _Candidates, chosen: int, failed_at: int, n_used: int, alpha: float, delta: float
) -> str:
    """The evidence for the chosen threshold, and why the search stopped there."""
    n_acc, ub = cands.n_accepted, cands.upper_bound
    stop = (
        "all candidates passed"
        if failed_at < 0
        else (f"next candidate failed (n={int(n_acc[failed_at])}, lower bound {1 - ub[failed_at]:.3f})")
    )
    return (
        f"open: {int(n_acc[chosen])}/{n_used} calibration pairs accepted, agreement lower bound "
        f"{1 - ub[chosen]:.3f} >= {1 - alpha:.3f} at {1 - delta:.0%} confidence; {stop}"
    )


def _closed_reason(
    cands: _Candidates, eligible: NDArray[Any], failed_at: int, min_accept: int, alpha: float
) -> str:
    """Why no threshold passed: none was eligible, or the first one tested failed."""
    if not eligible.any():
        return f"no threshold accepts at least min_accept={min_accept} pairs"
    n_acc, k_acc, ub = cands.n_accepted, cands.n_disagree, cands.upper_bound
    i = failed_at
    return (
        f"no threshold passes: the first tested (n={int(n_acc[i])}, agreement "
        f"{1 - k_acc[i] / n_acc[i]:.3f}) has lower bound {1 - ub[i]:.3f} < target {1 - alpha:.3f}"
    )
