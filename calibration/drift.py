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

A single test from the first audit reacts slowly to a drop after a long good period (the
all-time average must sink first), so by default a fresh test is also started every
``restart_every`` audits and the alarm uses their weighted sum (still a test supermartingale,
false-alarm probability still <= delta over the unbounded stream). On simulated streams the
restarts cut the delay after a drop severalfold (figures: README's measurements;
tests/test_drift.py checks the delay and the false-alarm rate).

``bound`` is the anytime-valid upper confidence bound on agreement (inverting the same
test for every tau), read at the alarm or at the end of the stream.

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
from numpy.typing import NDArray
from scipy.special import betainc, betaln

__all__ = [
    "DriftResult",
    "DriftMonitor",
    "drift_alarm",
    "log_evidence",
    "restart_weights",
    "upper_confidence_bound",
]


@dataclass
class DriftResult:
    """``at_index``: 0-based index of the audit at which the alarm first fired (None if never).

    ``estimate``: observed agreement from ``since_index`` up to the alarm (or the end);
    ``bound``: anytime-valid upper confidence bound on that agreement;
    ``log_evidence``: log M_t there (alarm when >= log(1/delta)).
    """

    alarm: bool
    at_index: int | None
    estimate: float | None
    bound: float | None
    n: int
    log_evidence: float
    since_index: int | None = 0


def log_evidence(
    successes: NDArray[Any] | float, failures: NDArray[Any] | float, target: float | NDArray[Any]
) -> Any:
    """log M_t for S agreements and F disagreements against H0: agreement >= target."""
    s = np.asarray(successes, dtype=float)
    f = np.asarray(failures, dtype=float)
    tau = np.asarray(target, dtype=float)
    with np.errstate(divide="ignore"):
        # betainc underflows to 0 only deep in the lower tail (observed agreement far above tau),
        # where the evidence is tiny anyway: log 0 = -inf means "no alarm", which is the safe side.
        log_i = np.log(betainc(s + 1.0, f + 1.0, tau))
        out = betaln(s + 1.0, f + 1.0) + log_i - (s + 1.0) * np.log(tau) - f * np.log1p(-tau)
    return out


def upper_confidence_bound(
    successes: NDArray[Any], failures: NDArray[Any], delta: float, iters: int = 40
) -> NDArray[Any]:
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


def restart_weights(i: NDArray[Any]) -> NDArray[Any]:
    """Prior weight of the test started at the i-th restart point; sums to 1 over i = 0, 1, ..."""
    return 1.0 / ((i + 1.0) * (i + 2.0))


def _component_evidence(x: NDArray[Any], target: float, starts: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """log M^(i)_t for tests started at each start (rows) over time (columns); 0 before the start."""
    n = x.size
    c = np.r_[0.0, np.cumsum(x)]
    t = np.arange(n)
    s_cnt = c[None, t + 1] - c[starts][:, None]
    n_cnt = (t[None, :] + 1 - starts[:, None]).astype(float)
    active = n_cnt > 0
    s_cnt = np.where(active, s_cnt, 0.0)
    f_cnt = np.where(active, n_cnt - s_cnt, 0.0)
    ev = np.where(active, log_evidence(s_cnt, f_cnt, target), 0.0)
    return ev, s_cnt, f_cnt, active


def drift_alarm(
    agreements: Sequence[int] | NDArray[Any],
    target: float,
    delta: float,
    min_audits: int = 10,
    restart_every: int | None = 50,
) -> DriftResult:
    """Run the sequential test over an audit stream (1 = human agreed); see the module docstring.

    ``min_audits``: no alarm before this many audits. Skipping early looks only removes
    chances to alarm, so the false-alarm bound is unchanged; it stops a couple of unlucky
    first audits (2 disagreements in 3 already is 1/delta evidence) from killing a gate.

    ``restart_every``: also start a fresh test every this many audits and alarm on the
    weighted sum of all of them (weights 1/((i+1)(i+2)), summing to 1; a test not started yet
    counts as 1). The sum is still a test supermartingale, so the false-alarm probability stays
    <= delta over the whole, unbounded stream; but a drop after a long good period is caught
    from the tests started after it instead of having to drag the all-time average below
    target first. ``None``: one test from the first audit (the plain cumulative test).
    ``estimate`` / ``bound`` then refer to the audits since ``since_index``, the start of the
    component with the most evidence; its bound is at level delta * weight, so all reported
    bounds hold simultaneously.
    """
    if not (0.0 < target < 1.0 and 0.0 < delta < 1.0):
        raise ValueError("target and delta must be in (0, 1)")
    x = np.asarray(agreements, dtype=float).reshape(-1)
    if x.size and not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("agreements must be 0/1")
    n = int(x.size)
    if n == 0:
        return DriftResult(False, None, None, None, 0, 0.0, None)
    starts = np.array([0]) if restart_every is None else np.arange(0, n, int(restart_every))
    ev, s_cnt, f_cnt, active = _component_evidence(x, target, starts)
    if restart_every is None:
        total = ev[0]
        w: NDArray[Any] = np.ones(1)
    else:
        w = restart_weights(np.arange(starts.size, dtype=float))
        # Tests not started yet sit at 1, contributing their weight: 1 - sum of started weights.
        started = active.sum(axis=0)
        pending = 1.0 / (started + 1.0)
        total = np.logaddexp(
            np.log(np.sum(np.where(active, w[:, None] * np.exp(np.minimum(ev, 700.0)), 0.0), axis=0)),
            np.log(pending),
        )
    hits = np.flatnonzero((total >= math.log(1.0 / delta)) & (np.arange(n) >= min_audits - 1))
    at = int(hits[0]) if hits.size else None
    end = at if at is not None else n - 1
    best = int(np.argmax(np.where(active[:, end], np.log(w) + ev[:, end], -np.inf)))
    s_b, f_b = s_cnt[best, end], f_cnt[best, end]
    # Each component's confidence sequence holds at every time, so reading it at a
    # data-dependent time (the alarm) is still valid.
    ucb = upper_confidence_bound(np.array([s_b]), np.array([f_b]), delta * float(w[best]))
    return DriftResult(
        alarm=at is not None,
        at_index=at,
        estimate=float(s_b / (s_b + f_b)),
        bound=float(ucb[0]),
        n=n,
        log_evidence=float(total[end]),
        since_index=int(starts[best]),
    )


class DriftMonitor:
    """Streaming form of :func:`drift_alarm` with JSON state (store it next to the gate).

    ``update(agree)`` returns True once the alarm has fired (and keeps returning True).
    Gives the same alarm index as :func:`drift_alarm` on the same stream and settings.
    """

    def __init__(
        self,
        target: float,
        delta: float,
        min_audits: int = 10,
        restart_every: int | None = 50,
        segments: list[list[int]] | None = None,
        alarm_at: int | None = None,
    ) -> None:
        self.target = target
        self.delta = delta
        self.min_audits = min_audits
        self.restart_every = restart_every
        # [agreements, disagreements] since each restart point, oldest first.
        self.segments: list[list[int]] = [list(map(int, sg)) for sg in segments] if segments else []
        self.alarm_at = alarm_at

    @property
    def n(self) -> int:
        return sum(self.segments[0]) if self.segments else 0

    @property
    def alarm(self) -> bool:
        return self.alarm_at is not None

    def log_evidence(self) -> float:
        if not self.segments:
            return 0.0
        sf = np.asarray(self.segments, dtype=float)
        ev = log_evidence(sf[:, 0], sf[:, 1], self.target)
        if self.restart_every is None:
            return float(ev[0])
        w = restart_weights(np.arange(len(ev), dtype=float))
        return float(np.logaddexp(np.log(np.sum(w * np.exp(np.minimum(ev, 700.0)))), -np.log(len(ev) + 1.0)))

    def update(self, agree: int | bool) -> bool:
        n = self.n
        if not self.segments or (self.restart_every is not None and n % int(self.restart_every) == 0):
            self.segments.append([0, 0])
        for sg in self.segments:
            sg[0 if agree else 1] += 1
        if self.alarm_at is None and self.n >= self.min_audits:
            if self.log_evidence() >= math.log(1.0 / self.delta):
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
            "min_audits": self.min_audits,
            "restart_every": self.restart_every,
            "segments": [list(sg) for sg in self.segments],
            "alarm_at": self.alarm_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftMonitor:
        return cls(
            float(d["target"]),
            float(d["delta"]),
            int(d.get("min_audits", 10)),
            d.get("restart_every", 50),
            d.get("segments"),
            d.get("alarm_at"),
        )
