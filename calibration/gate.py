"""The auto-accept gate: calibrator + guaranteed threshold, fitted from human gold labels.

:func:`fit_gate` is what the service calls on its current set of usable gold labels. It fits a
:class:`~calibration.calibrator.PairCalibrator` and picks the threshold with
:func:`~calibration.threshold.select_threshold`, so that with probability >= 1 - delta the
agreement of auto-accepted pairs with humans is >= 1 - alpha (assumptions: see
:mod:`calibration.threshold`). Every setting of a fit is a field of one frozen
:class:`~calibration.settings.GateSettings`. Ways to use the labels:

* ``mode="crossfit"`` (default): the threshold is chosen on out-of-fold scores of all
  labels and the deployed model is refitted on all of them. More labels for both jobs; the
  guarantee is approximate because the deployed model saw the threshold labels. With the
  low-capacity logistic calibrator the effect is small (LLMBar figures: README's
  measurements), and tests/test_calibration_gate.py checks the true agreement on synthetic
  data with known truth.
* ``mode="split"``: calibrator fitted on ``split_fraction`` of the labels, threshold chosen
  on the rest with that fixed model. The guarantee is exact (score independent of the
  threshold labels) but with a few hundred labels each half is too small, and the gate
  rarely opens.
* ``method="vote"`` needs no labels to build its score, so all labels go to the threshold and
  the guarantee is exact in either mode, at a lower coverage than "side".

``hard_rule=True`` never auto-accepts an order-sensitive pair
(:func:`judge.verdicts.panel_order_flip`: the panel's majority names A in one order and B in
the other). ``hard_rule_judges`` adds judges whose own flip also counts (e.g. the strongest
judge); one judge's flip is otherwise a feature the calibrator prices;
``never_accept`` passes any other per-pair rule of the service. Rules are applied before
threshold selection, so the guarantee covers exactly the pairs accepted; a rule applied only
at routing time (accepting a subset of what the gate accepts) is NOT covered.

The fitted :class:`GateModel` satisfies the service's routing ``Gate`` protocol (``open``,
``accepts(confidence)``) and round-trips through JSON via ``to_dict`` / ``from_dict``.

Example
-------
>>> import json
>>> import numpy as np, pandas as pd
>>> from calibration.features import build_features
>>> rng = np.random.default_rng(1)
>>> rows, gold = [], {}
>>> for i in range(300):
...     truth = "A" if rng.uniform() < 0.5 else "B"
...     gold[i] = truth
...     for judge, acc in [("strong", 0.9), ("weak", 0.7)]:
...         for order in ("ab", "ba"):
...             right = rng.uniform() < acc
...             rows.append((i, judge, order, truth if right else {"A": "B", "B": "A"}[truth]))
>>> df = pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict"])
>>> fs = build_features(df)
>>> y = pd.Series(gold)
>>> settings = GateSettings(alpha=0.1, delta=0.1, n_min=50, random_state=0)
>>> gate = fit_gate(fs, y, settings)
>>> gate.open, gate.guaranteed_agreement >= 0.9, 0.3 < gate.expected_coverage <= 1.0
(True, True, True)
>>> same = GateModel.from_dict(json.loads(json.dumps(gate.to_dict())))
>>> bool(np.allclose(same.confidence(fs.X), gate.confidence(fs.X)))
True
>>> fit_gate(fs, y.iloc[:20], settings).reason
'too few usable labels: 20 < n_min=50'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from calibration.calibrator import PairCalibrator
from calibration.features import FeatureSet, order_sensitive_flags
from calibration.settings import GateSettings
from calibration.threshold import ThresholdResult, select_threshold
from judge.verdicts import SIDES

__all__ = ["GateModel", "calibrator_for", "fit_gate", "labels_for"]

FORMAT_VERSION = 1


@dataclass
class GateModel:
    """A fitted gate. ``threshold`` is None and ``open`` False when no guarantee could be shown.

    ``guaranteed_agreement``: the (1 - delta) lower confidence bound on the agreement of
    auto-accepted pairs at the threshold. ``expected_coverage``: share of calibration pairs
    that clear it. ``cal_confidence`` / ``cal_correct`` / ``cal_side``: the out-of-sample
    scores, correctness and predicted side on the labels the threshold was chosen on (for
    reliability plots); ``curve``: the threshold search (see ThresholdResult).
    """

    calibrator: PairCalibrator
    judges: list[str]
    feature_names: list[str]
    threshold: float | None
    open: bool
    reason: str
    guaranteed_agreement: float | None
    expected_coverage: float
    n_labels_used: int
    alpha: float
    delta: float
    mode: str = "crossfit"
    hard_rule: bool = False
    hard_rule_judges: list[str] | None = None
    n_threshold_labels: int = 0
    cal_confidence: NDArray[Any] = field(default_factory=lambda: np.zeros(0))
    cal_correct: NDArray[Any] = field(default_factory=lambda: np.zeros(0))
    cal_side: NDArray[Any] = field(default_factory=lambda: np.zeros(0, dtype=object))
    curve: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def target_agreement(self) -> float:
        return 1.0 - self.alpha

    def confidence(self, X: NDArray[Any] | FeatureSet) -> NDArray[Any]:
        """Calibrated P(human agrees with ``predict_side``) per pair."""
        return self.calibrator.confidence(self._X(X))

    def predict_side(self, X: NDArray[Any] | FeatureSet) -> NDArray[Any]:
        return self.calibrator.predict_side(self._X(X))

    def accepts(self, confidence: float) -> bool:
        """The routing protocol: may a pair with this calibrated confidence be auto-accepted?"""
        return bool(self.open and self.threshold is not None and confidence >= self.threshold)

    def hard_flags(self, X: NDArray[Any] | FeatureSet) -> NDArray[Any]:
        """Pairs the hard rule excludes (order-sensitive); all False when the rule is off."""
        X = self._X(X)
        if not self.hard_rule:
            return np.zeros(len(X), dtype=bool)
        return order_sensitive_flags(X, self.feature_names, self.hard_rule_judges)

    def accept(self, X: NDArray[Any] | FeatureSet, never_accept: NDArray[Any] | None = None) -> NDArray[Any]:
        """Boolean per pair: auto-accept (gate open, confidence >= threshold, no hard flag).

        ``never_accept``: per-row flags the caller applies on top (must be the same rule that
        was passed to :func:`fit_gate`, or the guarantee does not cover the accepted set).
        """
        X = self._X(X)
        if not self.open or self.threshold is None:
            return np.zeros(len(X), dtype=bool)
        ok = (self.confidence(X) >= self.threshold) & ~self.hard_flags(X)
        if never_accept is not None:
            ok &= ~np.asarray(never_accept, dtype=bool)
        return np.asarray(ok)

    def _X(self, X: NDArray[Any] | FeatureSet) -> NDArray[Any]:
        if isinstance(X, FeatureSet):
            if X.feature_names != self.feature_names:
                raise ValueError("features were built with a different judge list; pass judges=gate.judges")
            return X.X
        return np.asarray(X, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (lists, floats, strings), for a database row."""
        return {
            "format_version": FORMAT_VERSION,
            "calibrator": self.calibrator.to_dict(),
            "judges": list(self.judges),
            "feature_names": list(self.feature_names),
            "threshold": self.threshold,
            "open": bool(self.open),
            "reason": self.reason,
            "guaranteed_agreement": self.guaranteed_agreement,
            "expected_coverage": float(self.expected_coverage),
            "n_labels_used": int(self.n_labels_used),
            "alpha": float(self.alpha),
            "delta": float(self.delta),
            "mode": self.mode,
            "hard_rule": bool(self.hard_rule),
            "hard_rule_judges": None if self.hard_rule_judges is None else list(self.hard_rule_judges),
            "n_threshold_labels": int(self.n_threshold_labels),
            "cal_confidence": [float(c) if np.isfinite(c) else None for c in self.cal_confidence],
            "cal_correct": [int(c) for c in self.cal_correct],
            "cal_side": [str(s) for s in self.cal_side],
            "curve": jsonable(self.curve),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateModel:
        if d.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ValueError(f"gate format {d['format_version']} is newer than this code ({FORMAT_VERSION})")
        return cls(
            calibrator=PairCalibrator.from_dict(d["calibrator"]),
            judges=list(d["judges"]),
            feature_names=list(d["feature_names"]),
            threshold=d["threshold"],
            open=bool(d["open"]),
            reason=d["reason"],
            guaranteed_agreement=d["guaranteed_agreement"],
            expected_coverage=float(d["expected_coverage"]),
            n_labels_used=int(d["n_labels_used"]),
            alpha=float(d["alpha"]),
            delta=float(d["delta"]),
            mode=d.get("mode", "crossfit"),
            hard_rule=bool(d.get("hard_rule", False)),
            hard_rule_judges=d.get("hard_rule_judges"),
            n_threshold_labels=int(d.get("n_threshold_labels", 0)),
            cal_confidence=np.array(
                [-np.inf if c is None else c for c in d.get("cal_confidence", [])], dtype=float
            ),
            cal_correct=np.asarray(d.get("cal_correct", []), dtype=int),
            cal_side=np.asarray(d.get("cal_side", []), dtype=object),
            curve=d.get("curve", {}),
        )


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    return obj


def labels_for(features: FeatureSet, y: pd.Series | Sequence[Any] | NDArray[Any]) -> NDArray[Any]:
    """Human labels aligned to ``features.pair_ids``; None where no usable label ("A"/"B"/"tie").

    A Series is matched by its index (pair ids); anything else must already be in row order.
    """
    if isinstance(y, pd.Series):
        vals = y.reindex(features.pair_ids).to_numpy(dtype=object)
    else:
        vals = np.asarray(y, dtype=object)
        if vals.shape[0] != features.X.shape[0]:
            raise ValueError(
                f"{vals.shape[0]} labels for {features.X.shape[0]} pairs; pass a Series by pair_id"
            )
    return np.array([v if isinstance(v, str) and v in SIDES else None for v in vals], dtype=object)


def calibrator_for(features: FeatureSet, settings: GateSettings) -> PairCalibrator:
    """An unfitted calibrator for ``features`` with the calibrator parameters of ``settings``."""
    return PairCalibrator(
        signed=features.signed,
        method=settings.method,
        feature_names=features.feature_names,
        C=settings.C,
        C_side=settings.C_side,
        n_splits=settings.n_splits,
        random_state=settings.random_state,
        monotone=settings.monotone,
    )


def fit_gate(
    features: FeatureSet,
    y: pd.Series | Sequence[Any] | NDArray[Any],
    settings: GateSettings = GateSettings(),
    never_accept: pd.Series | Sequence[bool] | NDArray[Any] | None = None,
) -> GateModel:
    """Fit calibrator and threshold on the pairs of ``features`` that have a usable gold label.

    ``y``: human labels "A"/"B"/"tie" (a Series by pair_id, or an array in row order); pairs
    without one are ignored. ``settings``: the guarantee (alpha, delta, n_min), how the labels
    are used and the calibrator's parameters (:class:`~calibration.settings.GateSettings`).
    ``never_accept``: flags (same alignment) for pairs the service will never auto-accept
    whatever the confidence (e.g. its routing hard flags: judge failure, disagreement,
    safety); they count as labels but not as accepted, so the guarantee covers what is
    actually accepted. Use the same rule at routing time.
    """
    labels = labels_for(features, y)
    has = np.array([v is not None for v in labels])
    X, yy = features.X[has], labels[has].astype(object)
    blocked = _aligned_flags(features, never_accept)[has]
    n = int(has.sum())
    rule_judges = None if settings.hard_rule_judges is None else list(settings.hard_rule_judges)
    alpha, delta, n_min, method = settings.alpha, settings.delta, settings.n_min, settings.method

    # What every GateModel of this fit shares, open or closed.
    common: dict[str, Any] = dict(
        judges=list(features.judges),
        feature_names=list(features.feature_names),
        n_labels_used=n,
        alpha=alpha,
        delta=delta,
        mode=settings.mode,
        hard_rule=settings.hard_rule,
        hard_rule_judges=rule_judges,
    )
    if n < n_min:
        return _closed_gate(features, f"too few usable labels: {n} < n_min={n_min}", common)
    if len(set(yy.tolist()) - {"tie"}) == 0:
        return _closed_gate(features, "gold labels contain no A/B preference; cannot calibrate", common)

    cal, side, conf, thr_rows = _fit_and_score(features, X, yy, settings)
    X_thr, y_thr, blocked_thr = X[thr_rows], yy[thr_rows], blocked[thr_rows]
    correct = (side == y_thr).astype(int)
    flags = blocked_thr.copy()
    if settings.hard_rule:
        flags |= order_sensitive_flags(X_thr, features.feature_names, rule_judges)
    score = np.where(flags, -np.inf, conf)
    res: ThresholdResult = select_threshold(
        score,
        correct,
        alpha=alpha,
        delta=delta,
        n_min=n_min,
        min_accept=settings.min_accept,
        starts=settings.starts,
        grid=settings.grid,
        # Label-free P(agree) estimates pick where the sequence starts (power_start); a vote
        # score is no probability, so it keeps the fixed default start.
        expected=None if method == "vote" else conf,
    )
    return GateModel(
        calibrator=cal,
        threshold=res.threshold,
        open=res.open,
        reason=res.reason,
        guaranteed_agreement=res.agreement_lower_bound,
        expected_coverage=res.expected_coverage,
        **common,
        n_threshold_labels=res.n_used,
        cal_confidence=np.asarray(score, dtype=float),
        cal_correct=correct,
        cal_side=np.asarray(side, dtype=object),
        curve=res.curve,
    )


def _closed_gate(features: FeatureSet, reason: str, common: dict[str, Any]) -> GateModel:
    return GateModel(
        calibrator=_placeholder(features),
        threshold=None,
        open=False,
        reason=reason,
        guaranteed_agreement=None,
        expected_coverage=0.0,
        **common,
    )


def _fit_and_score(
    features: FeatureSet, X: NDArray[Any], y: NDArray[Any], settings: GateSettings
) -> tuple[PairCalibrator, NDArray[Any], NDArray[Any], NDArray[Any] | slice]:
    """Fit the calibrator on the labelled rows ``X``, ``y`` and score the rows the threshold is chosen on.

    Returns the calibrator, the predicted side and confidence of each threshold row, and which
    rows those are: in split mode the ones the calibrator was not fitted on; otherwise all of
    them, scored out of fold (crossfit, or a vote score: it needs no labels).
    """
    if settings.mode == "split" and settings.method != "vote":
        rng = np.random.default_rng(settings.random_state)
        perm = rng.permutation(len(y))
        n_fit = int(round(settings.split_fraction * len(y)))
        fit_idx, thr_idx = perm[:n_fit], perm[n_fit:]
        cal = calibrator_for(features, settings).fit(X[fit_idx], y[fit_idx])
        return cal, cal.predict_side(X[thr_idx]), cal.confidence(X[thr_idx]), thr_idx
    cal = calibrator_for(features, settings).fit(X, y)
    return cal, cal.oof_side_, cal.oof_confidence_, slice(None)


def _aligned_flags(
    features: FeatureSet, flags: pd.Series | Sequence[bool] | NDArray[Any] | None
) -> NDArray[Any]:
    n = features.X.shape[0]
    if flags is None:
        return np.zeros(n, dtype=bool)
    if isinstance(flags, pd.Series):
        return np.asarray(flags.reindex(features.pair_ids).fillna(False).to_numpy(dtype=bool))
    arr = np.asarray(flags, dtype=bool)
    if arr.shape[0] != n:
        raise ValueError(f"never_accept has {arr.shape[0]} entries for {n} pairs; pass a Series by pair_id")
    return arr


def _placeholder(features: FeatureSet) -> PairCalibrator:
    """An unfitted-but-serializable calibrator for a closed gate (predicts nothing useful)."""
    cal = PairCalibrator(signed=features.signed, method="vote", feature_names=features.feature_names)
    cal.signed_mask_ = np.asarray(features.signed, dtype=bool)
    cal.n_features_in_ = len(features.feature_names)
    cal.params_ = {"method": "vote", "vote_column": features.feature_names.index("panel|net_strength")}
    return cal


# A gold set at least this one-sided, beyond what a fair coin gives (binomial test at
# ONE_SIDED_P), draws a warning: it says nothing about the pairs shown the other way round.
ONE_SIDED_SHARE = 0.8
ONE_SIDED_P = 0.01


def one_sided_gold(y: pd.Series | Sequence[Any] | NDArray[Any]) -> str | None:
    """A warning when the gold labels' preferences are (almost) all on one side, else None.

    The side always comes from the judges (:mod:`calibration.calibrator`), so such a set still
    calibrates; but if the preferred response is always shown as A (the HH-RLHF convention),
    a judge that simply prefers A looks perfect on it and nothing measures the pairs shown
    the other way. Ties are left out; the share is tested against a fair coin.

    >>> one_sided_gold(["A"] * 40 + ["tie"] * 3)  # doctest: +ELLIPSIS
    'gold labels are one-sided: 40 of 40 preferences (100%) say A (binomial test p=1.8e-12); ...
    >>> one_sided_gold(["A"] * 9 + ["B"] * 6) is None
    True
    """
    from scipy.stats import binomtest  # scipy.stats is slow to import; routing never needs it

    labels = [str(v) for v in (y.tolist() if isinstance(y, pd.Series | np.ndarray) else y)]
    n_a, n_b = labels.count("A"), labels.count("B")
    n, top = n_a + n_b, max(n_a, n_b)
    if n == 0 or top / n < ONE_SIDED_SHARE:
        return None
    p = binomtest(top, n, 0.5).pvalue
    if p >= ONE_SIDED_P:
        return None
    side = "A" if n_a >= n_b else "B"
    return (
        f"gold labels are one-sided: {top} of {n} preferences ({top / n:.0%}) say {side} (binomial test "
        f"p={p:.1e}); the predicted side still comes from the judges, but a judge that favours the "
        f"response shown as {side} cannot be told apart from a good one on this set: randomise which "
        "response is shown as A when you build pairs"
    )
