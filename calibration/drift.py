"""Drift kill-switch: a sequential test on the audit stream, valid under continuous monitoring.

The audit stream is a 0/1 sequence in arrival order: 1 when the human reviewer agreed with
the label that was (or would have been) auto-accepted. The null hypothesis is "agreement is
still at least the target tau"; the alarm means "with confidence 1 - delta it is below".

Statistic: a mixture likelihood ratio (a test supermartingale). For any alternative rate
q < tau, L_t(q) = prod_i (q / tau)^x_i ((1 - q) / (1 - tau))^(1 - x_i) has expectation <= 1
at every step whenever the agreement probability is >= tau (even if it changes over time), so
the mixture M_t = integral of L_t(q) over q ~ Uniform(0, tau) is a nonnegative supermartingale
under the null. Ville's inequality gives P(M_t >= 1/delta for ANY t) <= delta: the stream
may be checked after every audit, forever, and the false-alarm probability stays <= delta.
Closed form: M_t = B(S+1, F+1) * I_tau(S+1, F+1) / (tau^(S+1) (1 - tau)^F), with S agreements
and F disagreements so far.

``bound`` is the anytime-valid upper confidence bound on agreement (inverting the same
test for every tau and intersecting over time), at the alarm or at the end of the stream.

Assumptions: audited pairs are a random sample of auto-accepted pairs (not chosen by
reviewers or by difficulty); reviewers label blind to the judge's answer (anchoring inflates
agreement); the target compared with is the gate's target, not its lower bound. After an
alarm, close the gate and recalibrate on fresh labels; restart the test with the new gate.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> good = (rng.uniform(size=500) < 0.95).astype(int)
>>> drift_alarm(good, target=0.9, delta=0.1).alarm
False
>>> bad = np.r_[good[:100], (rng.uniform(size=400) < 0.7).astype(int)]
>>> r = drift_alarm(bad, target=0.9, delta=0.1)
>>> r.alarm, 100 < r.at_index < 250, r.bound < 0.9
(True, True, True)
>>> m = DriftMonitor(target=0.9, delta=0.1)
>>> m.update_many(bad), m.n, m.alarm_at == r.at_index
(True, 500, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln
from scipy.stats import beta

__all__ = ["DriftResult", "DriftMonitor", "drift_alarm", "log_evidence", "upper_confidence_bound"]


@dataclass
class DriftResult:
    """``at_index``: 0-based index of the audit at which the alarm first fired (None if never).

    ``estimate``: observed agreement up to the alarm (or over the whole stream);
    ``bound``: anytime-valid upper confidence bound on agreement at the same point;
    ``log_evidence``: log M_t there (alarm when >= log(1/delta)).
    """

    alarm: bool
    at_index: int | None
    estimate: float | None
    bound: float | None
    n: int
    log_evidence: float


def log_evidence(
    successes: np.ndarray | float, failures: np.ndarray | float, target: float | np.ndarray
) -> Any:
    """log M_t for S agreements and F disagreements against H0: agreement >= target."""
    s = np.asarray(successes, dtype=float)
    f = np.asarray(failures, dtype=float)
    tau = np.asarray(target, dtype=float)
    with np.errstate(divide="ignore"):
        out = (
            betaln(s + 1.0, f + 1.0)
            + beta.logcdf(tau, s + 1.0, f + 1.0)
            - (s + 1.0) * np.log(tau)
            - f * np.log1p(-tau)
        )
    return out


def upper_confidence_bound(
    successes: np.ndarray, failures: np.ndarray, delta: float, iters: int = 40
) -> np.ndarray:
    """Per time step, the largest agreement rate the test does not reject (bisection over tau).

    log M(tau) grows as tau moves above the observed rate, so the non-rejected set is an
    interval [0, u]; u is found by bisection, vectorized over all time steps.
    """
    s = np.asarray(successes, dtype=float)
    f = np.asarray(failures, dtype=float)
    crit = math.log(1.0 / delta)
    lo = np.zeros_like(s)
    hi = np.ones_like(s) - 1e-12
    # tau = 1 is rejected as soon as a single disagreement is seen; otherwise nothing is rejected.
    none_rejected = log_evidence(s, f, hi) < crit
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        rej = log_evidence(s, f, mid) >= crit
        hi = np.where(rej, mid, hi)
        lo = np.where(rej, lo, mid)
    return np.where(none_rejected, 1.0, hi)


def drift_alarm(
    agreements: Sequence[int] | np.ndarray, target: float, delta: float, min_audits: int = 10
) -> DriftResult:
    """Run the sequential test over an audit stream (1 = human agreed); see the module docstring.

    ``min_audits``: no alarm before this many audits. Skipping early looks only removes
    chances to alarm, so the false-alarm bound is unchanged; it stops a couple of unlucky
    first audits (2 disagreements in 3 already is 1/delta evidence) from killing a gate.
    """
    if not (0.0 < target < 1.0 and 0.0 < delta < 1.0):
        raise ValueError("target and delta must be in (0, 1)")
    x = np.asarray(agreements, dtype=float).reshape(-1)
    if x.size and not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("agreements must be 0/1")
    n = int(x.size)
    if n == 0:
        return DriftResult(False, None, None, None, 0, 0.0)
    s = np.cumsum(x)
    f = np.arange(1, n + 1) - s
    ev = log_evidence(s, f, target)
    hits = np.flatnonzero((ev >= math.log(1.0 / delta)) & (np.arange(n) >= min_audits - 1))
    at = int(hits[0]) if hits.size else None
    end = at if at is not None else n - 1
    ucb = np.minimum.accumulate(upper_confidence_bound(s[: end + 1], f[: end + 1], delta))
    return DriftResult(
        alarm=at is not None,
        at_index=at,
        estimate=float(s[end] / (end + 1)),
        bound=float(ucb[-1]),
        n=n,
        log_evidence=float(ev[end]),
    )


class DriftMonitor:
    """Streaming form of :func:`drift_alarm` with JSON state (store it next to the gate).

    ``update(agree)`` returns True once the alarm has fired (and keeps returning True).
    """

    def __init__(
        self,
        target: float,
        delta: float,
        successes: int = 0,
        failures: int = 0,
        alarm_at: int | None = None,
        min_audits: int = 10,
    ) -> None:
        self.target = target
        self.delta = delta
        self.min_audits = min_audits
        self.successes = successes
        self.failures = failures
        self.alarm_at = alarm_at

    @property
    def n(self) -> int:
        return self.successes + self.failures

    @property
    def alarm(self) -> bool:
        return self.alarm_at is not None

    def update(self, agree: int | bool) -> bool:
        if agree:
            self.successes += 1
        else:
            self.failures += 1
        if self.alarm_at is None and self.n >= self.min_audits:
            if log_evidence(self.successes, self.failures, self.target) >= math.log(1.0 / self.delta):
                self.alarm_at = self.n - 1
        return self.alarm

    def update_many(self, agreements: Iterable[int | bool]) -> bool:
        for a in agreements:
            self.update(a)
        return self.alarm

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "delta": self.delta,
            "successes": self.successes,
            "failures": self.failures,
            "alarm_at": self.alarm_at,
            "min_audits": self.min_audits,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftMonitor:
        return cls(
            float(d["target"]),
            float(d["delta"]),
            int(d["successes"]),
            int(d["failures"]),
            d.get("alarm_at"),
            int(d.get("min_audits", 10)),
        )
