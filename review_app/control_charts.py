"""The dashboard's control charts: Altair (Vega-Lite) p-charts and the table of flagged points,
from the API's ``review/control-charts`` answer (pure: no Streamlit, no HTTP).

Streamlit draws the Vega-Lite spec with the Vega bundled in its own frontend: nothing is
fetched at run time.

>>> point = {"subgroup": 3, "labels": 20, "n": 8, "agreed": 2, "p": 0.25, "lcl": 0.4, "ucl": 1.0,
...          "wide": False, "rules": ["outside_limits"], "out_of_control": True,
...          "start": "2026-12-07T10:00:00", "end": "2026-12-07T10:20:00"}
>>> answer = {"window": 20, "rules": {"outside_limits": "the share is outside the control limits"},
...           "reviewers": [{"unit": "ana", "center": 0.8, "points": [point]}], "batches": None}
>>> point_name(point, "reviewer", 20)
'labels 41–60'
>>> [(r["Chart"], r["Point"], r["Agreement"], r["Limits"], r["Why"]) for r in flagged_rows(answer)]
[('ana', 'labels 41–60', '25% (2 of 8)', '40%–100%', 'below the lower limit')]
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from review_app.summaries import percent

# Point colours: in control, in control on a subgroup too small for tight limits, out of control.
STATUS_COLOURS = {"in control": "#1f77b4", "wide limits": "#9ecae1", "out of control": "#d62728"}


def point_name(point: dict[str, Any], kind: str, window: int, short: bool = False) -> str:
    """What a point is: a reviewer's window of labels, or a batch (job); ``short`` for an axis."""
    if kind == "batch":
        return str(point["subgroup"]) if short else f"job {point['subgroup']}"
    first = (point["subgroup"] - 1) * window + 1
    span = f"{first}–{first + point['labels'] - 1}"
    return span if short else f"labels {span}"


def _status(point: dict[str, Any]) -> str:
    if point["out_of_control"]:
        return "out of control"
    return "wide limits" if point["wide"] else "in control"


def points_frame(chart: dict[str, Any], kind: str, window: int) -> pd.DataFrame:
    """One row per point, with the columns the chart encodes and its tooltip shows."""
    rows = [
        {
            "point": point_name(point, kind, window),
            "x": point_name(point, kind, window, short=True),
            "agreement": point["p"],
            "lower limit": point["lcl"],
            "upper limit": point["ucl"],
            "centre": chart["center"],
            "answers checked": point["n"],
            "agreed": point["agreed"],
            "status": _status(point),
            "rules": ", ".join(point["rules"]) or "none",
        }
        for point in chart["points"]
    ]
    return pd.DataFrame(rows)


def p_chart(chart: dict[str, Any], kind: str, window: int) -> alt.LayerChart | alt.FacetChart:
    """Centre line, the per-point control limits (steps: they widen where a point has fewer
    answers), the points joined in order, out-of-control points in red."""
    frame = points_frame(chart, kind, window)
    # Short names on the axis, horizontal: rotated long names left the plot no height.
    x = alt.X(
        "x:N",
        sort=frame["x"].tolist(),
        title="batch (job id)" if kind == "batch" else "the reviewer's labels, in the order given",
        axis=alt.Axis(labelAngle=0, labelOverlap=True),
    )
    base = alt.Chart(frame).encode(x=x)
    y = alt.Scale(domain=[0, 1])
    limits = [
        base.mark_line(interpolate="step", strokeDash=[5, 3], color="#7f7f7f").encode(
            y=alt.Y(f"{limit}:Q", scale=y, title="agreement with the reference")
        )
        for limit in ("upper limit", "lower limit")
    ]
    centre = base.mark_line(color="#2ca02c").encode(y=alt.Y("centre:Q", scale=y))
    path = base.mark_line(color="#7f7f7f", opacity=0.5).encode(y=alt.Y("agreement:Q", scale=y))
    dots = base.mark_circle(size=80, opacity=1).encode(
        y=alt.Y("agreement:Q", scale=y),
        color=alt.Color(
            "status:N",
            scale=alt.Scale(domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values())),
            legend=alt.Legend(orient="bottom", title=None),
        ),
        tooltip=[
            "point",
            alt.Tooltip("agreement:Q", format=".0%"),
            "answers checked",
            "agreed",
            alt.Tooltip("lower limit:Q", format=".0%"),
            alt.Tooltip("upper limit:Q", format=".0%"),
            alt.Tooltip("centre:Q", format=".0%"),
            "rules",
        ],
    )
    title = f"{chart['unit']}: centre {percent(chart['center'])}"
    # No fixed height: under Streamlit's theme one squeezed the plot to nothing (the caller's
    # st.altair_chart(height=...) sizes it).
    return alt.layer(*limits, centre, path, dots).properties(title=title)


def when(start: str, end: str) -> str:
    """A subgroup's time span, to the minute.

    >>> when("2026-12-07T10:00:31+00:00", "2026-12-07T11:20:00+00:00")
    '2026-12-07 10:00–11:20'
    >>> when("2026-12-06T23:50:00+00:00", "2026-12-07T00:10:00+00:00")
    '2026-12-06 23:50 – 2026-12-07 00:10'
    """
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if first.date() == last.date():
        return f"{first:%Y-%m-%d %H:%M}–{last:%H:%M}"
    return f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}"


def why(rule: str, point: dict[str, Any], center: float) -> str:
    """A broken rule in a few words, with the direction (the API's ``rules`` explain them).

    >>> point = {"p": 0.25, "lcl": 0.4, "ucl": 1.0}
    >>> why("outside_limits", point, 0.8), why("run_of_8", point, 0.8), why("new_rule", point, 0.8)
    ('below the lower limit', '8th or later in a row below the centre line', 'new_rule')
    """
    side = "below" if point["p"] < center else "above"
    if rule == "outside_limits":
        return f"{side} the {'lower' if side == 'below' else 'upper'} limit"
    if rule.startswith("run_of_"):
        return f"{rule.removeprefix('run_of_')}th or later in a row {side} the centre line"
    return rule


def flagged_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The out-of-control points of every chart, batches first, as table rows in words."""
    charts = [("batch", answer["batches"])] if answer.get("batches") else []
    charts += [("reviewer", chart) for chart in answer.get("reviewers") or []]
    rows = []
    for kind, chart in charts:
        for point in chart["points"]:
            if not point["out_of_control"]:
                continue
            rows.append(
                {
                    "Chart": "Batches" if kind == "batch" else chart["unit"],
                    "Point": point_name(point, kind, answer["window"]),
                    "When": when(point["start"], point["end"]),
                    "Agreement": f"{percent(point['p'])} ({point['agreed']} of {point['n']})",
                    "Centre": percent(chart["center"]),
                    "Limits": f"{percent(point['lcl'])}–{percent(point['ucl'])}",
                    "Why": "; ".join(why(rule, point, chart["center"]) for rule in point["rules"]),
                }
            )
    return rows
