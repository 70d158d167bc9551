"""The calibration report a data lead reads before letting anything be auto-accepted.

Two steps, both pure (no database, no network):

* :func:`build_report` takes raw arrays from the service (out-of-sample confidence and
  correctness, judge verdicts and gold labels, audit outcomes, version history) and computes the
  metrics with :mod:`calibration.metrics` and :mod:`calibration.agreement`. It returns a plain,
  JSON-serialisable dict following :class:`CalibrationReport` (NaN becomes ``None``).
* :func:`render_report_html` turns such a dict into one self-contained HTML page: CSS inline,
  plots as base64 PNG, no external assets, so it can be mailed, archived or served as is.

Every section tolerates missing or empty data (a new project has no labels, no audits, a closed
gate) and says "not enough data" instead of failing.

Example
-------
>>> report = build_report(project="demo", calibration_version="v1",
...                       confidence=[0.9, 0.8, 0.6], correct=[True, True, False])
>>> round(report["reliability"]["brier"], 4)
0.1367
>>> html = render_report_html(report)
>>> html.startswith("<!DOCTYPE html>") and "How this guarantee works" in html
True
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

# The object-oriented Figure API renders with the Agg canvas without touching pyplot's global
# state, so reports can be rendered from worker threads and no display backend is ever needed.
from matplotlib.figure import Figure

from calibration.agreement import cohen_kappa, confusion, judge_vs_human
from calibration.metrics import (
    brier_score,
    clopper_pearson_interval,
    clopper_pearson_lower,
    coverage_agreement_curve,
    expected_calibration_error,
    reliability_curve,
)
from judge.verdicts import SIDES, to_side

__all__ = [
    "AuditOutcome",
    "AuditSection",
    "CalibrationReport",
    "ConfusionSection",
    "CoverageCurve",
    "GateState",
    "JudgeRow",
    "KillSwitch",
    "LabelSource",
    "ReliabilitySection",
    "VersionRow",
    "build_report",
    "render_report_html",
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


# --------------------------------------------------------------------------------------------
# build_report
# --------------------------------------------------------------------------------------------


def _shift_section(shift: Mapping[str, Any] | None) -> ShiftSection | None:
    if not shift:
        return None
    return {k: v for k, v in dict(shift).items() if k in ShiftSection.__annotations__}  # type: ignore[return-value]


def _num(value: Any) -> float | None:
    """A JSON-safe float: NaN / inf / None become None (json.dumps would emit invalid 'NaN')."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


_GATE_DEFAULTS: GateState = {
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
    if g.get("target_agreement") is None and _num(g.get("alpha")) is not None:
        g["target_agreement"] = 1.0 - float(g["alpha"])
    if "n_labels" not in g and "n_used" in g:
        g["n_labels"] = int(g["n_used"])
    keep = set(GateState.__annotations__)
    return {k: v for k, v in g.items() if k in keep}


def build_report(
    *,
    project: str,
    calibration_version: str,
    gate: Mapping[str, Any] | None = None,
    confidence: npt.ArrayLike = (),
    correct: npt.ArrayLike = (),
    n_bins: int = 10,
    reliability_note: str | None = None,
    judgments: pd.DataFrame | None = None,
    gold: Mapping[Any, Any] | pd.Series | None = None,
    confusion_true: npt.ArrayLike | None = None,
    confusion_pred: npt.ArrayLike | None = None,
    confusion_compared: str = "auto-label vs human gold",
    audit_timestamps: Sequence[Any] = (),
    audit_agree: npt.ArrayLike = (),
    kill_switch: Mapping[str, Any] | None = None,
    versions: Sequence[Mapping[str, Any]] = (),
    generated_at: str | datetime | None = None,
    shift: Mapping[str, Any] | None = None,
) -> CalibrationReport:
    """Compute every metric of the report from raw arrays; see :class:`CalibrationReport`.

    * ``confidence`` / ``correct``: out-of-sample confidence of the pipeline's label on
      human-labelled pairs and whether it matched the human label (same length).
    * ``judgments`` (columns pair_id, judge, order, verdict) and ``gold`` (pair_id -> "A"/"tie"/"B")
      feed the per-judge table; ``confusion_true`` / ``confusion_pred`` (human label, judge or
      panel label per pair) feed the confusion matrix and kappa.
    * ``audit_timestamps`` / ``audit_agree``: random audits of auto-accepted pairs, any order
      (sorted here by time).
    * ``shift``: the shift detector's summary (:class:`ShiftSection`), shown as its evidence over
      the stream against the alarm threshold.
    """
    gate_state: GateState = {**_GATE_DEFAULTS, **_normalize_gate(gate)}  # type: ignore[typeddict-item]
    for key in ("threshold", "target_agreement", "delta", "agreement_lower_bound", "expected_coverage"):
        gate_state[key] = _num(gate_state[key])
    gate_state["label_sources"] = [dict(s) for s in gate_state["label_sources"]]  # type: ignore[misc]

    conf = np.asarray(confidence, dtype=float).ravel()
    ok = np.asarray(correct, dtype=bool).ravel()
    thresholds, coverage, agreement = coverage_agreement_curve(conf, ok)
    reliability: ReliabilitySection = {
        "confidence": [float(c) for c in conf],
        "correct": [bool(c) for c in ok],
        "n_bins": int(n_bins),
        "ece": _num(expected_calibration_error(conf, ok, n_bins)),
        "brier": _num(brier_score(conf, ok)),
    }
    if reliability_note:
        reliability["note"] = reliability_note

    judges: list[JudgeRow] = []
    if judgments is not None and gold is not None and len(judgments):
        table = judge_vs_human(judgments, gold)
        for row in table.to_dict("records"):
            judges.append(
                {
                    "judge": str(row["judge"]),
                    "n_pairs": int(row["n_pairs"]),
                    "n_verdicts": int(row["n_verdicts"]),
                    "accuracy": _num(row["accuracy"]),
                    "swap_consistency": _num(row["swap_consistency"]),
                    "consistent_accuracy": _num(row["consistent_accuracy"]),
                    "kappa": _num(row["kappa"]),
                    "invalid_rate": _num(row["invalid_rate"]),
                }
            )

    confusion_section: ConfusionSection | None = None
    if confusion_true is not None and confusion_pred is not None:
        # Five-point verdicts are reduced to sides so the matrix is always A / tie / B.
        y_true = np.array(
            [to_side(v) for v in np.asarray(confusion_true, dtype=object).ravel()], dtype=object
        )
        y_pred = np.array(
            [to_side(v) for v in np.asarray(confusion_pred, dtype=object).ravel()], dtype=object
        )
        if y_true.size:
            confusion_section = {
                "compared": confusion_compared,
                "labels": list(SIDES),
                "matrix": confusion(y_true, y_pred, SIDES).tolist(),
                "kappa": _num(cohen_kappa(y_true, y_pred)),
            }

    agree = np.asarray(audit_agree, dtype=bool).ravel()
    if len(audit_timestamps) != agree.size:
        raise ValueError("audit_timestamps and audit_agree differ in length")
    outcomes: list[AuditOutcome] = [
        {"timestamp": _iso(t), "agree": bool(a)} for t, a in zip(audit_timestamps, agree, strict=True)
    ]
    when = pd.to_datetime([o["timestamp"] for o in outcomes], utc=True, errors="coerce", format="ISO8601")
    if len(when) and not when.isna().any():
        # Oldest first; if any timestamp is unreadable keep the caller's order rather than guess.
        outcomes = [outcomes[i] for i in np.argsort(when.to_numpy(), kind="stable")]
    audits: AuditSection = {
        "outcomes": outcomes,
        "target_agreement": gate_state["target_agreement"],
        "kill_switch": dict(kill_switch) if kill_switch else None,  # type: ignore[typeddict-item]
    }

    return {
        "schema_version": SCHEMA_VERSION,
        "project": project,
        "calibration_version": calibration_version,
        "generated_at": _iso(generated_at or datetime.now(UTC).replace(microsecond=0)),
        "gate": gate_state,
        "reliability": reliability,
        "coverage_curve": {
            "thresholds": [float(t) for t in thresholds],
            "coverage": [float(c) for c in coverage],
            "agreement": [float(a) for a in agreement],
            "n_accepted": [int(round(c * conf.size)) for c in coverage],
        },
        "judges": judges,
        "confusion": confusion_section,
        "audits": audits,
        "shift": _shift_section(shift),
        "versions": [
            {k: (_num(v) if isinstance(v, float) else v) for k, v in dict(row).items()}  # type: ignore[misc]
            for row in versions
        ],
    }


# --------------------------------------------------------------------------------------------
# render_report_html
# --------------------------------------------------------------------------------------------

_MIN_RELIABILITY = 20  # fewer labels than this make a reliability diagram mostly noise
_BLUE, _ORANGE, _GREEN, _RED, _GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;margin:0;
 background:#f6f7f9;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{margin:0 0 4px;font-size:26px} h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:14px} nav{font-size:14px;margin:12px 0 0}
nav a{margin-right:14px;color:#1f5fa8;text-decoration:none}
.gate{border-radius:8px;padding:16px 20px;margin-top:20px;border:2px solid}
.gate.open{background:#eef8ee;border-color:#2ca02c} .gate.closed{background:#fdf0ef;border-color:#d62728}
.gate .state{font-size:22px;font-weight:700}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.kpi{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:150px}
.kpi .v{font-size:20px;font-weight:600} .kpi .k{font-size:12px;color:#666}
table{border-collapse:collapse;margin:12px 0;font-size:14px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right} th{background:#f0f2f5}
td.l,th.l{text-align:left}
.empty{background:#fff8e1;border:1px solid #f0d080;border-radius:6px;padding:10px 14px;color:#6b5000}
.warn{color:#b00020;font-weight:600}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.note{color:#555;font-size:14px}
"""


def _esc(value: Any) -> str:
    # Project names, reasons and judge names come from users: always escape.
    return html.escape("" if value is None else str(value), quote=True)


def _fmt_pct(value: Any, digits: int = 1) -> str:
    v = _num(value) if value is not None else None
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def _fmt_num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    v = _num(value) if value is not None else None
    return "—" if v is None else f"{v:.{digits}f}"


def _empty(message: str) -> str:
    return f'<p class="empty">Not enough data: {_esc(message)}</p>'


def _png(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: Sequence[int] = (0,)) -> str:
    """Cells must already be escaped/formatted; ``text_columns`` are left-aligned, numbers right."""
    cls = ['class="l"' if i in text_columns else "" for i in range(len(headers))]
    head = "".join(f"<th {c}>{_esc(h)}</th>" for c, h in zip(cls, headers, strict=True))
    body = "".join(
        "<tr>" + "".join(f"<td {c}>{cell}</td>" for c, cell in zip(cls, r, strict=True)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kpi(label: str, value: str) -> str:
    return f'<div class="kpi"><div class="v">{value}</div><div class="k">{_esc(label)}</div></div>'


def _section_gate(gate: Mapping[str, Any]) -> str:
    state = "open" if gate.get("state") == "open" else "closed"
    target, delta = _num(gate.get("target_agreement")), _num(gate.get("delta"))
    lower, coverage = _num(gate.get("agreement_lower_bound")), _num(gate.get("expected_coverage"))
    if state == "open":
        headline = "Gate OPEN: pairs at or above the threshold are auto-accepted."
        claim = (
            f"With probability at least {_fmt_pct(1 - delta if delta is not None else None)}, at least "
            f"{_fmt_pct(lower)} of auto-accepted labels agree with human labels "
            f"(target {_fmt_pct(target)}). About {_fmt_pct(coverage)} of new pairs are expected to be "
            "auto-accepted; the rest go to human review."
        )
    else:
        headline = "Gate CLOSED: nothing is auto-accepted, every pair goes to human review."
        claim = ""
    kpis = "".join(
        [
            _kpi("confidence threshold", _fmt_num(gate.get("threshold"))),
            _kpi("target agreement", _fmt_pct(target)),
            _kpi("risk δ (guarantee may fail)", _fmt_num(delta, 3)),
            _kpi("guaranteed agreement ≥ (lower bound)", _fmt_pct(lower)),
            _kpi("expected coverage", _fmt_pct(coverage)),
            _kpi("human labels used", _fmt_num(gate.get("n_labels") or 0)),
        ]
    )
    sources = gate.get("label_sources") or []
    if sources:
        rows = [
            [
                _esc(s.get("source")),
                _fmt_num(s.get("n")),
                "used" if s.get("used") else "excluded",
                _esc(s.get("why")),
            ]
            for s in sources
        ]
        sources_html = _table(["label source", "labels", "in the gate", "why"], rows, text_columns=(0, 2, 3))
    else:
        sources_html = _empty("no human labels have been collected yet.")
    warnings = "".join(f'<p class="warn">Warning: {_esc(w)}</p>' for w in gate.get("warnings") or [])
    return (
        f'<section id="gate"><div class="gate {state}"><div class="state">{_esc(headline)}</div>'
        f"<p><b>Reason:</b> {_esc(gate.get('reason'))}</p>{warnings}"
        f"{f'<p>{_esc(claim)}</p>' if claim else ''}<div class='kpis'>{kpis}</div>"
        f"{_cascade_html(gate.get('cascade'))}</div>"
        f'<h2 id="labels">Human labels behind this decision</h2>{sources_html}'
        '<p class="note">Only labels on randomly drawn pairs count toward the guarantee. Labels that '
        "reviewers produce on pairs the system routed to them are a biased sample (the uncertain "
        "ones) and would understate or distort agreement on the pairs that are auto-accepted.</p>"
        "</section>"
    )


def _cascade_html(cascade: Mapping[str, Any] | None) -> str:
    if not cascade:
        return ""
    rates = list(cascade.get("stage_accept_rates") or [])
    rows = [
        [str(k), _esc(", ".join(judges)), _fmt_pct(rates[k] if k < len(rates) else None)]
        for k, judges in enumerate(cascade.get("stages") or [])
    ]
    table = _table(["stage", "judges (cheapest first)", "calibration pairs accepted here"], rows, (1,))
    return (
        f"<h3>Judge cascade</h3>{table}<p>Expected judge calls per pair: "
        f"{_fmt_num(cascade.get('expected_calls_per_pair'), 2)} "
        f"of {_fmt_num(cascade.get('full_panel_calls'))}; "
        f"judge calls saved so far: {_fmt_num(cascade.get('judge_calls_saved') or 0)} "
        f"({_fmt_pct(cascade.get('saved_fraction'))} of the full panel's calls).</p>"
    )


def _plot_reliability(conf: np.ndarray, ok: np.ndarray, n_bins: int) -> str:
    mean_conf, accuracy, count = reliability_curve(conf, ok, n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    filled = count > 0
    # Exact 95% intervals per bin: a bin of 3 pairs at 33% is noise, and the plot should say so
    # rather than draw it as boldly as a bin of 200.
    lo, hi = clopper_pearson_interval(np.rint(accuracy[filled] * count[filled]), count[filled])
    yerr = np.vstack([accuracy[filled] - lo, hi - accuracy[filled]])
    fig = Figure(figsize=(6.4, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color=_GREY, label="perfect calibration")
    top.errorbar(
        mean_conf[filled],
        accuracy[filled],
        yerr=yerr,
        fmt="o-",
        color=_BLUE,
        ecolor="#9ecae1",
        elinewidth=3,
        capsize=0,
        label="observed agreement (95% interval)",
    )
    for x, y, n in zip(mean_conf[filled], accuracy[filled], count[filled], strict=True):
        top.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8, color=_GREY)
    top.set_ylabel("agreement with humans")
    top.set_ylim(0, 1.02)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=9)
    top.set_title("Reliability diagram (out-of-sample)")
    bottom.bar(centers, count, width=width * 0.9, color=_GREY)
    bottom.set_xlabel("stated confidence")
    bottom.set_ylabel("pairs")
    bottom.set_xlim(0, 1)
    return _png(fig, "Reliability diagram: agreement with humans per confidence bin, with bin counts")


def _section_reliability(rel: Mapping[str, Any]) -> str:
    conf = np.asarray(rel.get("confidence") or [], dtype=float)
    ok = np.asarray(rel.get("correct") or [], dtype=bool)
    n_bins = int(rel.get("n_bins") or 10)
    head = '<section id="reliability"><h2>Is the confidence honest? (calibration)</h2>'
    if conf.size == 0:
        return (
            head
            + _empty("no out-of-sample human labels yet, so confidence cannot be checked.")
            + "</section>"
        )
    ece = _num(rel.get("ece"))
    brier = _num(rel.get("brier"))
    if ece is None:
        ece = _num(expected_calibration_error(conf, ok, n_bins))
    if brier is None:
        brier = _num(brier_score(conf, ok))
    kpis = "".join(
        [
            _kpi("labelled pairs", str(conf.size)),
            _kpi("observed agreement", _fmt_pct(ok.mean())),
            _kpi("mean confidence", _fmt_pct(conf.mean())),
            _kpi("ECE (lower is better)", _fmt_num(ece)),
            _kpi("Brier score (lower is better)", _fmt_num(brier)),
        ]
    )
    small = (
        f'<p class="warn">Only {conf.size} labelled pairs: bins are noisy, read the diagram as a rough '
        "guide.</p>"
        if conf.size < _MIN_RELIABILITY
        else ""
    )
    note = f'<p class="note">{_esc(rel["note"])}</p>' if rel.get("note") else ""
    return (
        head + f"<div class='kpis'>{kpis}</div>{small}{_plot_reliability(conf, ok, n_bins)}"
        '<p class="note">Each point compares the confidence the system stated with how often its label '
        "actually matched the human label. Points below the diagonal mean over-confidence. Confidence "
        "is measured out-of-sample: on labels not used to fit it.</p>" + note + "</section>"
    )


def _threshold_point(curve: Mapping[str, Any], threshold: float | None) -> tuple[float, float] | None:
    """(coverage, agreement) of the rule "confidence >= threshold" read off the curve."""
    if threshold is None:
        return None
    t = np.asarray(curve.get("thresholds") or [], dtype=float)
    accepted = np.flatnonzero(t >= threshold - 1e-12)
    if accepted.size == 0:
        return None
    i = accepted[-1]  # thresholds are descending: the last one still >= threshold
    return float(curve["coverage"][i]), float(curve["agreement"][i])


def _section_coverage(curve: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    head = '<section id="coverage"><h2>How much can be auto-accepted at what agreement?</h2>'
    coverage = np.asarray(curve.get("coverage") or [], dtype=float)
    agreement = np.asarray(curve.get("agreement") or [], dtype=float)
    if coverage.size == 0:
        return head + _empty("no labelled pairs to trace the coverage–agreement curve.") + "</section>"
    threshold, target = _num(gate.get("threshold")), _num(gate.get("target_agreement"))
    fig = Figure(figsize=(7.2, 4.4))
    ax = fig.subplots()
    # Each point is one candidate threshold (an operating point), hence markers rather than steps.
    ax.plot(coverage, agreement, "o-", ms=3, color=_BLUE, label="observed agreement of accepted pairs")
    delta = _num(gate.get("delta"))
    n_accepted = np.asarray(curve.get("n_accepted") or [], dtype=int)
    if delta is not None and n_accepted.size == coverage.size:
        # The quantity the gate actually tests: the one-sided (1 - delta) lower bound per threshold.
        k = np.rint(agreement * n_accepted).astype(int)
        bound = clopper_pearson_lower(k, n_accepted, delta)
        ax.plot(coverage, bound, "-", color=_BLUE, alpha=0.5, lw=1, label=f"lower bound ({1 - delta:.0%})")
    if target is not None:
        ax.axhline(target, color=_RED, ls="--", label=f"target {target:.0%}")
    lower = _num(gate.get("agreement_lower_bound"))
    point = _threshold_point(curve, threshold)
    caption = "No threshold chosen (gate closed)."
    if point is not None:
        ax.axvline(point[0], color=_GREEN, ls=":", lw=1)
        ax.plot([point[0]], [point[1]], "o", color=_GREEN, ms=9, label=f"chosen threshold {threshold:.3g}")
        if lower is not None:
            ax.plot([point[0]], [lower], "v", color=_GREEN, ms=8, label="guaranteed lower bound")
        caption = (
            f"At the chosen threshold {threshold:.3g}: {_fmt_pct(point[0])} of labelled pairs accepted, "
            f"{_fmt_pct(point[1])} of them agree with humans (lower bound {_fmt_pct(lower)})."
        )
    ax.set_xlabel("coverage (share of pairs auto-accepted)")
    ax.set_ylabel("agreement with humans")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(max(0.0, min(float(np.nanmin(agreement)), target or 1.0) - 0.1), 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    img = _png(fig, "Coverage versus agreement curve with the chosen threshold marked")
    return (
        head + img + f"<p>{_esc(caption)}</p>"
        '<p class="note">Moving right lowers the confidence threshold: more pairs are auto-accepted and '
        "fewer of them agree with humans. The observed curve is an estimate; the gate uses its "
        "statistical lower bound, not the curve itself.</p></section>"
    )


def _section_judges(judges: Sequence[Mapping[str, Any]]) -> str:
    head = '<section id="judges"><h2>Each judge against human labels</h2>'
    if not judges:
        return head + _empty("no judge verdicts on human-labelled pairs yet.") + "</section>"
    rows = [
        [
            _esc(j.get("judge")),
            _fmt_num(j.get("n_pairs")),
            _fmt_pct(j.get("accuracy")),
            _fmt_pct(j.get("swap_consistency")),
            _fmt_pct(j.get("consistent_accuracy")),
            _fmt_num(j.get("kappa"), 2),
            _fmt_pct(j.get("invalid_rate")),
        ]
        for j in judges
    ]
    table = _table(
        [
            "judge",
            "pairs",
            "accuracy",
            "swap consistency",
            "accuracy when consistent",
            "Cohen's κ",
            "invalid",
        ],
        rows,
    )
    names = [str(j.get("judge")) for j in judges]
    series = [
        ("accuracy", [_num(j.get("accuracy")) for j in judges], _BLUE),
        ("swap consistency", [_num(j.get("swap_consistency")) for j in judges], _ORANGE),
        ("accuracy when consistent", [_num(j.get("consistent_accuracy")) for j in judges], _GREEN),
    ]
    fig = Figure(figsize=(7.6, 0.9 + 0.55 * len(names)))
    ax = fig.subplots()
    y = np.arange(len(names))
    height = 0.8 / len(series)
    for k, (label, values, color) in enumerate(series):
        vals = [np.nan if v is None else v for v in values]
        ax.barh(y + (k - 1) * height, vals, height=height, color=color, label=label)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of pairs")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(names)), ncol=3, fontsize=8, frameon=False
    )
    img = _png(fig, "Per-judge accuracy and swap consistency against human labels")
    return (
        head + table + img + '<p class="note">Accuracy counts both display orders; an invalid answer counts '
        "as wrong. Swap consistency is the share of pairs where the judge picks the same side when A and "
        "B are shown in swapped order; low values mean position bias. κ is agreement beyond chance. "
        "Agreement between judges is not correctness: only the human columns matter here.</p></section>"
    )


def _section_confusion(section: Mapping[str, Any] | None) -> str:
    head = '<section id="confusion"><h2>Where the labels disagree (confusion matrix)</h2>'
    matrix = np.asarray((section or {}).get("matrix") or [], dtype=int)
    if section is None or matrix.size == 0 or matrix.sum() == 0:
        return head + _empty("no pairs with both a judge label and a human label.") + "</section>"
    labels = [str(x) for x in section.get("labels") or SIDES]
    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            dark = matrix[i, j] > matrix.max() / 2
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("judge / auto-label")
    ax.set_ylabel("human label")
    ax.set_title(str(section.get("compared", "")), fontsize=10)
    img = _png(fig, "Confusion matrix of judge labels against human labels")
    agree = np.trace(matrix) / matrix.sum()
    return (
        head + f"<div class='kpis'>{_kpi('pairs', str(int(matrix.sum())))}"
        f"{_kpi('raw agreement', _fmt_pct(agree))}"
        f"{_kpi('Cohen’s κ', _fmt_num(section.get('kappa'), 2))}</div>"
        + img
        + '<p class="note">Rows are the human label, columns the judge’s. Off-diagonal cells show '
        "which mistakes the judge makes, e.g. calling a human tie for one side.</p></section>"
    )


def _section_audits(audits: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    head = '<section id="audits"><h2>Audits of auto-accepted pairs over time</h2>'
    outcomes = list(audits.get("outcomes") or [])
    target = _num(audits.get("target_agreement"))
    if target is None:
        target = _num(gate.get("target_agreement"))
    kill = audits.get("kill_switch") or None
    kill_html = ""
    if kill:
        when = f" at {_esc(kill.get('tripped_at'))}" if kill.get("tripped_at") else ""
        status = f'<span class="warn">TRIPPED{when}</span>' if kill.get("tripped") else "armed, not tripped"
        kill_html = f"<p><b>Drift kill-switch:</b> {status}. Rule: {_esc(kill.get('rule'))}</p>"
    if not outcomes:
        return head + kill_html + _empty("no audits of auto-accepted pairs yet.") + "</section>"
    agree = np.array([bool(o.get("agree")) for o in outcomes])
    try:
        x: Any = pd.to_datetime([o.get("timestamp") for o in outcomes], utc=True, format="ISO8601")
        xlabel = "audit time (UTC)"
    except (ValueError, TypeError):  # unparseable timestamps: fall back to audit number
        x = np.arange(1, agree.size + 1)
        xlabel = "audit number"
    n = np.arange(1, agree.size + 1)
    running = np.cumsum(agree) / n
    band = np.column_stack(clopper_pearson_interval(np.cumsum(agree), n))
    window = min(50, agree.size)
    rolling = pd.Series(agree.astype(float)).rolling(window, min_periods=window).mean().to_numpy()
    fig = Figure(figsize=(7.6, 4.0))
    ax = fig.subplots()
    ax.fill_between(x, band[:, 0], band[:, 1], color=_BLUE, alpha=0.15, label="95% interval (cumulative)")
    ax.plot(x, running, color=_BLUE, label="cumulative agreement")
    if agree.size > window:
        ax.plot(x, rolling, color=_ORANGE, lw=1, label=f"last {window} audits")
    if target is not None:
        ax.axhline(target, color=_RED, ls="--", label=f"target {target:.0%}")
    # Scale to the running agreement, not to the (very wide) interval of the first few audits.
    ax.set_ylim(max(0.0, min(float(running.min()), target or 1.0) - 0.15), 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("audit agreement with humans")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    img = _png(fig, "Running audit agreement over time with the target line")
    lo, hi = band[-1]
    kpis = "".join(
        [
            _kpi("audits", str(agree.size)),
            _kpi("agreement", _fmt_pct(agree.mean())),
            _kpi("95% interval", f"{_fmt_pct(lo)} – {_fmt_pct(hi)}"),
            _kpi(
                "first / last",
                f"{_esc(outcomes[0].get('timestamp'))}<br>{_esc(outcomes[-1].get('timestamp'))}",
            ),
        ]
    )
    below = (
        '<p class="warn">The whole audit interval lies below the target: agreement has dropped since '
        "calibration.</p>"
        if target is not None and hi < target
        else ""
    )
    return (
        head + kill_html + f"<div class='kpis'>{kpis}</div>{below}{img}"
        '<p class="note">A random share of auto-accepted pairs is sent to humans. If the pairs coming in '
        "drift away from the calibration data, this line is where it shows first.</p></section>"
    )


def _section_shift(shift: Mapping[str, Any] | None) -> str:
    head = '<section id="shift"><h2>Shift detector: is the stream still like the calibration sample?</h2>'
    note = (
        '<p class="note">No labels needed: per decided pair the judges\' verdicts (majority side, dissent, '
        "order flips and their direction, each judge against the panel), the gate's score and acceptance and "
        "the texts' lengths are ranked against the calibration sample; a betting martingale per statistic "
        "grows when the ranks stop looking uniform. The gate closes when one reaches K/δ (K statistics): "
        "on a stream like the calibration sample that happens with probability at most δ.</p>"
    )
    if not shift:
        # Not a lack of data: the detector starts with the first open gate.
        return (
            head
            + "<p>No shift detector has run yet: it starts when the gate opens.</p>"
            + note
            + "</section>"
        )
    version = _esc(shift.get("version") or "—")
    if shift.get("skipped"):
        return head + _empty(f"no shift test for {version}: {_esc(shift['skipped'])}.") + note + "</section>"
    history = [h for h in shift.get("history") or [] if _num(h[1]) is not None]
    threshold = _num(shift.get("threshold"))
    fired = bool(shift.get("alarm"))
    at = shift.get("alarm_at")
    status = (
        f"<span class=\"warn\">FIRED at pair {int(at) + 1} on '{_esc(shift.get('alarm_statistic'))}'</span>"
        if fired and at is not None
        else "watching, not fired"
    )
    kpis = "".join(
        [
            _kpi("version", version),
            _kpi("stream pairs tested", str(shift.get("items", 0))),
            _kpi("calibration pairs", str(shift.get("n_reference", "—"))),
            _kpi("false-alarm bound δ", _fmt_num(shift.get("delta"))),
        ]
    )
    img = ""
    if len(history) > 1 and threshold is not None:
        x = np.array([float(h[0]) for h in history])
        y = np.array([float(h[1]) for h in history])
        fig = Figure(figsize=(7.6, 3.6))
        ax = fig.subplots()
        ax.plot(x, y, color=_BLUE, label="evidence (largest statistic)")
        ax.axhline(threshold, color=_RED, ls="--", label="alarm: log(K/δ)")
        if fired and at is not None:
            ax.axvline(int(at) + 1, color=_ORANGE, lw=1, label="alarm")
        ax.set_xlabel("stream pairs decided under the version")
        ax.set_ylabel("log evidence (nats)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        img = _png(fig, "Shift detector evidence over the stream with the alarm threshold")
    return head + f"<p><b>Status:</b> {status}.</p><div class='kpis'>{kpis}</div>{img}{note}</section>"


_VERSION_COLUMNS = [
    ("version", "version", "text"),
    ("created_at", "created", "text"),
    ("state", "gate", "text"),
    ("threshold", "threshold", "num"),
    ("target_agreement", "target", "pct"),
    ("agreement_lower_bound", "lower bound", "pct"),
    ("expected_coverage", "coverage", "pct"),
    ("n_labels", "labels", "num"),
    ("note", "note", "text"),
]


def _section_versions(versions: Sequence[Mapping[str, Any]], current: str) -> str:
    head = '<section id="versions"><h2>Calibration version history</h2>'
    if not versions:
        return head + _empty("this is the first calibration version.") + "</section>"
    rows = []
    for v in versions:
        cells = []
        for key, _, kind in _VERSION_COLUMNS:
            value = v.get(key)
            if kind == "pct":
                cells.append(_fmt_pct(value))
            elif kind == "num":
                cells.append(_fmt_num(value))
            else:
                text = _esc(value if value is not None else "—")
                cells.append(f"<b>{text}</b>" if key == "version" and str(value) == current else text)
        rows.append(cells)
    table = _table(
        [label for _, label, _ in _VERSION_COLUMNS],
        rows,
        text_columns=[i for i, (_, _, kind) in enumerate(_VERSION_COLUMNS) if kind == "text"],
    )
    return head + table + "</section>"


_GUARANTEE = """
<section id="guarantee"><h2>How this guarantee works and where it breaks</h2>
<h3>How it works</h3>
<ol>
<li>Humans label a <b>random sample</b> of pairs. The confidence score of each of these pairs is
computed <b>out-of-sample</b>: by a model that did not see that pair's label (a held-out split; with
cross-fitting the guarantee is approximate).</li>
<li>Candidate confidence thresholds are tested <b>in a fixed order</b>, from the most confident
(fewest pairs accepted) downwards. At each threshold, the held-out pairs at or above it give a
count of agreements with humans, and an exact <b>Clopper–Pearson</b> one-sided lower confidence
bound at level δ on the agreement rate.</li>
<li>Testing stops at the first threshold whose lower bound falls below the target. Because the
order was fixed in advance (<b>fixed-sequence testing</b>), trying many thresholds needs no
multiple-testing correction: the chance that the chosen threshold's true agreement is below the
target is at most δ.</li>
<li>If not even the most confident threshold passes, the gate stays closed.</li>
</ol>
<p>The claim is about the <b>share</b> of auto-accepted labels that agree with humans, for pairs
like the calibration pairs; it is not a promise about any single pair, and it is agreement with
human labellers (who disagree among themselves too), not ground truth.</p>
<h3>What it assumes</h3>
<ul>
<li><b>Exchangeability:</b> future pairs come from the same distribution as the calibration pairs
(same sources, prompt mix, response models).</li>
<li><b>Labels not selected by reviewers:</b> only randomly drawn calibration and audit labels count.
Review labels are excluded because reviewers see the pairs the system was unsure about — a
selected, harder sample.</li>
<li><b>Nothing changed since calibration:</b> the same judges (model versions), prompts, parsing and
confidence model. Any change needs a new calibration version.</li>
</ul>
<h3>Where it breaks</h3>
<ul>
<li><b>Distribution shift</b> — new data sources, new tasks, a new generation of response models, or
a provider silently updating a judge model. The bound then says nothing about the new pairs.</li>
<li><b>Biased labels</b> — counting reviewer-selected or hand-picked labels as calibration data.</li>
<li><b>Small samples</b> — with few labels the bound is loose and the gate correctly stays closed;
δ also means roughly one calibration in 1/δ can be wrong even when everything else holds.</li>
</ul>
<p>That is why a random share of auto-accepted pairs keeps going to humans (the audit plot above)
and why a <b>drift kill-switch</b> closes the gate when audit agreement falls significantly below
the target, until a new calibration on fresh random labels reopens it. Audits are slow to show a
sudden shift, so a <b>shift detector</b> also closes the gate when the judgments themselves stop
looking like the calibration sample's (no labels needed; it cannot see judges that are wrong in
the same way as on the calibration sample).</p>
</section>
"""


def render_report_html(report: Mapping[str, Any]) -> str:
    """Render a :class:`CalibrationReport` dict as one self-contained HTML page.

    Missing keys or empty arrays render as "not enough data" notes rather than raising, so the
    page can be shown from day one of a project.
    """
    gate: Mapping[str, Any] = {**_GATE_DEFAULTS, **dict(report.get("gate") or {})}
    project = report.get("project") or "(unnamed project)"
    version = str(report.get("calibration_version") or "—")
    title = f"Calibration report — {project}"
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in [
            ("gate", "Gate"),
            ("labels", "Labels"),
            ("reliability", "Calibration"),
            ("coverage", "Coverage"),
            ("judges", "Judges"),
            ("confusion", "Confusion"),
            ("audits", "Audits"),
            ("shift", "Shift"),
            ("versions", "Versions"),
            ("guarantee", "How the guarantee works"),
        ]
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_esc(title)}</h1>",
        f'<div class="meta">Calibration version <b>{_esc(version)}</b> · generated '
        f"{_esc(report.get('generated_at') or '—')}</div>",
        f"<nav>{nav}</nav>",
        _section_gate(gate),
        _section_reliability(report.get("reliability") or {}),
        _section_coverage(report.get("coverage_curve") or {}, gate),
        _section_judges(report.get("judges") or []),
        _section_confusion(report.get("confusion")),
        _section_audits(report.get("audits") or {}, gate),
        _section_shift(report.get("shift")),
        _section_versions(report.get("versions") or [], version),
        _GUARANTEE,
        "</main></body></html>",
    ]
    return "\n".join(parts)
