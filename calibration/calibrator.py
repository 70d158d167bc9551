"""Calibrated probability that the human label equals the panel's predicted label.

:class:`PairCalibrator` works on the features of :mod:`calibration.features`:

* *Side* -- the panel's strict majority (:func:`panel_sides`, the judges' own answer) where
  it has one: gold labels calibrate how often humans agree with the judges, they never pick
  the side. Only a split panel is decided by the *side model*: direction is a logistic
  regression WITHOUT intercept on the signed features only, so it is exactly antisymmetric:
  swapping A and B flips the prediction (which response is called "A" is arbitrary). It is
  fitted on every labelled pair and its mirror image, so a one-sided gold set (all "A")
  still teaches it how far to trust each judge. A separate logistic model on unsigned
  features gives P(tie) when the gold labels contain at least 5 ties; without ties in the
  training labels the model predicts "tie" only where nothing points either way.
* ``method="side"`` (default): confidence = the side model's probability of the predicted
  label (below 0.5 where the learned weights side against the panel's majority). With
  verdict strengths as features this is a weighted vote in log-odds: every agreeing verdict
  adds its learned weight, so more agreeing judges mean more confidence, a missing judge adds
  nothing and a dissenting one subtracts. On LLMBar this ranked the top pairs best (what the
  guaranteed threshold lives on).
* ``method="two_stage"``: a second logistic model of P(human == predicted) on the features
  re-expressed relative to the predicted side, the unsigned features and the side model's
  log-odds, trained on out-of-fold side predictions. More flexible, better calibrated in the
  bulk, but on LLMBar it ranked the top pairs worse (less coverage at the same guarantee).
* ``method="vote"``: label-free -- side = the panel's strict majority (a split panel: the
  sign of its net strength), score = the net strength toward that side (a ranking, not a
  probability). With it every label can go to threshold selection and the guarantee is exact.

``monotone=True`` (default) constrains the direction weights to be >= 0: a verdict for A
never lowers P(A). Unconstrained fits put negative weights on collinear copies of the same
vote and scramble the ranking at the top, which is all the guaranteed threshold uses.

``fit`` is cross-fitted: ``oof_confidence_`` / ``oof_side_`` are out-of-fold scores for the
training pairs (what threshold selection needs) and the final model is refitted on all pairs.
With ``pool_identical=True`` (default) pairs with identical features share the mean of their
out-of-fold scores, as they would under one model: otherwise a block of identical pairs
(say, every judge agrees in both orders) is split into per-fold groups whose order is noise,
and the fixed-sequence search can stop at the first small unlucky group.
All learned state is plain numpy/JSON (``params_``), so :meth:`to_dict` / :meth:`from_dict`
round-trip through JSON without pickle.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = 400
>>> truth = rng.choice([1.0, -1.0], size=n)
>>> votes = np.sign(truth[:, None] * (rng.uniform(size=(n, 3)) < [0.9, 0.75, 0.6]) - 0.5 * truth[:, None])
>>> X = np.c_[votes, votes.sum(1), np.abs(votes.sum(1))]
>>> y = np.where(truth > 0, "A", "B")
>>> cal = PairCalibrator(signed=[True, True, True, True, False], random_state=0).fit(X, y)
>>> (cal.predict_side(X) == y).mean() > 0.85, cal.oof_confidence_.shape
(np.True_, (400,))
>>> c = cal.confidence(X)
>>> bool(c.min() >= 0.0 and c.max() <= 1.0)
True
>>> again = PairCalibrator.from_dict(cal.to_dict())
>>> bool(np.allclose(again.confidence(X), c))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold

from calibration.threads import single_threaded_blas

__all__ = ["PairCalibrator", "panel_sides"]

# The side model's probability columns (judge.verdicts.SIDES in model order): an exact tie in
# probability goes to the earlier column, so this order is part of the fitted behaviour.
_COLUMNS: tuple[str, str, str] = ("A", "B", "tie")
_EPS = 1e-6


def _sigmoid(z: NDArray[Any]) -> NDArray[Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))


def _logit(p: NDArray[Any]) -> NDArray[Any]:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def _fit_logistic(
    Z: NDArray[Any],
    t: NDArray[Any],
    C: float,
    intercept: bool,
    center: bool,
    nonneg: bool = False,
    noisy: bool = False,
) -> dict[str, Any]:
    """Standardize, fit an L2 logistic regression, return plain parameters.

    ``center=False`` scales without centering: needed for the direction model, where centering
    would smuggle in an A/B asymmetry through the means. ``nonneg=True`` constrains the
    coefficients to be >= 0; ``noisy=True`` also learns a label-noise rate (:func:`_noisy_logistic`,
    stored as ``noise``). Neither supports an intercept.
    """
    mu = Z.mean(axis=0) if center else np.zeros(Z.shape[1])
    sd = Z.std(axis=0)
    if not center:
        sd = np.sqrt((Z**2).mean(axis=0))
    sd = np.where(sd > 1e-9, sd, 1.0)
    if np.unique(t).size < 2:
        # One class only: a constant model (the rate, clipped off 0/1 so log-odds stay finite).
        rate = float(np.clip(t.mean(), 0.01, 0.99)) if t.size else 0.5
        return {
            "mu": mu.tolist(),
            "sd": sd.tolist(),
            "coef": [0.0] * Z.shape[1],
            "intercept": float(_logit(np.array(rate))) if intercept else 0.0,
        }
    if noisy:
        coef, noise = _noisy_logistic((Z - mu) / sd, t, C, nonneg)
        return {"mu": mu.tolist(), "sd": sd.tolist(), "coef": coef.tolist(), "intercept": 0.0, "noise": noise}
    if nonneg:
        coef = _nonneg_logistic((Z - mu) / sd, t, C)
        return {"mu": mu.tolist(), "sd": sd.tolist(), "coef": coef.tolist(), "intercept": 0.0}
    # newton-cholesky: exact and fast for few features; lbfgs crawls on these collinear aggregates.
    lr = LogisticRegression(C=C, fit_intercept=intercept, solver="newton-cholesky", max_iter=200)
    lr.fit((Z - mu) / sd, t)
    return {
        "mu": mu.tolist(),
        "sd": sd.tolist(),
        "coef": lr.coef_[0].tolist(),
        "intercept": float(lr.intercept_[0]) if intercept else 0.0,
    }


# The most label noise the side model may learn: beyond it a label says little about anything.
_MAX_NOISE = 0.45


def _noisy_logistic(Z: NDArray[Any], t: NDArray[Any], C: float, nonneg: bool) -> tuple[NDArray[Any], float]:
    """Logistic regression without intercept under label noise: P(t=1) = e + (1 - 2e) sigmoid(Z w),
    the noise rate e in [0, _MAX_NOISE] learned with w (w >= 0 when ``nonneg``), L2 on w only
    (sklearn's scaling: 0.5 |w|^2 + C * sum of log-losses), by L-BFGS-B with bounds.

    Why: human labels disagree with even a unanimous, sure panel at some rate (crowd noise,
    genuinely close pairs), so P(human agrees) levels off below 1. A plain logistic model must
    keep its weights small to fit that ceiling, which flattens the ranking among sure pairs;
    with e learned, the weights rank and e carries the ceiling. The model stays antisymmetric
    (P(t=1 | -x) = 1 - P(t=1 | x)).
    """

    def obj(theta: NDArray[Any]) -> tuple[float, NDArray[Any]]:
        w, e = theta[:-1], theta[-1]
        m = Z @ w
        s = _sigmoid(m)
        q = np.clip(e + (1 - 2 * e) * s, 1e-12, 1 - 1e-12)
        r = t / q - (1 - t) / (1 - q)  # d loglik / dq
        loss = -(t * np.log(q) + (1 - t) * np.log(1 - q)).sum()
        gw = -(Z * (r * (1 - 2 * e) * s * (1 - s))[:, None]).sum(axis=0)
        ge = -(r * (1 - 2 * s)).sum()
        return 0.5 * w @ w + C * loss, np.r_[w + C * gw, C * ge]

    d = Z.shape[1]
    bounds = [(0.0 if nonneg else None, None)] * d + [(0.0, _MAX_NOISE)]
    res = minimize(obj, np.r_[np.zeros(d), 0.05], jac=True, method="L-BFGS-B", bounds=bounds)
    return np.asarray(res.x[:-1], dtype=float), float(res.x[-1])


def _nonneg_logistic(Z: NDArray[Any], t: NDArray[Any], C: float) -> NDArray[Any]:
    """L2 logistic regression without intercept and with coefficients >= 0 (sklearn's objective:
    0.5 |w|^2 + C * sum of log-losses), by L-BFGS-B with bounds."""
    sgn = 2.0 * t - 1.0

    def obj(w: NDArray[Any]) -> tuple[float, NDArray[Any]]:
        m = sgn * (Z @ w)
        loss = np.logaddexp(0.0, -m).sum()
        grad = -(Z * (sgn * _sigmoid(-m))[:, None]).sum(axis=0)
        return 0.5 * w @ w + C * loss, w + C * grad

    res = minimize(obj, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * Z.shape[1])
    return np.asarray(res.x, dtype=float)


def _apply_logistic(p: dict[str, Any], Z: NDArray[Any]) -> NDArray[Any]:
    standardized = (Z - np.asarray(p["mu"])) / np.asarray(p["sd"])
    return np.asarray(standardized @ np.asarray(p["coef"]) + p["intercept"])


class PairCalibrator:
    """Side prediction and P(human agrees) per pair; sklearn-shaped (fit -> self, state in ``*_``).

    Parameters: ``signed`` -- boolean mask of features that flip sign under swapping A/B
    (``FeatureSet.signed``); ``method`` -- "side", "two_stage" (learned) or "vote" (label-free);
    ``vote_column`` -- index of the panel net-strength feature for "vote" (default: the
    first signed column named ``panel|net_strength`` if ``feature_names`` is given);
    ``C_side`` / ``C`` -- inverse L2 strength of the side / two-stage confidence model;
    ``n_splits`` -- folds for cross-fitting; ``monotone`` / ``pool_identical`` -- see above.
    """

    def __init__(
        self,
        signed: Sequence[bool] | NDArray[Any] | None = None,
        method: Literal["side", "two_stage", "vote"] = "side",
        feature_names: Sequence[str] | None = None,
        vote_column: int | None = None,
        C: float = 1.0,
        C_side: float = 1.0,
        n_splits: int = 5,
        random_state: int | None = 0,
        monotone: bool = True,
        pool_identical: bool = True,
        confidence_evidence: bool = True,
        human_noise: bool = True,
    ) -> None:
        self.signed = signed
        self.method = method
        self.feature_names = feature_names
        self.vote_column = vote_column
        self.C = C
        self.C_side = C_side
        self.n_splits = n_splits
        self.random_state = random_state
        self.monotone = monotone
        self.pool_identical = pool_identical
        self.confidence_evidence = confidence_evidence
        self.human_noise = human_noise

    # ------------------------------------------------------------------ fitting
    def _signed_mask(self, n_features: int) -> NDArray[Any]:
        if self.signed is None:
            if self.feature_names is not None:
                return np.array([_is_signed_name(f) for f in self.feature_names], dtype=bool)
            raise ValueError("PairCalibrator needs `signed` (FeatureSet.signed) or `feature_names`")
        mask = np.asarray(self.signed, dtype=bool)
        if mask.size != n_features:
            raise ValueError(f"signed mask has {mask.size} entries for {n_features} features")
        return mask

    def _vote_col(self, mask: NDArray[Any]) -> int:
        if self.vote_column is not None:
            return int(self.vote_column)
        if self.feature_names is not None and "panel|net_strength" in self.feature_names:
            return list(self.feature_names).index("panel|net_strength")
        # Without names: the sum of all signed per-order strengths is not recoverable; use the
        # last signed column, which build_features makes a panel aggregate.
        return int(np.flatnonzero(mask)[-1])

    def fit(self, X: NDArray[Any], y: Sequence[str] | NDArray[Any]) -> PairCalibrator:
        """Fit on features X (n, d) and human labels y in {"A", "B", "tie"}; also sets out-of-fold scores."""
        with single_threaded_blas():  # a dozen small L-BFGS fits: ~9x faster on one thread
            return self._fit(X, y)

    def _fit(self, X: NDArray[Any], y: Sequence[str] | NDArray[Any]) -> PairCalibrator:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=object)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows, y has {y.shape[0]}")
        bad = set(y.tolist()) - set(_COLUMNS)
        if bad:
            raise ValueError(f"labels must be in {_COLUMNS}; got {sorted(map(str, bad))}")
        mask = self._signed_mask(X.shape[1])
        self.signed_mask_ = mask
        self.n_features_in_ = X.shape[1]
        if self.method == "vote":
            self.params_ = {"method": "vote", "vote_column": self._vote_col(mask)}
            self.oof_side_ = self.predict_side(X)
            self.oof_confidence_ = self.confidence(X)
            return self
        if self.method not in ("two_stage", "side"):
            raise ValueError(f"unknown method {self.method!r}")
        # Which confidences enter as evidence is decided from the features alone (no labels), once
        # for every fold, so the out-of-fold models and the final one share their columns.
        self.evidence_columns_ = self._evidence_columns(X)
        folds = self._folds(y, self.n_splits)
        oof_side: NDArray[Any] = np.empty(len(y), dtype=object)
        oof_conf: NDArray[Any] = np.empty(len(y))
        panel = self._panel(X)
        for train, test in folds:
            p = self._fit_params(X[train], y[train])
            side, conf = _predict(p, X[test], mask, None if panel is None else panel[test])
            oof_side[test], oof_conf[test] = side, conf
        self.params_ = self._fit_params(X, y)
        if self.pool_identical:
            oof_side, oof_conf = _pool_identical(X, mask, oof_side, oof_conf)
        self.oof_side_ = oof_side
        self.oof_confidence_ = oof_conf
        return self

    def _folds(self, y: NDArray[Any], k: int) -> list[tuple[NDArray[Any], NDArray[Any]]]:
        counts = np.unique(y, return_counts=True)[1]
        k = max(2, min(k, len(y)))
        if counts.min() >= k:
            splitter: Any = StratifiedKFold(k, shuffle=True, random_state=self.random_state)
            return list(splitter.split(np.zeros(len(y)), y))
        return list(KFold(k, shuffle=True, random_state=self.random_state).split(np.zeros(len(y))))

    def _fit_side(self, X: NDArray[Any], y: NDArray[Any], mask: NDArray[Any]) -> dict[str, Any]:
        directional = y != "tie"
        signed, is_a = X[directional][:, mask], (y[directional] == "A").astype(float)
        # Every labelled pair also enters mirrored (signed features negated, A <-> B). The model
        # has no intercept and is antisymmetric, so a mirror has the same log-loss as its pair:
        # with C halved the objective, and the fit, are unchanged on any two-class gold set. A
        # one-sided gold set (every chosen response shown as A, the HH-RLHF convention) then
        # still has both classes and learns how far to trust each judge, instead of a constant
        # that names "A" for every pair whatever the judges say.
        direction = _fit_logistic(
            np.r_[signed, -signed],
            np.r_[is_a, 1.0 - is_a],
            C=self.C_side / 2.0,
            intercept=False,
            center=False,
            nonneg=self.monotone,
            noisy=self.human_noise,
        )
        tie = None
        # A tie model only when ties are frequent enough to learn anything about them.
        if (~directional).sum() >= 5 and directional.sum() >= 5:
            tie = _fit_logistic(
                _tie_features(X, mask),
                (~directional).astype(float),
                C=self.C_side,
                intercept=True,
                center=True,
            )
        return {"direction": direction, "tie": tie}

    def _evidence_columns(self, X: NDArray[Any]) -> list[int]:
        """The signed-confidence columns (``j|o|sconf``) that carry any confidence in ``X``:
        each also enters as log-odds evidence (:func:`_with_evidence`). None without
        ``confidence_evidence`` or ``feature_names``; a file without confidences gets none, so
        its fit is exactly what it was without this option."""
        if not self.confidence_evidence or self.feature_names is None:
            return []
        return [
            k
            for k, name in enumerate(self.feature_names)
            if name.endswith("|sconf") and np.any(X[:, k] != 0.0)
        ]

    def _fit_params(self, X: NDArray[Any], y: NDArray[Any]) -> dict[str, Any]:
        evidence = list(self.evidence_columns_)
        X, mask = _with_evidence(X, self.signed_mask_, evidence)
        if self.method == "side":
            return {"method": "side", "side": self._fit_side(X, y, mask), "evidence": evidence}
        # Correctness targets for the confidence model come from out-of-fold side predictions:
        # in-sample predictions would be too often right and make the confidence overconfident.
        inner_side = np.empty(len(y), dtype=object)
        inner_lo = np.empty(len(y))
        panel = self._panel(X)
        for tr, te in self._folds(y, self.n_splits):
            sp = self._fit_side(X[tr], y[tr], mask)
            inner_side[te], inner_lo[te] = _side_and_logodds(
                sp, X[te], mask, None if panel is None else panel[te]
            )
        conf_model = _fit_logistic(
            _aligned(X, mask, inner_side, inner_lo),
            (inner_side == y).astype(float),
            C=self.C,
            intercept=True,
            center=True,
        )
        return {
            "method": "two_stage",
            "side": self._fit_side(X, y, mask),
            "confidence": conf_model,
            "evidence": evidence,
        }

    # --------------------------------------------------------------- predicting
    def _check(self, X: NDArray[Any]) -> NDArray[Any]:
        if not hasattr(self, "params_"):
            raise RuntimeError("PairCalibrator is not fitted")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected (n, {self.n_features_in_}) features, got {X.shape}")
        return X

    def _panel(self, X: NDArray[Any]) -> NDArray[Any] | None:
        """The panel's strict-majority side per row (:func:`panel_sides`); None without the
        panel's vote counts among ``feature_names``."""
        return None if self.feature_names is None else panel_sides(X, self.feature_names)

    def predict_side(self, X: NDArray[Any]) -> NDArray[Any]:
        """Predicted human label per pair: "A", "B" or "tie" -- the panel's strict-majority side
        where it has one, else the side model's (a weighted vote of the judges)."""
        X = self._check(X)
        return _predict(self.params_, X, self.signed_mask_, self._panel(X))[0]

    def confidence(self, X: NDArray[Any]) -> NDArray[Any]:
        """Estimated P(human label == predict_side) per pair ("vote": a label-free score instead)."""
        X = self._check(X)
        return _predict(self.params_, X, self.signed_mask_, self._panel(X))[1]

    # ------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable state (constructor parameters + learned parameters)."""
        if not hasattr(self, "params_"):
            raise RuntimeError("PairCalibrator is not fitted")
        return {
            "method": self.method,
            "C": self.C,
            "C_side": self.C_side,
            "n_splits": self.n_splits,
            "random_state": self.random_state,
            "monotone": bool(self.monotone),
            "pool_identical": bool(self.pool_identical),
            "confidence_evidence": bool(self.confidence_evidence),
            "human_noise": bool(self.human_noise),
            "feature_names": list(self.feature_names) if self.feature_names is not None else None,
            "signed": self.signed_mask_.astype(bool).tolist(),
            "n_features_in": int(self.n_features_in_),
            "params": self.params_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairCalibrator:
        cal = cls(
            signed=d["signed"],
            method=d["method"],
            feature_names=d.get("feature_names"),
            C=d["C"],
            C_side=d.get("C_side", 1.0),
            n_splits=d["n_splits"],
            random_state=d["random_state"],
            monotone=bool(d.get("monotone", False)),
            pool_identical=bool(d.get("pool_identical", False)),
            # Stored before this option existed: fitted without evidence columns.
            confidence_evidence=bool(d.get("confidence_evidence", False)),
            human_noise=bool(d.get("human_noise", False)),
        )
        cal.signed_mask_ = np.asarray(d["signed"], dtype=bool)
        cal.n_features_in_ = int(d["n_features_in"])
        cal.params_ = d["params"]
        return cal


# A stated confidence this close to 1 counts as this sure: a judge's "1.0" is a rounded
# probability, and unbounded log-odds would let one verdict outvote the panel.
_EVIDENCE_CAP = 0.999


def _with_evidence(
    X: NDArray[Any], mask: NDArray[Any], columns: Sequence[int]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """X with one signed column appended per signed-confidence column in ``columns``: the
    verdict's sign times the log-odds of its stated confidence, logit(c) with c clipped to
    [0.5, _EVIDENCE_CAP] (0 for no confidence).

    Why: a verdict stated with confidence c that is calibrated is worth logit(c) in the panel's
    log-odds (a weighted vote, as for independent judges), which is far from linear in c: 0.6
    is worth 0.4, 0.99 is worth 4.6. With only c itself the side model's weighted vote cannot
    tell a judge that is sure from one that is fairly confident, and that is what ranks the
    top pairs, where the guaranteed threshold lives. The weight stays learned (>= 0 when
    monotone), so a miscalibrated judge's confidence is rescaled, not trusted.
    """
    if not columns:
        return X, mask
    c = X[:, list(columns)]
    strength = np.abs(c)
    log_odds = np.where(strength > 0, _logit(np.clip(strength, 0.5, _EVIDENCE_CAP)), 0.0)
    return np.c_[X, np.sign(c) * log_odds], np.r_[mask, np.ones(len(columns), dtype=bool)]


def _pool_identical(
    X: NDArray[Any], mask: NDArray[Any], side: NDArray[Any], conf: NDArray[Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Give pairs with identical features (up to an A/B mirror) one out-of-fold score: the mean.

    The deployed model scores identical pairs identically, but out-of-fold scores differ by
    which fold a pair fell in. With discrete verdicts, big blocks of identical pairs (e.g. all
    judges agree in both orders) get split into small per-fold groups, and the threshold
    search can stop at a small unlucky one. Pooling uses features only, never labels.
    The side is mirrored with the features, so it is pooled as agreement with the mirror.
    """
    s = _sign(side)
    # Canonical orientation: flip signed features so that the pair's predicted side is "A".
    canon = X.copy()
    canon[:, mask] *= np.where(s < 0, -1.0, 1.0)[:, None]
    key = np.c_[canon, s == 0]
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    sums = np.bincount(inv, weights=conf)
    counts = np.bincount(inv)
    return side, sums[inv] / counts[inv]


def panel_sides(X: NDArray[Any], feature_names: Sequence[str]) -> NDArray[Any] | None:
    """The panel's strict-majority side per row of a feature matrix: "A", "B" or "tie" when more
    valid verdicts name it than each other answer, None for a split (or no valid verdict).

    :func:`judge.verdicts.majority_side` over the panel's verdicts (every judge in every order
    counts once), read from ``panel|net_votes``, ``panel|n_valid`` and ``panel|n_ties``; None
    when those columns are missing. Routing's provisional label is the same majority.

    >>> names = ["panel|net_votes", "panel|n_valid", "panel|n_ties"]
    >>> X = np.array([[1, 3, 0], [-2, 4, 1], [0, 2, 0], [0, 3, 3], [0, 3, 1], [0, 0, 0]])
    >>> panel_sides(X, names).tolist()
    ['A', 'B', None, 'tie', None, None]
    """
    names = list(feature_names)
    if not {"panel|net_votes", "panel|n_valid", "panel|n_ties"} <= set(names):
        return None
    X = np.asarray(X, dtype=float)
    net, n_valid, ties = (X[:, names.index(f"panel|{k}")] for k in ("net_votes", "n_valid", "n_ties"))
    votes_a, votes_b = (n_valid - ties + net) / 2.0, (n_valid - ties - net) / 2.0
    out = np.full(len(X), None, dtype=object)
    out[(votes_a > votes_b) & (votes_a > ties)] = "A"
    out[(votes_b > votes_a) & (votes_b > ties)] = "B"
    out[(ties > votes_a) & (ties > votes_b)] = "tie"
    return out


def _sign(side: NDArray[Any]) -> NDArray[Any]:
    """Sides as the sign of their strength (+1 "A", -1 "B", 0 "tie"; judge.verdicts.STRENGTH), vectorised."""
    return np.where(side == "A", 1.0, np.where(side == "B", -1.0, 0.0))


def _is_signed_name(name: str) -> bool:
    return name.endswith(("|strength", "|sconf", "|mean_strength")) or name in (
        "panel|net_strength",
        "panel|mean_strength",
        "panel|net_votes",
        "panel|net_sconf",
    )


def _tie_features(X: NDArray[Any], mask: NDArray[Any]) -> NDArray[Any]:
    # Ties are symmetric in A/B: only unsigned information (and magnitudes) can predict them.
    return np.asarray(np.c_[X[:, ~mask], np.abs(X[:, mask])])


def _side_and_logodds(
    side_params: dict[str, Any], X: NDArray[Any], mask: NDArray[Any], panel: NDArray[Any] | None = None
) -> tuple[NDArray[Any], NDArray[Any]]:
    """The predicted side and the log-odds of the model's probability for it.

    ``panel``: the panel's strict-majority side per row (None where it has none). Where it has
    one, that is the side: gold labels calibrate how often humans agree with the judges, they
    never pick the side (with a one-sided gold set they would pick it for every pair). The
    model's probability for the panel's side is then its confidence, below 0.5 where the
    learned weights side against the majority. Elsewhere the side model's argmax decides;
    with no directional evidence at all (P(A) == P(B)) the side is "tie", not "A".
    """
    z = _apply_logistic(side_params["direction"], X[:, mask])
    # Stored before the noise rate existed: none.
    noise = side_params["direction"].get("noise", 0.0)
    p_a = noise + (1.0 - 2.0 * noise) * _sigmoid(z)
    p_tie = (
        np.zeros(len(X))
        if side_params["tie"] is None
        else _sigmoid(_apply_logistic(side_params["tie"], _tie_features(X, mask)))
    )
    probs = np.c_[(1 - p_tie) * p_a, (1 - p_tie) * (1 - p_a), p_tie]
    idx = np.where(z == 0.0, 2, probs.argmax(axis=1))
    if panel is not None:
        idx = np.where(panel == "A", 0, np.where(panel == "B", 1, np.where(panel == "tie", 2, idx)))
    return np.asarray(_COLUMNS, dtype=object)[idx], _logit(probs[np.arange(len(X)), idx])


def _aligned(X: NDArray[Any], mask: NDArray[Any], side: NDArray[Any], logodds: NDArray[Any]) -> NDArray[Any]:
    """Features relative to the predicted side: signed ones times +1 (A) / -1 (B).

    For a predicted tie, any directional evidence counts against it, hence -|x|.
    """
    s = _sign(side)
    signed = X[:, mask]
    rel = np.where(s[:, None] == 0, -np.abs(signed), signed * s[:, None])
    return np.asarray(np.c_[rel, X[:, ~mask], logodds, (side == "tie").astype(float)])


def _predict(
    params: dict[str, Any], X: NDArray[Any], mask: NDArray[Any], panel: NDArray[Any] | None = None
) -> tuple[NDArray[Any], NDArray[Any]]:
    if params["method"] == "vote":
        v = X[:, int(params["vote_column"])]
        side = np.where(v > 0, "A", np.where(v < 0, "B", "tie")).astype(object)
        if panel is None:
            return side, np.abs(v)
        # The panel's strict majority is the side (as in _side_and_logodds); the net strength
        # then scores agreement with it, negative where the strong verdicts point the other way.
        toward = np.where(
            panel == "A", v, np.where(panel == "B", -v, np.where(panel == "tie", -np.abs(v), np.abs(v)))
        )
        has_majority = np.array([p is not None for p in panel], dtype=bool)
        return np.where(has_majority, panel, side).astype(object), toward
    X, mask = _with_evidence(X, mask, params.get("evidence", []))
    side, lo = _side_and_logodds(params["side"], X, mask, panel)
    if params["method"] == "side":
        return side, _sigmoid(lo)
    conf = _sigmoid(_apply_logistic(params["confidence"], _aligned(X, mask, side, lo)))
    return side, conf
