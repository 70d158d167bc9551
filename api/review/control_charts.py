"""Control charts of reviewer agreement: one p-chart per reviewer over time, one over batches.

Thin over :func:`calibration.control_chart.p_charts`. An answer *agreed* when it matches its
reference -- a honeypot's or gold label, or the side most of at least two other reviewers took
-- exactly as the quality test grades it (:func:`api.review.quality.grade`); an answer with
no reference is no comparison (it keeps its place on the time axis, nothing more).

* Per reviewer, the subgroups are consecutive windows of ``window`` labels in the order the
  reviewer gave them. Windows of labels rather than days: people label in bursts and at very
  different paces, so one day holds none of a reviewer's labels and the next 500 -- day
  subgroups would have wildly different sizes (and limits), and a part-time reviewer would
  get a point a week. After every ``window`` labels everyone gets a point, and a drift shows
  after the same amount of work whoever labels. A point's ``n`` is how many of its labels had
  a reference (it varies with the honeypots and overlaps served); a window with none is skipped.
* Per batch (the job its pairs came in, as in :mod:`api.review.agreement_batches`), one point
  per batch in job order, pooling every reviewer's graded answers on the batch's pairs.

Each chart's centre line is its own pooled agreement (the reviewer's, or all batches'): the
chart asks "did this change?", the quality test asks "is this good enough?".
"""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
from sqlmodel import Session

from api.review.human_labels import job_of_pairs
from api.review.quality import grade, reviewer_labels, reviewers_of
from calibration.control_chart import PChart, p_charts, rules

BATCHES = "batches"  # the unit name of the one chart over batches

_COLUMNS = ["unit", "subgroup", "agreed", "at"]


def _chart_view(chart: PChart, spans: pd.DataFrame, reviewer_id: int | None) -> dict[str, Any]:
    points = []
    for point in chart.points:
        start, end, labels = spans.loc[(chart.unit, point.subgroup)]
        points.append(
            {
                "subgroup": int(cast(int, point.subgroup)),  # window numbers and job ids
                "labels": int(labels),
                "n": point.n,
                "agreed": point.agreed,
                "p": point.p,
                "lcl": point.lcl,
                "ucl": point.ucl,
                "wide": point.wide,
                "rules": list(point.rules),
                "out_of_control": point.out_of_control,
                "start": start.to_pydatetime(),
                "end": end.to_pydatetime(),
            }
        )
    return {
        "unit": str(chart.unit),
        "reviewer_id": reviewer_id,
        "center": chart.center,
        "degenerate": chart.degenerate,
        "points": points,
        "skipped": [int(cast(int, s)) for s in chart.skipped],
        "flagged": len(chart.flagged),
    }


def _charts(
    rows: list[dict[str, Any]], sigma: float, run_length: int
) -> tuple[dict[Any, PChart], pd.DataFrame]:
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    # Each point's first and last label time (where it sits in time), and its number of labels.
    spans = frame.groupby(["unit", "subgroup"])["at"].agg(["min", "max", "size"])
    return p_charts(frame.drop(columns="at"), sigma=sigma, run_length=run_length), spans


def control_charts(
    session: Session, project_id: int, *, window: int, sigma: float = 3.0, run_length: int = 8
) -> dict[str, Any]:
    """Everything ``GET /v1/projects/{id}/review/control-charts`` shows: a p-chart per reviewer
    with labels (windows of ``window`` labels) and one over the project's batches."""
    by_reviewer: list[dict[str, Any]] = []
    answers: list[tuple[int, bool | None, Any]] = []  # (pair id, agreed, time) of every reviewer
    ids: dict[str, int] = {}
    for reviewer in reviewers_of(session, project_id):
        labels = reviewer_labels(session, project_id, reviewer.name)
        agreed = {g.label_id: g.agreed for g in grade(session, project_id, reviewer.name, labels)}
        ids[reviewer.name] = reviewer.id
        for position, label in enumerate(labels):
            verdict = agreed.get(label.id)
            by_reviewer.append(
                {
                    "unit": reviewer.name,
                    "subgroup": position // window + 1,
                    "agreed": verdict,
                    "at": label.created_at,
                }
            )
            answers.append((label.pair_id, verdict, label.created_at))
    job_of = job_of_pairs(session, [pair_id for pair_id, _, _ in answers])
    by_batch = [
        {"unit": BATCHES, "subgroup": job_of[pair_id], "agreed": verdict, "at": at}
        for pair_id, verdict, at in answers
        if pair_id in job_of
    ]
    reviewers, reviewer_spans = _charts(by_reviewer, sigma, run_length)
    batches, batch_spans = _charts(by_batch, sigma, run_length)
    return {
        "project_id": project_id,
        "window": window,
        "sigma": sigma,
        "run_length": run_length,
        "rules": rules(run_length),
        "reviewers": [
            _chart_view(chart, reviewer_spans, ids.get(str(name))) for name, chart in reviewers.items()
        ],
        "batches": _chart_view(batches[BATCHES], batch_spans, None) if BATCHES in batches else None,
    }
