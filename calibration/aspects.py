"""Per-aspect guarantee lines (issue 23): the gate's own fit, on one aspect's evidence.

A project with aspects gets, per aspect that has human labels, the same calibrator and
guaranteed threshold as the overall gate (:func:`calibration.gate.fit_gate`: one definition
of the guarantee), fitted on the judges' verdicts *on that aspect* against the humans' labels
*on that aspect*. ``never_accept`` carries routing's rule for the aspect (a pair whose panel does
not clear the aspect is never accepted on it), so the line's coverage and bound are those of
what the rule lets through. :func:`aspect_line` turns a fit into the report's row.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> rows, gold = [], {}
>>> for i in range(200):
...     truth = "A" if rng.uniform() < 0.5 else "B"
...     gold[i] = truth
...     for order in ("ab", "ba"):
...         rows.append((i, "j", order, truth if rng.uniform() < 0.9 else "tie"))
>>> frame = pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict"])
>>> line = aspect_line("helpfulness", fit_aspect(frame, pd.Series(gold), GateSettings(n_min=50)))
>>> line["aspect"], line["open"], line["n_labels"], line["agreement_lower_bound"] > 0.8
('helpfulness', True, 200, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import pandas as pd

from calibration.features import build_features
from calibration.gate import GateModel, fit_gate
from calibration.settings import GateSettings

__all__ = ["AspectLine", "aspect_line", "fit_aspect"]


class AspectLine(TypedDict):
    """One aspect's guarantee line in the calibration report."""

    aspect: str
    required: bool
    n_labels: int
    open: bool
    threshold: float | None
    target_agreement: float
    agreement_lower_bound: float | None
    expected_coverage: float
    reason: str
    # Routing's panel rule on the labelled pairs: how many clear it, and how often the
    # humans agree with the panel's side where it does (None: none clear).
    n_clear: int
    clear_agreement: float | None
    # Agreement between humans on this aspect: Krippendorff's alpha (ordinal, five-point) over
    # pairs two or more annotators labelled; None when there are none.
    krippendorff_alpha: float | None
    n_overlapped: int


def fit_aspect(
    frame: pd.DataFrame,
    labels: pd.Series,
    settings: GateSettings,
    never_accept: pd.Series | Sequence[bool] | None = None,
    judges: Sequence[str] | None = None,
) -> GateModel:
    """The gate fitted on one aspect: ``frame`` the long table of the judges' verdicts on it
    (``pair_id, judge, order, verdict``), ``labels`` the human side per pair on it."""
    features = build_features(frame, judges=judges)
    return fit_gate(features, labels, settings, never_accept=never_accept)


def aspect_line(
    aspect: str,
    gate: GateModel | None,
    *,
    required: bool = False,
    n_labels: int | None = None,
    clear: tuple[int, float | None] = (0, None),
    alpha: tuple[float | None, int] = (None, 0),
    target_agreement: float | None = None,
) -> AspectLine:
    """The report row of one aspect's fit (``gate`` None: nothing could be fitted)."""
    target = gate.target_agreement if gate is not None else (target_agreement or float("nan"))
    return {
        "aspect": aspect,
        "required": required,
        "n_labels": int(gate.n_labels_used if gate is not None and n_labels is None else n_labels or 0),
        "open": bool(gate is not None and gate.open),
        "threshold": _finite(gate.threshold) if gate is not None else None,
        "target_agreement": float(target),
        "agreement_lower_bound": _finite(gate.guaranteed_agreement) if gate is not None else None,
        "expected_coverage": float(gate.expected_coverage) if gate is not None else 0.0,
        "reason": gate.reason if gate is not None else "no human labels on this aspect yet",
        "n_clear": int(clear[0]),
        "clear_agreement": _finite(clear[1]),
        "krippendorff_alpha": _finite(alpha[0]),
        "n_overlapped": int(alpha[1]),
    }


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None
