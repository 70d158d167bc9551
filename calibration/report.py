"""The calibration report's data: every metric a data lead reads before letting anything be
auto-accepted.

:func:`build_report` is pure (no database, no network, no plotting): it takes raw arrays from the
service, grouped by what they are (:class:`ScoredLabels`, :class:`PanelEvidence`,
:class:`Monitoring`), computes the metrics with :mod:`calibration.metrics` and
:mod:`calibration.agreement`, and returns a plain, JSON-serialisable dict following
:class:`CalibrationReport` (NaN becomes ``None``). The page that shows it (HTML, plots) is the
API's: ``api.calibrate.reports_html.render_report_html``.

Every section tolerates missing or empty data (a new project has no labels, no audits, a closed
gate) and stays empty instead of failing.

Example
-------
>>> scores = ScoredLabels(confidence=[0.9, 0.8, 0.6], correct=[True, True, False])
>>> report = build_report(project="demo", calibration_version="v1", scores=scores)
>>> round(report["reliability"]["brier"], 4), report["gate"]["state"]
(0.1367, 'closed')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

from calibration.agreement import cohen_kappa, confusion, judge_vs_human
from calibration.metrics import brier_score, coverage_agreement_curve, expected_calibration_error
from judge.verdicts import SIDES, to_side

__all__ = [
    "AuditOutcome",
    "AuditSection",
    "CalibrationReport",
    "ConfusionSection",
    "CoverageCurve",
    "GATE_DEFAULTS",
    "GateState",
    "JudgeRow",
    "KillSwitch",
    "LabelSource",
    "Monitoring",
    "PanelEvidence",
    "ReliabilitySection",
    "ScoredLabels",
    "ShiftSection",
    "VersionRow",
    "build_report",
    "finite_or_none",
]

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------------------------
# Schema. Every float may be None (unknown / not computable); timestamps are ISO-8601 strings.
# --------------------------------------------------------------------------------------------


class LabelSource(TypedDict):
    """One source of human labels and whether the gate used it."""

    source: str  # e.g. "calibration_sample", "audit", "review"
    n: int  # labels available from this source
    used: bool  # counted in the gate's statistics?
    why: str  # e.g. "review labels excluded: reviewers see uncertain pairs (selection bias)"


class GateState(TypedDict):
    """The auto-accept decision for this calibration version."""

    state: Literal["open", "closed"]
    reason: str  # one sentence a data lead can act on
    threshold: float | None  # auto-accept when confidence >= threshold
    target_agreement: float | None  # agreement with humans the gate must guarantee, e.g. 0.9
    delta: float | None  # allowed probability that the guarantee is wrong, e.g. 0.05
    agreement_lower_bound: float | None  # Clopper-Pearson lower bound at the threshold (level delta)
    expected_coverage: float | None  # share of future pairs expected to be auto-accepted
    n_labels: int  # human labels the decision used
    label_sources: list[LabelSource]
    # Cascade projects: stages (cheapest first), share of calibration pairs accepted per
    # stage, judge calls per pair expected and judge calls saved so far (None: no cascade).
    cascade: dict[str, Any] | None
    # What the data lead should fix in the labels, open gate or not (e.g. a one-sided gold set).
    warnings: NotRequired[list[str]]


class ReliabilitySection(TypedDict):
    """Out-of-sample confidence and correctness of the auto-label on human-labelled pairs."""

    confidence: list[float]
    correct: list[bool]
    n_bins: int
    ece: float | None
    brier: float | None
    note: NotRequired[str]  # how out-of-sample was obtained, e.g. "5-fold cross-fitting"


class CoverageCurve(TypedDict):
    """Coverage and agreement of "accept if confidence >= t", thresholds most -> least confident."""

    thresholds: list[float]
    coverage: list[float]
    agreement: list[float]
    n_accepted: NotRequired[list[int]]  # labelled pairs at or above each threshold (for the bounds)


class JudgeRow(TypedDict):
    """One row of :func:`calibration.agreement.judge_vs_human`."""

    judge: str
    n_pairs: int
    n_verdicts: int
    accuracy: float | None
    swap_consistency: float | None
    consistent_accuracy: float | None
    kappa: float | None
    invalid_rate: float | None


class ConfusionSection(TypedDict):
    compared: str  # what against what, e.g. "auto-label (panel) vs human gold"
    labels: list[str]
    matrix: list[list[int]]  # rows = human label, columns = judge label, in `labels` order
    kappa: float | None  # Cohen's kappa over the same pairs


class AuditOutcome(TypedDict):
    timestamp: str
    agree: bool  # did the human audit label agree with the auto-accepted label?
    pair_id: NotRequired[str]


class KillSwitch(TypedDict):
    tripped: bool
    rule: str  # the drift rule in words, e.g. "close the gate if the audit upper bound < target"
    tripped_at: NotRequired[str | None]


class AuditSection(TypedDict):
    outcomes: list[AuditOutcome]  # random audits of auto-accepted pairs, oldest first
    target_agreement: float | None
    kill_switch: NotRequired[KillSwitch | None]


class ShiftSection(TypedDict, total=False):
    """The label-free shift detector of the latest version that ran one (calibration.shift)."""

    version: str
    skipped: str  # why no detector ran for this version
    items: int  # stream pairs tested
    n_reference: int  # calibration pairs compared with
    delta: float
    threshold: float  # alarm when evidence (log, nats) >= this = log(K / delta)
    evidence: float
    alarm: bool
    alarm_at: int | None  # 0-based stream index of the alarm
    alarm_statistic: str | None
    history: list[list[Any]]  # [items, evidence, statistic] over time


class VersionRow(TypedDict, total=False):
    version: str
    created_at: str
    state: str
    threshold: float | None
    target_agreement: float | None
    agreement_lower_bound: float | None
    expected_coverage: float | None
    n_labels: int
    note: str


class CalibrationReport(TypedDict):
    """Everything the page shows. Built by :func:`build_report`; any part may be empty."""

    schema_version: int
    project: str
    calibration_version: str
    generated_at: str
    gate: GateState
    reliability: ReliabilitySection
    coverage_curve: CoverageCurve
    judges: list[JudgeRow]
    confusion: ConfusionSection | None
    audits: AuditSection
    shift: NotRequired[ShiftSection | None]
    versions: list[VersionRow]
    # Projects with aspects: one guarantee line per aspect (calibration.aspects.AspectLine),
    # the version's own (api/calibrate/reports.py adds them); absent without aspects.
    aspects: NotRequired[list[dict[str, Any]]]


# --------------------------------------------------------------------------------------------
# build_report
# --------------------------------------------------------------------------------------------


def _shift_section(shift: Mapping[str, Any] | None) -> ShiftSection | None:
    if not shift:
        return None
    return {k: v for k, v in dict(shift).items() if k in ShiftSection.__annotations__}  # type: ignore[return-value]  # keys filtered to the TypedDict's


def finite_or_none(value: Any) -> float | None:
    """A JSON-safe float: NaN / inf / None become None (json.dumps would emit invalid 'NaN')."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


GATE_DEFAULTS: GateState = {
    "state": "closed",
    "reason": "No calibration has been run yet.",
    "threshold": None,
    "target_agreement": None,
    "delta": None,
    "agreement_lower_bound": None,
    "expected_coverage": None,
    "n_labels": 0,
    "label_sources": [],
    "cascade": None,
}


def _normalize_gate(gate: Mapping[str, Any] | None) -> dict[str, Any]:
    """Accept a :class:`GateState` or ``calibration.threshold.ThresholdResult.to_dict()``.

    The threshold selector speaks in risk terms (``open`` bool, ``alpha`` = allowed disagreement,
    ``n_used``); the report speaks to data leads in agreement terms. Translating here lets the
    service pass the selector's result straight through.
    """
    g = dict(gate or {})
    if "state" not in g and "open" in g:
        g["state"] = "open" if g.pop("open") else "closed"
    if g.get("target_agreement") is None and finite_or_none(g.get("alpha")) is not None:
        g["target_agreement"] = 1.0 - float(g["alpha"])
    if "n_labels" not in g and "n_used" in g:
        g["n_labels"] = int(g["n_used"])
    keep = set(GateState.__annotations__)
    return {k: v for k, v in g.items() if k in keep}


@dataclass(frozen=True)
class ScoredLabels:
    """Out-of-sample confidence of the pipeline's label on human-labelled pairs and whether it
    matched the human label (same length); ``note`` says how out-of-sample was obtained."""

    confidence: npt.ArrayLike = ()
    correct: npt.ArrayLike = ()
    n_bins: int = 10
    note: str | None = None


@dataclass(frozen=True)
class PanelEvidence:
    """The judges against the humans.

    ``judgments`` (columns pair_id, judge, order, verdict) and ``gold`` (pair_id -> "A"/"tie"/"B")
    feed the per-judge table; ``confusion_true`` / ``confusion_pred`` (human label, judge or panel
    label per pair) feed the confusion matrix and kappa, ``confusion_compared`` names them.
    """

    judgments: pd.DataFrame | None = None
    gold: Mapping[Any, Any] | pd.Series | None = None
    confusion_true: npt.ArrayLike | None = None
    confusion_pred: npt.ArrayLike | None = None
    confusion_compared: str = "auto-label vs human gold"


@dataclass(frozen=True)
class Monitoring:
    """What watches an open gate: random audits of auto-accepted pairs (``audit_timestamps`` /
    ``audit_agree``, any order, same length), the drift kill-switch, and the shift detector's
    summary (:class:`ShiftSection`)."""

    audit_timestamps: Sequence[Any] = ()
    audit_agree: npt.ArrayLike = ()
    kill_switch: Mapping[str, Any] | None = None
    shift: Mapping[str, Any] | None = None


def build_report(
    *,
    project: str,
    calibration_version: str,
    gate: Mapping[str, Any] | None = None,
    scores: ScoredLabels = ScoredLabels(),
    panel: PanelEvidence = PanelEvidence(),
    monitoring: Monitoring = Monitoring(),
    versions: Sequence[Mapping[str, Any]] = (),
    generated_at: str | datetime | None = None,
) -> CalibrationReport:
    """Compute every metric of the report from raw arrays; see :class:`CalibrationReport`.

    ``gate``: a :class:`GateState` or ``ThresholdResult.to_dict()``; ``versions``: the version
    history rows (:class:`VersionRow`); ``generated_at``: now by default.
    """
    gate_state: GateState = {**GATE_DEFAULTS, **_normalize_gate(gate)}  # type: ignore[typeddict-item]  # defaults fill every key
    for key in ("threshold", "target_agreement", "delta", "agreement_lower_bound", "expected_coverage"):
        gate_state[key] = finite_or_none(gate_state[key])
    gate_state["label_sources"] = [dict(s) for s in gate_state["label_sources"]]  # type: ignore[misc]  # copies, same shape
    conf = np.asarray(scores.confidence, dtype=float).ravel()
    ok = np.asarray(scores.correct, dtype=bool).ravel()
    thresholds, coverage, agreement = coverage_agreement_curve(conf, ok)
    return {
        "schema_version": SCHEMA_VERSION,
        "project": project,
        "calibration_version": calibration_version,
        "generated_at": _iso(generated_at or datetime.now(UTC).replace(microsecond=0)),
        "gate": gate_state,
        "reliability": _reliability(conf, ok, scores),
        "coverage_curve": {
            "thresholds": [float(t) for t in thresholds],
            "coverage": [float(c) for c in coverage],
            "agreement": [float(a) for a in agreement],
            "n_accepted": [int(round(c * conf.size)) for c in coverage],
        },
        "judges": _judge_rows(panel),
        "confusion": _confusion(panel),
        "audits": _audits(monitoring, gate_state["target_agreement"]),
        "shift": _shift_section(monitoring.shift),
        "versions": [
            {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in dict(row).items()}  # type: ignore[misc]  # same keys, floats made finite
            for row in versions
        ],
    }


def _reliability(conf: npt.NDArray[Any], ok: npt.NDArray[Any], scores: ScoredLabels) -> ReliabilitySection:
    reliability: ReliabilitySection = {
        "confidence": [float(c) for c in conf],
        "correct": [bool(c) for c in ok],
        "n_bins": int(scores.n_bins),
        "ece": finite_or_none(expected_calibration_error(conf, ok, scores.n_bins)),
        "brier": finite_or_none(brier_score(conf, ok)),
    }
    if scores.note:
        reliability["note"] = scores.note
    return reliability


def _judge_rows(panel: PanelEvidence) -> list[JudgeRow]:
    if panel.judgments is None or panel.gold is None or not len(panel.judgments):
        return []
    table = judge_vs_human(panel.judgments, panel.gold)
    return [
        {
            "judge": str(row["judge"]),
            "n_pairs": int(row["n_pairs"]),
            "n_verdicts": int(row["n_verdicts"]),
            "accuracy": finite_or_none(row["accuracy"]),
            "swap_consistency": finite_or_none(row["swap_consistency"]),
            "consistent_accuracy": finite_or_none(row["consistent_accuracy"]),
            "kappa": finite_or_none(row["kappa"]),
            "invalid_rate": finite_or_none(row["invalid_rate"]),
        }
        for row in table.to_dict("records")
    ]


def _confusion(panel: PanelEvidence) -> ConfusionSection | None:
    if panel.confusion_true is None or panel.confusion_pred is None:
        return None
    # Five-point verdicts are reduced to sides so the matrix is always A / tie / B.
    y_true = np.array(
        [to_side(v) for v in np.asarray(panel.confusion_true, dtype=object).ravel()], dtype=object
    )
    y_pred = np.array(
        [to_side(v) for v in np.asarray(panel.confusion_pred, dtype=object).ravel()], dtype=object
    )
    if not y_true.size:
        return None
    return {
        "compared": panel.confusion_compared,
        "labels": list(SIDES),
        "matrix": confusion(y_true, y_pred, SIDES).tolist(),
        "kappa": finite_or_none(cohen_kappa(y_true, y_pred)),
    }


def _audits(monitoring: Monitoring, target_agreement: float | None) -> AuditSection:
    agree = np.asarray(monitoring.audit_agree, dtype=bool).ravel()
    if len(monitoring.audit_timestamps) != agree.size:
        raise ValueError("audit_timestamps and audit_agree differ in length")
    outcomes: list[AuditOutcome] = [
        {"timestamp": _iso(t), "agree": bool(a)}
        for t, a in zip(monitoring.audit_timestamps, agree, strict=True)
    ]
    when = pd.to_datetime([o["timestamp"] for o in outcomes], utc=True, errors="coerce", format="ISO8601")
    if len(when) and not when.isna().any():
        # Oldest first; if any timestamp is unreadable keep the caller's order rather than guess.
        outcomes = [outcomes[i] for i in np.argsort(when.to_numpy(), kind="stable")]
    kill_switch = monitoring.kill_switch
    return {
        "outcomes": outcomes,
        "target_agreement": target_agreement,
        "kill_switch": dict(kill_switch) if kill_switch else None,  # type: ignore[typeddict-item]  # a copy of the TypedDict
    }
