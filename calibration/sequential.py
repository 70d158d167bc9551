"""Sequential tests on a stream of yes/no outcomes: is a reviewer still good enough?

:class:`SPRT` is Wald's sequential probability ratio test of H0 "accuracy >= good" against
H1 "accuracy <= bad" on outcomes 1 (agreed with the reference answer) and 0. Each outcome adds
``log(bad / good)`` (a 1) or ``log((1 - bad) / (1 - good))`` (a 0) to the log likelihood ratio;
the test rejects H0 once it reaches ``log((1 - beta) / alpha)`` and accepts H0 once it falls
to ``log(beta / (1 - alpha))``. Wald's bounds keep the chance of rejecting a stream at the
good level near ``alpha`` and of accepting one at the bad level near ``beta``, whatever the
number of outcomes it takes -- unlike a point estimate checked after every answer.

:func:`monitor` watches a reviewer for as long as they work: the test starts over each time
it accepts H0 (a *good check*) and the stream stops at the first rejection. Each restart is
a new test, so over a long stream a reviewer exactly at ``good`` is eventually rejected with
more than ``alpha``; a reviewer clearly above ``good`` passes each test fast and almost never is.

Example
-------
>>> test = SPRT(good=0.85, bad=0.6, alpha=0.01, beta=0.05)
>>> test.run([1] * 9)
SPRTResult(decision='accept', n=9, llr=-3.13)
>>> test.run([0, 0, 1, 0, 0, 0, 1])
SPRTResult(decision='reject', n=6, llr=4.56)
>>> watch = monitor([1] * 9 + [0, 0, 1, 0, 0, 0], test)
>>> watch.decision, watch.stopped_at, watch.last_good_check, watch.tests_passed
('reject', 14, 8, 1)
>>> monitor([1, 1, 0, 1], test).decision
'continue'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["SPRT", "Monitoring", "SPRTResult", "monitor"]

Decision = Literal["accept", "reject", "continue"]


@dataclass(frozen=True)
class SPRTResult:
    """Where one test stopped: ``decision``, after ``n`` outcomes, at log likelihood ratio ``llr``."""

    decision: Decision
    n: int
    llr: float

    def __repr__(self) -> str:
        return f"SPRTResult(decision={self.decision!r}, n={self.n}, llr={self.llr:.2f})"


@dataclass(frozen=True)
class SPRT:
    """Wald's SPRT of H0 accuracy >= ``good`` against H1 accuracy <= ``bad`` (``bad < good``).

    ``alpha``: chance of rejecting H0 when the accuracy is ``good``; ``beta``: chance of
    accepting it when the accuracy is ``bad``.
    """

    good: float
    bad: float
    alpha: float = 0.01
    beta: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.bad < self.good < 1.0:
            raise ValueError(f"need 0 < bad < good < 1, got bad={self.bad}, good={self.good}")
        if not (0.0 < self.alpha < 0.5 and 0.0 < self.beta < 0.5):
            raise ValueError(f"need 0 < alpha, beta < 0.5, got alpha={self.alpha}, beta={self.beta}")

    @property
    def upper(self) -> float:
        """Reject H0 (the stream is bad) at or above this log likelihood ratio."""
        return math.log((1.0 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """Accept H0 (the stream is good) at or below this log likelihood ratio."""
        return math.log(self.beta / (1.0 - self.alpha))

    def step(self, agreed: bool) -> float:
        """The log likelihood ratio (H1 over H0) one outcome adds."""
        if agreed:
            return math.log(self.bad / self.good)
        return math.log((1.0 - self.bad) / (1.0 - self.good))

    def run(self, outcomes: Iterable[bool | int]) -> SPRTResult:
        """Test ``outcomes`` in order; stop at the first boundary (later outcomes are not read)."""
        llr, n = 0.0, 0
        for outcome in outcomes:
            llr += self.step(bool(outcome))
            n += 1
            if llr >= self.upper:
                return SPRTResult("reject", n, llr)
            if llr <= self.lower:
                return SPRTResult("accept", n, llr)
        return SPRTResult("continue", n, llr)


@dataclass(frozen=True)
class Monitoring:
    """A stream watched by repeated tests.

    ``decision`` is "reject" (stopped at outcome index ``stopped_at``) or "continue";
    ``last_good_check`` is the index of the outcome at which a test last accepted H0 (None if
    none has), ``tests_passed`` how many did, and ``llr``/``n_open`` describe the test under way.
    """

    decision: Literal["reject", "continue"]
    stopped_at: int | None
    last_good_check: int | None
    tests_passed: int
    llr: float
    n_open: int


def monitor(outcomes: Iterable[bool | int], test: SPRT) -> Monitoring:
    """Run ``test`` over ``outcomes``, starting it over after every acceptance, until a rejection."""
    llr, n_open, passed, last_good = 0.0, 0, 0, None
    for index, outcome in enumerate(outcomes):
        llr += test.step(bool(outcome))
        n_open += 1
        if llr >= test.upper:
            return Monitoring("reject", index, last_good, passed, llr, n_open)
        if llr <= test.lower:
            llr, n_open, passed, last_good = 0.0, 0, passed + 1, index
    return Monitoring("continue", None, last_good, passed, llr, n_open)
