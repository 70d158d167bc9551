"""The calibration report as one self-contained HTML page: CSS inline, plots as base64 PNG
(:mod:`api.calibrate.reports_plots`), no external assets, so it can be mailed, archived or served as is.

:func:`render_report_html` turns a :class:`calibration.report.CalibrationReport` dict (the data,
computed in ``calibration/``) into the page. Missing keys or empty arrays render as "not enough
data" notes rather than raising, so the page can be shown from day one of a project.

Example
-------
>>> from calibration.report import ScoredLabels, build_report
>>> scores = ScoredLabels(confidence=[0.9, 0.8, 0.6], correct=[True, True, False])
>>> html = render_report_html(build_report(project="demo", calibration_version="v1", scores=scores))
>>> html.startswith("<!DOCTYPE html>") and "How this guarantee works" in html
True
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from api.calibrate.reports_plots import (
    audits_plot,
    confusion_plot,
    coverage_plot,
    judges_plot,
    reliability_plot,
    shift_plot,
)
from calibration.metrics import brier_score, clopper_pearson_interval, expected_calibration_error
from calibration.report import GATE_DEFAULTS, finite_or_none
from judge.verdicts import SIDES

__all__ = ["render_report_html"]

_MIN_RELIABILITY = 20  # fewer labels than this make a reliability diagram mostly noise

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
    v = finite_or_none(value) if value is not None else None
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def _fmt_num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    v = finite_or_none(value) if value is not None else None
    return "—" if v is None else f"{v:.{digits}f}"


def _empty(message: str) -> str:
    return f'<p class="empty">Not enough data: {_esc(message)}</p>'


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
    target, delta = finite_or_none(gate.get("target_agreement")), finite_or_none(gate.get("delta"))
    lower, coverage = (
        finite_or_none(gate.get("agreement_lower_bound")),
        finite_or_none(gate.get("expected_coverage")),
    )
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
    ece = finite_or_none(rel.get("ece"))
    brier = finite_or_none(rel.get("brier"))
    if ece is None:
        ece = finite_or_none(expected_calibration_error(conf, ok, n_bins))
    if brier is None:
        brier = finite_or_none(brier_score(conf, ok))
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
        head + f"<div class='kpis'>{kpis}</div>{small}{reliability_plot(conf, ok, n_bins)}"
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
    if not curve.get("coverage"):
        return head + _empty("no labelled pairs to trace the coverage–agreement curve.") + "</section>"
    threshold = finite_or_none(gate.get("threshold"))
    lower = finite_or_none(gate.get("agreement_lower_bound"))
    point = _threshold_point(curve, threshold)
    caption = "No threshold chosen (gate closed)."
    if point is not None and threshold is not None:
        caption = (
            f"At the chosen threshold {threshold:.3g}: {_fmt_pct(point[0])} of labelled pairs accepted, "
            f"{_fmt_pct(point[1])} of them agree with humans (lower bound {_fmt_pct(lower)})."
        )
    img = coverage_plot(curve, gate, point)
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
    img = judges_plot(judges)
    return (
        head + table + img + '<p class="note">Accuracy counts both display orders; an invalid answer counts '
        "as wrong. Swap consistency is the share of pairs where the judge picks the same side when A and "
        "B are shown in swapped order; low values mean position bias. κ is agreement beyond chance. "
        "Agreement between judges is not correctness: only the human columns matter here.</p></section>"
    )


def _section_aspects(lines: Sequence[Mapping[str, Any]]) -> str:
    """One guarantee line per aspect (issue 23); nothing for a project without aspects."""
    if not lines:
        return ""
    rows = [
        [
            _esc(line.get("aspect")) + (" (required)" if line.get("required") else ""),
            _fmt_num(line.get("n_labels")),
            "open" if line.get("open") else "closed",
            _fmt_pct(line.get("expected_coverage")),
            _fmt_pct(line.get("agreement_lower_bound")),
            _fmt_num(line.get("threshold")),
            f"{_fmt_pct(line.get('clear_agreement'))} of {_fmt_num(line.get('n_clear'))}",
            _fmt_num(line.get("krippendorff_alpha"), 2),
            _esc(line.get("reason")),
        ]
        for line in lines
    ]
    table = _table(
        ["aspect", "labels", "guarantee", "coverage", "agreement ≥", "threshold", "humans agree where clear",
         "α", "why"],
        rows,
        text_columns=(0, 2, 8),
    )  # fmt: skip
    return (
        '<section id="aspects"><h2>Aspects: a guarantee line each</h2>' + table + '<p class="note">Each '
        "aspect is calibrated like the overall label, on the humans' labels on that aspect against the "
        "judges' verdicts on it. A pair is auto-accepted only when every required aspect clears: every "
        'judge call read, all on one side, in both orders. "Humans agree where clear" is how often the '
        "humans' label matches the panel on the labelled pairs that clear; α is Krippendorff's alpha "
        "between humans on the aspect (ordinal, over pairs two or more labelled).</p></section>"
    )


def _section_confusion(section: Mapping[str, Any] | None) -> str:
    head = '<section id="confusion"><h2>Where the labels disagree (confusion matrix)</h2>'
    matrix = np.asarray((section or {}).get("matrix") or [], dtype=int)
    if section is None or matrix.size == 0 or matrix.sum() == 0:
        return head + _empty("no pairs with both a judge label and a human label.") + "</section>"
    labels = [str(x) for x in section.get("labels") or SIDES]
    img = confusion_plot(matrix, labels, str(section.get("compared", "")))
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
    target = finite_or_none(audits.get("target_agreement"))
    if target is None:
        target = finite_or_none(gate.get("target_agreement"))
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
    band = np.column_stack(clopper_pearson_interval(np.cumsum(agree), n))
    img = audits_plot(x, xlabel, agree, band, target)
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
    history = [h for h in shift.get("history") or [] if finite_or_none(h[1]) is not None]
    threshold = finite_or_none(shift.get("threshold"))
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
        img = shift_plot(history, threshold, int(at) if fired and at is not None else None)
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
    gate: Mapping[str, Any] = {**GATE_DEFAULTS, **dict(report.get("gate") or {})}
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
        _section_aspects(report.get("aspects") or []),
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
