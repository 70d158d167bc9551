"""Trust or Escalate's cascaded selective evaluation, as a baseline beside the gate.

Jung, Brahman and Choi, "Trust or Escalate: LLM Judges with Provable Guarantees for Human
Agreement" (ICLR 2025). Judges are tried cheapest first. Judge j has a confidence c_j(x) per
pair and a threshold lambda_j: a pair that reaches judge j is decided by it (its side is the
label) when c_j(x) >= lambda_j, and escalates to the next judge otherwise; after the last
judge the pair abstains (goes to a human). lambda_j is calibrated on the calibration pairs
that reach judge j so that the disagreement with humans among the pairs it decides is
<= alpha with probability >= 1 - delta: candidate thresholds are the distinct confidences
that decide at least ``min_count`` (30, as published) calibration pairs, tested from most to
least confident with the exact binomial (Clopper--Pearson) upper bound
(:func:`calibration.metrics.clopper_pearson_upper`). Two variants:

* ``"toe-valid"``: fixed-sequence testing done right -- stop at the first candidate whose
  bound exceeds alpha and keep the last one that passed (via
  :func:`calibration.threshold.select_threshold`); when the first candidate already fails the
  judge decides nothing. delta is split across the judges (Bonferroni, delta / n_judges), so
  with probability >= 1 - delta every judge's decided region has risk <= alpha, and then so
  does their union (a mixture of regions each <= alpha). As in the paper, judge j's test is
  conditional on the earlier judges' thresholds, which were fitted on the same calibration
  pairs; ``tests/test_toe.py`` checks the guarantee on simulated draws.
* ``"toe-published"``: the rule of the authors' public code (``SelectiveClassificationUtil.
  lambda_hat`` and ``CascadedClassifier.calibrate``). When the most confident candidate's
  bound already exceeds alpha it returns that candidate anyway, so the top block is
  auto-decided with no evidence that its risk is <= alpha; otherwise it scans downwards and
  stops at the first failure, as the valid rule does (its bound, a root of the binomial CDF
  found with ``brentq``, is the same Clopper--Pearson bound). Each judge is tested at the
  full delta (no split across judges), and a judge with no candidate (fewer than
  ``min_count`` reaching pairs) reuses the previous judge's threshold untested (for the first
  judge the published code raises; here it decides nothing). It is NOT valid: the top block
  is always accepted, so whenever its true risk exceeds alpha the guarantee fails with
  probability 1 (not <= delta); a reused threshold is never tested; and the cascade's
  family-wise error can reach n_judges * delta. The published grid is
  ``linspace(0, 1, 5000)``; the sets of decided pairs change only at observed confidences, so
  the distinct confidences give the same rule.

Confidence and side of a judge on a pair (:func:`judge_signals`): its side is its verdict when
all its valid recorded orders name the same side (none when they disagree or none is valid).
Its confidence is its own (the recorded ``confidence`` column, averaged over its valid
orders) when every valid order carries one; otherwise its two-order agreement: 1.0 when both
orders name the same side, 0.5 when they differ. A judge with only one valid order and no own
confidence has no usable confidence (NaN): it never decides that pair, which escalates (so a
single-order panel without confidences decides nothing). A pair the judge has no side on is
never decided by it. A pair decided by judge k costs the calls of judges 1..k (one per
recorded order, invalid ones included); an abstained pair costs every judge's.

Input is the long table of :mod:`calibration.features` (``pair_id, judge, order, verdict,
confidence?``; verdicts five-point or three-way sides) and human labels as a Series by
pair_id ("A", "B", "tie"). Judge order is ``judges`` (cheapest first) or the table's order
of first appearance.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> rows, gold = [], {}
>>> for i in range(600):
...     truth = "A" if rng.uniform() < 0.5 else "B"
...     gold[i] = truth
...     for judge, bonus in [("cheap", 0.0), ("strong", 0.1)]:
...         conf = rng.uniform(0.5, 1.0)  # cheap is calibrated, strong 0.1 better than it says
...         right = rng.uniform() < conf + bonus
...         rows.append((i, judge, "ab", truth if right else {"A": "B", "B": "A"}[truth], conf))
>>> df = pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict", "confidence"])
>>> cal = df[df.pair_id < 300]
>>> toe = TrustOrEscalate(alpha=0.15, delta=0.1).fit(cal, pd.Series(gold))
>>> toe.judges_, toe.delta_per_judge_
(['cheap', 'strong'], 0.05)
>>> out = toe.predict(df[df.pair_id >= 300])
>>> list(out.columns)
['side', 'stage', 'judge', 'calls']
>>> [round(t, 3) for t in toe.thresholds_], toe.stages_[0]["calibration_decided"]
([0.932, 0.72], 36)
>>> decided = out[out.stage >= 0]
>>> len(decided) / len(out), round(float((decided.side == pd.Series(gold)[decided.index]).mean()), 3)
(0.58, 0.96)
>>> out.calls.value_counts().sort_index().to_dict()
{1.0: 35, 2.0: 265}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from calibration.features import normalize_judgments
from calibration.threshold import select_threshold
from judge.verdicts import to_side

__all__ = ["TrustOrEscalate", "JudgeSignals", "judge_signals", "RULES", "VARIANTS"]

Variant = Literal["toe-valid", "toe-published"]
VARIANTS: tuple[Variant, Variant] = ("toe-valid", "toe-published")
RULES: tuple[str, ...] = (
    "last passing candidate",
    "first candidate fails",
    "no candidate decides min_count pairs",
    "failing top block kept",  # published only
    "previous judge's threshold reused untested",  # published only
)
PUBLISHED_MIN_COUNT = 30  # the published grid keeps thresholds deciding >= 30 calibration pairs
_SIDE_OF_SIGN = {1.0: "A", -1.0: "B", 0.0: "tie"}


@dataclass
class JudgeSignals:
    """Per pair (rows) and judge (columns, in cascade order): side, confidence and calls."""

    side: pd.DataFrame  # "A" | "B" | "tie", or None where the judge names no side
    confidence: pd.DataFrame  # float; NaN where the judge has no usable confidence
    calls: pd.DataFrame  # recorded calls (orders) per pair and judge; 0 where not judged


def judge_signals(judgments: pd.DataFrame, judges: Sequence[str] | None = None) -> JudgeSignals:
    """Each judge's side and confidence per pair, as the module docstring defines them."""
    df = normalize_judgments(judgments)
    pairs = pd.Index(pd.unique(df["pair_id"]), name="pair_id")
    order = [str(j) for j in (judges if judges is not None else pd.unique(df["judge"]))]
    valid = df["valid"].to_numpy(dtype=bool)
    long = pd.DataFrame(
        {
            "pair_id": df["pair_id"],
            "judge": df["judge"].astype(str),
            "valid": valid,
            "sign": np.sign(df["strength"].to_numpy(dtype=float)),
            "conf": np.where(valid, df["confidence"].to_numpy(dtype=float), np.nan),
        }
    )
    agg = long.groupby(["pair_id", "judge"], sort=False).agg(
        calls=("valid", "size"),
        n_valid=("valid", "sum"),
        lo=("sign", "min"),
        hi=("sign", "max"),
        n_conf=("conf", "count"),
        own=("conf", "mean"),
    )
    agree = (agg["n_valid"] > 0) & (agg["lo"] == agg["hi"])
    side = pd.Series(agg["lo"].map(_SIDE_OF_SIGN), index=agg.index, dtype=object).where(agree, None)
    has_own = (agg["n_valid"] > 0) & (agg["n_conf"] == agg["n_valid"])
    two_order = np.where(agree, 1.0, 0.5)
    conf = pd.Series(
        np.where(has_own, agg["own"], np.where(agg["n_valid"] >= 2, two_order, np.nan)), index=agg.index
    )

    def wide(values: pd.Series, fill: Any) -> pd.DataFrame:
        table = values.unstack("judge").reindex(index=pairs, columns=order)
        return table.astype(object).where(table.notna(), fill) if fill is None else table.fillna(fill)

    return JudgeSignals(
        side=wide(side, None),
        confidence=wide(conf, np.nan).astype(float),
        calls=wide(agg["calls"].astype(float), 0.0).astype(float),
    )


class TrustOrEscalate:
    """Cascaded selective evaluation (Trust or Escalate), ``variant`` "toe-valid" or "toe-published".

    Parameters
    ----------
    alpha : allowed disagreement with humans among decided pairs (target agreement 1 - alpha).
    delta : allowed probability that the guarantee fails (split across judges when valid).
    variant : "toe-valid" (stop at the first failing threshold) or "toe-published".
    judges : cascade order, cheapest first (default: order of first appearance in the table).
    min_count : a candidate threshold must decide at least this many reaching calibration pairs.

    Attributes (after ``fit``)
    ----------
    judges_ : the cascade order used.
    thresholds_ : lambda per judge (None: the judge decides nothing).
    delta_per_judge_ : the level each judge's test ran at.
    stages_ : per judge a JSON-friendly dict: threshold, calibration pairs reaching and decided
        by it and their agreement, and the ``rule`` that set the threshold (:data:`RULES`; the
        published variant's "failing top block kept" and "previous judge's threshold reused
        untested" are its invalid steps).
    """

    def __init__(
        self,
        alpha: float = 0.1,
        delta: float = 0.1,
        variant: Variant = "toe-valid",
        judges: Sequence[str] | None = None,
        min_count: int = PUBLISHED_MIN_COUNT,
    ) -> None:
        self.alpha = alpha
        self.delta = delta
        self.variant = variant
        self.judges = judges
        self.min_count = min_count

    def fit(self, judgments: pd.DataFrame, gold: pd.Series) -> Self:
        """Calibrate one threshold per judge, in cascade order, on the pairs of ``judgments``
        that have a human label in ``gold`` (a Series by pair_id)."""
        if not (0.0 < self.alpha < 1.0 and 0.0 < self.delta < 1.0):
            raise ValueError("alpha and delta must be in (0, 1)")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        signals = judge_signals(judgments, self.judges)
        self.judges_: list[str] = list(signals.side.columns)
        valid = self.variant == "toe-valid"
        self.delta_per_judge_: float = self.delta / max(1, len(self.judges_)) if valid else self.delta
        labels = gold.reindex(signals.side.index).map(lambda v: to_side(v, strict=False))
        labelled = labels.notna().to_numpy()
        truth = labels.to_numpy(dtype=object)[labelled]
        reaching = np.ones(int(labelled.sum()), dtype=bool)
        self.thresholds_: list[float | None] = []
        self.stages_: list[dict[str, Any]] = []
        for judge in self.judges_:
            side = signals.side[judge].to_numpy(dtype=object)[labelled]
            conf = signals.confidence[judge].to_numpy(dtype=float)[labelled]
            score = np.where(pd.notna(side) & ~np.isnan(conf), conf, -np.inf)
            correct = (side == truth).astype(float)
            threshold, rule = self._threshold(score[reaching], correct[reaching])
            decided = reaching & (score >= threshold) if threshold is not None else np.zeros_like(reaching)
            n_dec = int(decided.sum())
            agreement = float(correct[decided].mean()) if n_dec else None
            self.thresholds_.append(threshold)
            self.stages_.append(
                {
                    "judge": judge,
                    "threshold": threshold,
                    "calibration_reaching": int(reaching.sum()),
                    "calibration_decided": n_dec,
                    "calibration_agreement": agreement,
                    "rule": rule,
                }
            )
            reaching &= ~decided
        return self

    def _threshold(self, score: NDArray[Any], correct: NDArray[Any]) -> tuple[float | None, str]:
        """lambda for one judge from its reaching pairs' scores (-inf: undecidable) and 0/1
        agreement, and the rule that gave it (one of :data:`RULES`)."""
        result = select_threshold(
            score, correct, self.alpha, self.delta_per_judge_, n_min=0, min_accept=self.min_count
        )
        curve = result.curve
        candidates = [i for i, n in enumerate(curve.get("n_accepted", [])) if n >= self.min_count]
        if not candidates:
            if self.variant == "toe-published" and self.thresholds_:
                return self.thresholds_[-1], "previous judge's threshold reused untested"
            return None, "no candidate decides min_count pairs"
        if self.variant == "toe-valid":
            if result.threshold is None:
                return None, "first candidate fails"
            return float(result.threshold), "last passing candidate"
        fails = [1.0 - curve["agreement_lower_bound"][i] > self.alpha for i in candidates]
        if fails[0]:
            return float(curve["threshold"][candidates[0]]), "failing top block kept"
        last = candidates[0]
        for i, failed in zip(candidates[1:], fails[1:], strict=True):
            if failed:
                break
            last = i
        return float(curve["threshold"][last]), "last passing candidate"

    def predict(self, judgments: pd.DataFrame) -> pd.DataFrame:
        """Per pair (index pair_id): ``side`` decided (None: abstained, to a human), ``stage``
        (index of the deciding judge in ``judges_``; -1 abstained), ``judge`` (its name or
        None) and ``calls`` (judge calls spent: judges 1..stage, or all when abstained)."""
        signals = judge_signals(judgments, self.judges_)
        n = len(signals.side)
        stage = np.full(n, -1)
        side_out = np.full(n, None, dtype=object)
        for k, (judge, threshold) in enumerate(zip(self.judges_, self.thresholds_, strict=True)):
            if threshold is None:
                continue
            side = signals.side[judge].to_numpy(dtype=object)
            conf = signals.confidence[judge].to_numpy(dtype=float)
            take = (
                (stage < 0) & pd.notna(side) & ~np.isnan(conf) & (np.nan_to_num(conf, nan=-1.0) >= threshold)
            )
            stage[take] = k
            side_out[take] = side[take]
        cum_calls = signals.calls.to_numpy(dtype=float).cumsum(axis=1)
        last = cum_calls.shape[1] - 1
        calls = cum_calls[np.arange(n), np.where(stage >= 0, stage, last)] if last >= 0 else np.zeros(n)
        names = np.array([*self.judges_, None], dtype=object)
        index = signals.side.index
        return pd.DataFrame(
            {
                "side": pd.Series(side_out, index=index, dtype=object),
                "stage": pd.Series(stage, index=index),
                "judge": pd.Series(names[stage], index=index, dtype=object),
                "calls": pd.Series(calls, index=index),
            }
        )
