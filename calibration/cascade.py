"""Cheap-to-strong judge cascade with the same agreement guarantee as the single gate.

Stages are lists of judges ordered by cost. A pair is judged by stage 0 (both orders); if
the stage-0 calibrated confidence clears the threshold it is auto-accepted, otherwise the
next stage's judges are called and the pair is re-scored with a calibrator that sees the
verdicts of all stages so far; after the last stage it goes to human review. Each stage k
has its own :class:`~calibration.calibrator.PairCalibrator`, fitted (cross-fitted) on the
features of stages <= k for all calibration pairs.

Why the guarantee still holds: for a threshold lambda, the whole cascade is ONE selective
labeller -- for every pair, which stage (if any) accepts it and with which label is a fixed
function of its verdicts and the fitted calibrators. Its error rate among accepted pairs,
R(lambda), is what we bound: for each candidate lambda (most to least strict) we replay
the cascade on the calibration pairs, count disagreements among the pairs it would accept
and test with the Clopper--Pearson bound, in fixed sequence (:mod:`calibration.threshold`).
No union bound over stages is needed because a single parameter is tested; the accepted
sets need not be nested for fixed-sequence testing to be valid. Using one lambda for all
stages is natural because every stage outputs a calibrated P(human agrees). The
assumptions are those of the single gate (exchangeability, labels a random sample, score
functions fixed independently of the threshold labels -- approximate under cross-fitting),
plus: the calibration pairs must have verdicts from EVERY stage, so the replay can see what
later stages would have said.

``hard_rule=True`` never accepts an order-sensitive pair
(:func:`~calibration.features.order_sensitive_flags`): when the panel so far reverses with the
order shown, the pair goes to the next stage (more judges may outvote the reversal) and to
review after the last; when one of ``hard_rule_judges`` flips it goes to review at once
(later judges cannot undo that). ``never_accept`` passes the service's own per-stage hard
flags (judge failed, safety, both-bad, panel reversal...): a table indexed by pair with one
boolean column per stage, True where the verdicts of stages <= k carry a flag; ``final_flags``
(same shape; default: every flag) marks the ones that also end the cascade, exactly as the
worker does, so the guarantee covers what it accepts.
``review_below`` optionally gives up early: a pair whose confidence at a non-final stage is
below it goes to review without calling further judges (fewer calls, fewer acceptances;
part of the replayed rule, so the guarantee is unaffected).

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(3)
>>> rows, gold = [], {}
>>> for i in range(400):
...     truth = "A" if rng.uniform() < 0.5 else "B"
...     gold[i] = truth
...     for judge, acc in [("cheap", 0.8), ("strong", 0.95)]:
...         for order in ("ab", "ba"):
...             ok = rng.uniform() < acc
...             rows.append((i, judge, order, truth if ok else {"A": "B", "B": "A"}[truth]))
>>> df = pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict"])
>>> settings = GateSettings(alpha=0.1, delta=0.1)
>>> model = fit_cascade(df, pd.Series(gold), [["cheap"], ["strong"]], settings)
>>> model.open, model.guaranteed_agreement >= 0.9, model.expected_calls_per_pair < 4
(True, True, True)
>>> out = model.decide_table(df)
>>> sorted(set(out["decision"])) <= ["accept", "review"], float(out["calls"].max())
(True, 4.0)
>>> from calibration.features import build_features
>>> X0 = build_features(df, judges=model.stage_judges(0)).X
>>> sorted(set(cascade_decide(model, 0, X0))) <= ["accept", "escalate", "review"]
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from calibration.calibrator import PairCalibrator
from calibration.features import (
    FeatureSet,
    build_features,
    calls_per_pair,
    judge_flip_flags,
    order_sensitive_flags,
)
from calibration.gate import calibrator_for, jsonable, labels_for
from calibration.metrics import clopper_pearson_upper
from calibration.settings import GateSettings
from calibration.threshold import default_min_accept

__all__ = ["CascadeModel", "fit_cascade", "cascade_decide"]

FORMAT_VERSION = 1


@dataclass
class CascadeModel:
    """A fitted cascade. ``threshold`` is the shared lambda (None when closed).

    ``expected_calls_per_pair``: judge calls (one judge, one order) per calibration pair when
    run through the cascade at the chosen threshold; ``stage_accept_rates``: share of
    calibration pairs accepted at each stage.
    """

    stages: list[list[str]]
    calibrators: list[PairCalibrator]
    feature_names: list[list[str]]
    threshold: float | None
    open: bool
    reason: str
    guaranteed_agreement: float | None
    expected_coverage: float
    expected_calls_per_pair: float
    n_labels_used: int
    alpha: float
    delta: float
    hard_rule: bool = False
    hard_rule_judges: list[str] | None = None
    review_below: float | None = None
    stage_accept_rates: list[float] = field(default_factory=list)
    curve: dict[str, list[Any]] = field(default_factory=dict)
    # Out-of-sample confidence and correctness of each calibration pair at the stage that
    # decided it (the last stage when the gate is closed): for the report's reliability plot.
    cal_confidence: NDArray[Any] = field(default_factory=lambda: np.zeros(0))
    cal_correct: NDArray[Any] = field(default_factory=lambda: np.zeros(0))

    @property
    def judges(self) -> list[str]:
        """Every judge of the panel, cheapest stage first."""
        return [j for s in self.stages for j in s]

    def stage_judges(self, stage_index: int) -> list[str]:
        """Judges whose verdicts the stage-k calibrator reads (stages 0..k)."""
        return [j for s in self.stages[: stage_index + 1] for j in s]

    def accepts(self, confidence: float) -> bool:
        return bool(self.open and self.threshold is not None and confidence >= self.threshold)

    def confidence(self, stage_index: int, X: NDArray[Any]) -> NDArray[Any]:
        return self.calibrators[stage_index].confidence(X)

    def predict_side(self, stage_index: int, X: NDArray[Any]) -> NDArray[Any]:
        return self.calibrators[stage_index].predict_side(X)

    def decide(self, stage_index: int, X: NDArray[Any]) -> NDArray[Any]:
        """ "accept" / "escalate" / "review" per pair, given features of stages <= stage_index."""
        X = np.asarray(X, dtype=float)
        names = self.feature_names[stage_index]
        conf = self.confidence(stage_index, X)
        last = stage_index == len(self.stages) - 1
        out = np.full(len(X), "review" if last else "escalate", dtype=object)
        if not self.open or self.threshold is None:
            # Nothing can be accepted; calling more judges would only cost money.
            out[:] = "review"
            return out
        if self.review_below is not None and not last:
            out[conf < self.review_below] = "review"
        out[conf >= self.threshold] = "accept"
        if self.hard_rule:
            out[order_sensitive_flags(X, names)] = "review" if last else "escalate"
            out[judge_flip_flags(X, names, self.hard_rule_judges or ())] = "review"
        return out

    def decide_table(
        self, judgments: pd.DataFrame, pair_ids: Sequence[Any] | NDArray[Any] | None = None
    ) -> pd.DataFrame:
        """Replay the cascade on recorded judgments (which must hold every stage's verdicts).

        Returns one row per pair: ``decision`` ("accept"/"review"), ``stage`` (where decided),
        ``label`` (predicted side at that stage), ``confidence``, ``calls`` (judge calls spent).
        """
        if pair_ids is None:
            pair_ids = pd.unique(judgments["pair_id"])
        pair_ids = np.asarray(pair_ids)
        sub = judgments[judgments["pair_id"].isin(pair_ids)]
        n = len(pair_ids)
        decision = np.full(n, "review", dtype=object)
        stage = np.full(n, len(self.stages) - 1)
        label = np.full(n, None, dtype=object)
        conf = np.full(n, np.nan)
        calls = np.zeros(n)
        pending = np.ones(n, dtype=bool)
        for k, judges in enumerate(self.stages):
            if not pending.any():
                break
            stage_calls = calls_per_pair(sub, judges=judges).reindex(pair_ids, fill_value=0).to_numpy()
            calls[pending] += stage_calls[pending]
            fs = build_features(sub, judges=self.stage_judges(k))
            X = _rows_for(fs.pair_ids, fs.X, pair_ids)
            d = self.decide(k, X)
            label[pending] = self.predict_side(k, X)[pending]
            conf[pending] = self.confidence(k, X)[pending]
            done = pending & (d != "escalate")
            decision[done] = d[done]
            stage[done] = k
            pending &= ~done
        return pd.DataFrame(
            {
                "pair_id": pair_ids,
                "decision": decision,
                "stage": stage,
                "label": label,
                "confidence": conf,
                "calls": calls,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        stored: dict[str, Any] = jsonable(
            {
                "format_version": FORMAT_VERSION,
                "stages": self.stages,
                "calibrators": [c.to_dict() for c in self.calibrators],
                "feature_names": self.feature_names,
                "threshold": self.threshold,
                "open": self.open,
                "reason": self.reason,
                "guaranteed_agreement": self.guaranteed_agreement,
                "expected_coverage": self.expected_coverage,
                "expected_calls_per_pair": self.expected_calls_per_pair,
                "n_labels_used": self.n_labels_used,
                "alpha": self.alpha,
                "delta": self.delta,
                "hard_rule": self.hard_rule,
                "hard_rule_judges": self.hard_rule_judges,
                "review_below": self.review_below,
                "stage_accept_rates": self.stage_accept_rates,
                "curve": self.curve,
                "cal_confidence": self.cal_confidence,
                "cal_correct": self.cal_correct,
            }
        )
        return stored

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CascadeModel:
        return cls(
            stages=[list(s) for s in d["stages"]],
            calibrators=[PairCalibrator.from_dict(c) for c in d["calibrators"]],
            feature_names=[list(f) for f in d["feature_names"]],
            threshold=d["threshold"],
            open=bool(d["open"]),
            reason=d["reason"],
            guaranteed_agreement=d["guaranteed_agreement"],
            expected_coverage=float(d["expected_coverage"]),
            expected_calls_per_pair=float(d["expected_calls_per_pair"]),
            n_labels_used=int(d["n_labels_used"]),
            alpha=float(d["alpha"]),
            delta=float(d["delta"]),
            hard_rule=bool(d.get("hard_rule", False)),
            hard_rule_judges=d.get("hard_rule_judges"),
            review_below=d.get("review_below"),
            stage_accept_rates=list(d.get("stage_accept_rates", [])),
            curve=d.get("curve", {}),
            cal_confidence=np.asarray(d.get("cal_confidence", []), dtype=float),
            cal_correct=np.asarray(d.get("cal_correct", []), dtype=float),
        )

    @property
    def n_labels(self) -> int:
        return self.n_labels_used


def cascade_decide(model: CascadeModel, stage_index: int, X: NDArray[Any]) -> NDArray[Any]:
    """Module-level form of :meth:`CascadeModel.decide`."""
    return model.decide(stage_index, X)


def _rows_for(have_ids: NDArray[Any], X: NDArray[Any], want_ids: NDArray[Any]) -> NDArray[Any]:
    """Rows of X for want_ids (zeros for a pair with no verdict at all from these judges)."""
    pos = pd.Index(have_ids).get_indexer(want_ids)
    out = np.zeros((len(want_ids), X.shape[1]))
    ok = pos >= 0
    # A pair with no verdict from these judges keeps all-zero features: "nothing present".
    out[ok] = X[pos[ok]]
    return out


def fit_cascade(
    judgments: pd.DataFrame,
    y: pd.Series,
    stages: Sequence[Sequence[str]],
    settings: GateSettings = GateSettings(),
    never_accept: pd.DataFrame | None = None,
    final_flags: pd.DataFrame | None = None,
) -> CascadeModel:
    """Fit per-stage calibrators and the shared threshold on pairs with a usable label in ``y``.

    ``judgments``: long table with every stage's verdicts for the labelled pairs (extra
    pairs are ignored); ``y``: Series of "A"/"B"/"tie" by pair_id; ``stages``: judge lists,
    cheapest first; ``settings``: as for the single gate (``review_below`` is the cascade's
    own; ``mode`` must be "crossfit"); ``never_accept`` / ``final_flags``: the service's
    per-stage hard flags (module docstring). See the module docstring for the procedure and
    its guarantee.
    """
    if settings.mode != "crossfit":
        raise ValueError("the cascade supports mode='crossfit' only")
    alpha, delta, n_min, review_below = settings.alpha, settings.delta, settings.n_min, settings.review_below
    stages = _judge_lists(stages)
    rule_judges = None if settings.hard_rule_judges is None else list(settings.hard_rule_judges)
    scores = _score_stages(judgments, y, stages, settings, rule_judges, never_accept, final_flags)
    n, K = scores.conf.shape
    base: dict[str, Any] = dict(
        stages=stages,
        feature_names=[f.feature_names for f in scores.features],
        n_labels_used=n,
        alpha=alpha,
        delta=delta,
        hard_rule=settings.hard_rule,
        hard_rule_judges=rule_judges,
        review_below=review_below,
    )
    if n < n_min or not all(hasattr(c, "params_") for c in scores.calibrators):
        return _too_few_labels(scores, n_min, base)

    stop, eligible = _stops_and_eligible(scores, review_below)
    m = default_min_accept(alpha, delta) if settings.min_accept is None else int(settings.min_accept)
    chosen, curve = _scan_thresholds(scores.conf, scores.correct, eligible, alpha, delta, m)
    end, rates = _cascade_ends(chosen, scores.conf, eligible, stop)
    calls = (scores.stage_calls * (np.arange(K)[None, :] <= end[:, None])).sum(axis=1)
    if chosen is None:
        reason = (
            f"closed: no cascade threshold reaches agreement lower bound {1 - alpha:.3f} (min_accept={m})"
        )
        return CascadeModel(
            calibrators=scores.calibrators,
            threshold=None,
            open=False,
            reason=reason,
            guaranteed_agreement=None,
            expected_coverage=0.0,
            expected_calls_per_pair=float(calls.mean()),
            stage_accept_rates=[0.0] * K,
            curve=curve,
            cal_confidence=scores.conf[:, -1],
            cal_correct=scores.correct[:, -1],
            **base,
        )
    lam, n_acc, k_err, ub = chosen
    reason = (
        f"open: {n_acc}/{n} calibration pairs accepted across {K} stages, agreement lower bound "
        f"{1 - ub:.3f} >= {1 - alpha:.3f} at {1 - delta:.0%} confidence"
    )
    return CascadeModel(
        calibrators=scores.calibrators,
        threshold=lam,
        open=True,
        reason=reason,
        guaranteed_agreement=1 - ub,
        expected_coverage=n_acc / n,
        cal_confidence=scores.conf[np.arange(n), end],
        cal_correct=scores.correct[np.arange(n), end],
        expected_calls_per_pair=float(calls.mean()),
        stage_accept_rates=rates,
        curve=curve,
        **base,
    )


def _judge_lists(stages: Sequence[Sequence[str]]) -> list[list[str]]:
    judge_lists = [list(map(str, s)) for s in stages]
    if not judge_lists or any(not s for s in judge_lists):
        raise ValueError("stages must be non-empty lists of judges")
    return judge_lists


@dataclass
class _StageScores:
    """The labelled calibration pairs as every stage sees them: one row per pair, one column per stage.

    ``conf`` / ``correct``: out-of-fold confidence of the stage's calibrator and whether its
    side matches the human label (zeros when the stage could not be fitted); ``flag``: the pair
    may not be accepted at that stage; ``final``: ... and the cascade ends there;
    ``stage_calls``: judge calls the stage spends on the pair.
    """

    features: list[FeatureSet]
    calibrators: list[PairCalibrator]
    conf: NDArray[Any]
    correct: NDArray[Any]
    flag: NDArray[Any]
    final: NDArray[Any]
    stage_calls: NDArray[Any]


class _Passed(NamedTuple):
    """The last threshold that passed the fixed sequence, and its evidence."""

    threshold: float
    n_accepted: int
    n_disagree: int
    upper_bound: float


def _score_stages(
    judgments: pd.DataFrame,
    y: pd.Series,
    stages: Sequence[Sequence[str]],
    settings: GateSettings,
    rule_judges: list[str] | None,
    never_accept: pd.DataFrame | None,
    final_flags: pd.DataFrame | None,
) -> _StageScores:
    """Cross-fit each stage's calibrator on the features of stages <= k; collect its flags and calls."""
    ids = [i for i, v in y.items() if isinstance(v, str) and v in ("A", "B", "tie")]
    sub = judgments[judgments["pair_id"].isin(ids)]
    K = len(stages)
    fs_list = [build_features(sub, judges=[j for s in stages[: k + 1] for j in s]) for k in range(K)]
    pair_ids = np.asarray(fs_list[-1].pair_ids)
    labels = labels_for(fs_list[-1], y).astype(object)
    n = len(pair_ids)
    scores = _StageScores(
        features=fs_list,
        calibrators=[],
        conf=np.zeros((n, K)),
        correct=np.zeros((n, K)),
        flag=np.zeros((n, K), dtype=bool),
        final=np.zeros((n, K), dtype=bool),
        stage_calls=np.zeros((n, K)),
    )
    for k, fs in enumerate(fs_list):
        X = _rows_for(fs.pair_ids, fs.X, pair_ids)
        cal = calibrator_for(fs, settings)
        if n >= max(settings.n_min, 2) and (labels != "tie").any():
            cal.fit(X, labels)
            scores.conf[:, k], scores.correct[:, k] = cal.oof_confidence_, cal.oof_side_ == labels
        scores.calibrators.append(cal)
        if settings.hard_rule:
            scores.flag[:, k] = order_sensitive_flags(X, fs.feature_names, rule_judges)
            scores.final[:, k] = judge_flip_flags(X, fs.feature_names, rule_judges or ())
        if never_accept is not None:
            column = _stage_column(never_accept, pair_ids, k)
            scores.flag[:, k] |= column
            scores.final[:, k] |= column if final_flags is None else _stage_column(final_flags, pair_ids, k)
        scores.stage_calls[:, k] = (
            calls_per_pair(sub, judges=stages[k]).reindex(pair_ids, fill_value=0).to_numpy()
        )
    return scores


def _too_few_labels(scores: _StageScores, n_min: int, base: dict[str, Any]) -> CascadeModel:
    """A closed cascade; stages that could not be fitted get a serializable placeholder."""
    n = scores.conf.shape[0]
    for k, c in enumerate(scores.calibrators):
        if not hasattr(c, "params_"):
            _make_placeholder(c, scores.features[k])
    return CascadeModel(
        calibrators=scores.calibrators,
        threshold=None,
        open=False,
        reason=f"too few usable labels: {n} < n_min={n_min}",
        guaranteed_agreement=None,
        expected_coverage=0.0,
        expected_calls_per_pair=float(scores.stage_calls[:, 0].mean()) if n else 0.0,
        **base,
    )


def _stops_and_eligible(
    scores: _StageScores, review_below: float | None
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Which stages a pair may be accepted at, independent of lambda: stops (hard flag, give-up
    rule) end the cascade at that stage; later stages are never reached."""
    n, K = scores.conf.shape
    stop = scores.final.copy()
    if review_below is not None:
        stop[:, :-1] |= scores.conf[:, :-1] < review_below
    reached = np.ones((n, K), dtype=bool)
    reached[:, 1:] = np.cumprod(~stop[:, :-1], axis=1).astype(bool)
    return stop, reached & ~scores.flag


def _scan_thresholds(
    conf: NDArray[Any],
    correct: NDArray[Any],
    eligible: NDArray[Any],
    alpha: float,
    delta: float,
    min_accept: int,
) -> tuple[_Passed | None, dict[str, list[Any]]]:
    """Fixed-sequence test of each candidate lambda, most strict first, on the replayed cascade.

    A pair counts at the first stage that accepts it. Returns the last lambda that passed
    (None when none did) and the curve of every candidate looked at.
    """
    n = conf.shape[0]
    cands = np.unique(conf[eligible])[::-1]
    rows = []
    chosen = None
    for lam in cands:
        acc_k = eligible & (conf >= lam)
        any_acc = acc_k.any(axis=1)
        first = np.argmax(acc_k, axis=1)
        n_acc = int(any_acc.sum())
        k_err = int((1 - correct[np.arange(n), first])[any_acc].sum())
        ub = float(clopper_pearson_upper(k_err, n_acc, delta))
        tested = n_acc >= min_accept
        rows.append((float(lam), n_acc, k_err, ub, tested))
        if not tested:
            continue
        if ub <= alpha:
            chosen = _Passed(float(lam), n_acc, k_err, ub)
        else:
            break
    curve: dict[str, list[Any]] = {
        "threshold": [r[0] for r in rows],
        "n_accepted": [r[1] for r in rows],
        "agreement": [1 - r[2] / r[1] if r[1] else None for r in rows],
        "agreement_lower_bound": [1 - r[3] for r in rows],
        "tested": [r[4] for r in rows],
    }
    return chosen, curve


def _cascade_ends(
    chosen: _Passed | None, conf: NDArray[Any], eligible: NDArray[Any], stop: NDArray[Any]
) -> tuple[NDArray[Any], list[float]]:
    """Stage at which each calibration pair leaves the cascade at the chosen threshold, and the
    share of pairs accepted at each stage. A closed cascade ends every pair at stage 0: it
    sends everything to review without calling further judges."""
    n, K = conf.shape
    lam = chosen.threshold if chosen is not None else np.inf
    acc_k = eligible & (conf >= lam)
    any_acc = acc_k.any(axis=1)
    first_acc = np.where(any_acc, np.argmax(acc_k, axis=1), K)
    first_stop = np.where(stop.any(axis=1), np.argmax(stop, axis=1), K - 1)
    end = np.minimum(first_acc, first_stop) if chosen is not None else np.zeros(n, dtype=int)
    rates = [float(np.mean(any_acc & (first_acc == k))) for k in range(K)]
    return end, rates


def _stage_column(flags: pd.DataFrame, pair_ids: NDArray[Any], k: int) -> NDArray[Any]:
    return np.asarray(flags.reindex(pair_ids)[flags.columns[k]].fillna(False).to_numpy(bool))


def _make_placeholder(cal: PairCalibrator, fs: Any) -> None:
    cal.signed_mask_ = np.asarray(fs.signed, dtype=bool)
    cal.n_features_in_ = len(fs.feature_names)
    cal.params_ = {"method": "vote", "vote_column": fs.feature_names.index("panel|net_strength")}
