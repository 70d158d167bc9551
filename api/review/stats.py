"""What the dashboards read: queue progress, throughput, override rates, labels."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import case, func
from sqlmodel import Session, col, select

from api.models import (
    Decision,
    Label,
    RedactionMapping,
    Reviewer,
    ReviewItem,
    ReviewLease,
    utcnow,
)
from api.review.queue import QUEUES
from api.review.submit import label_view
from judge.verdicts import side, to_side


def progress(session: Session, project_id: int, queue: str, reviewer: Reviewer) -> dict[str, Any]:
    counts = dict(
        session.execute(
            select(ReviewItem.state, func.count())
            .where(ReviewItem.project_id == project_id, ReviewItem.queue == queue)
            .group_by(ReviewItem.state)
        ).all()
    )
    since = utcnow() - timedelta(hours=24)
    mine, mine_today = session.execute(
        select(func.count(), func.count(case((col(ReviewLease.finished_at) >= since, 1)))).where(
            ReviewLease.project_id == project_id,
            ReviewLease.queue == queue,
            ReviewLease.reviewer_id == reviewer.id,
            ReviewLease.state == "submitted",
        )
    ).one()
    return {
        "queue": queue,
        "open": counts.get("open", 0),
        "leased": counts.get("leased", 0),
        "done": counts.get("done", 0),
        "remaining": counts.get("open", 0) + counts.get("leased", 0),
        "labelled_by_you": mine,
        "labelled_by_you_24h": mine_today,
    }


def _hour(ts: datetime) -> str:
    return ts.replace(minute=0, second=0, microsecond=0).isoformat()


def review_stats(session: Session, project_id: int, hours: int = 24) -> dict[str, Any]:
    """Queue depth, throughput per reviewer and hour, override rates with and without the
    judge's pre-label shown (the automation-bias check), skips."""
    depth: dict[str, dict[str, int]] = {q: {} for q in QUEUES}
    for queue, state, n in session.execute(
        select(ReviewItem.queue, ReviewItem.state, func.count())
        .where(ReviewItem.project_id == project_id)
        .group_by(ReviewItem.queue, ReviewItem.state)
    ).all():
        depth.setdefault(queue, {})[state] = n
    since = utcnow() - timedelta(hours=hours)
    per_hour: Counter[tuple[str, str]] = Counter()
    for annotator, created in session.execute(
        select(Label.annotator, Label.created_at).where(
            Label.project_id == project_id,
            col(Label.source).in_(("review", "audit", "calibration")),
            col(Label.created_at) >= since,
        )
    ).all():
        per_hour[(annotator, _hour(created))] += 1
    # per bucket: labels, overrides (counts), then rate (a share, None without labels)
    override: dict[str, dict[str, Any]] = {
        "shown": {"labels": 0, "overrides": 0},
        "hidden": {"labels": 0, "overrides": 0},
    }
    times: list[float] = []
    for label, shown, seconds, prelabel in session.execute(
        select(Label.label, ReviewLease.prelabel_shown, Label.time_on_task_s, Decision.label)
        .join(ReviewLease, col(ReviewLease.label_id) == col(Label.id))
        .join(Decision, col(Decision.id) == col(ReviewLease.decision_id), isouter=True)
        .where(Label.project_id == project_id)
    ).all():
        if seconds is not None:
            times.append(seconds)
        if prelabel is None or side(prelabel) is None:
            continue
        bucket = override["shown" if shown else "hidden"]
        bucket["labels"] += 1
        # An override: the human's side (A / B / tie), read as calibration reads it, differs
        # from the judge's.
        bucket["overrides"] += int(to_side(label, strict=False) != side(prelabel))
    for bucket in override.values():
        bucket["rate"] = bucket["overrides"] / bucket["labels"] if bucket["labels"] else None
    skips = dict(
        session.execute(
            select(ReviewLease.skip_reason, func.count())
            .where(ReviewLease.project_id == project_id, ReviewLease.state == "skipped")
            .group_by(ReviewLease.skip_reason)
        ).all()
    )
    sources = dict(
        session.execute(
            select(Label.source, func.count()).where(Label.project_id == project_id).group_by(Label.source)
        ).all()
    )
    return {
        "project_id": project_id,
        "queue_depth": {
            q: {
                "open": s.get("open", 0),
                "leased": s.get("leased", 0),
                "done": s.get("done", 0),
                "stale": s.get("stale", 0),
                "waiting": s.get("open", 0) + s.get("leased", 0),
            }
            for q, s in depth.items()
        },
        "labels_per_reviewer_per_hour": [
            {"annotator": a, "hour": h, "labels": n}
            for (a, h), n in sorted(per_hour.items(), key=lambda x: (x[0][1], x[0][0]))
        ],
        "override": override,
        "median_time_on_task_s": float(np.median(times)) if times else None,
        "labels_by_source": sources,
        "skips_by_reason": skips,
        "hours": hours,
    }


def list_labels(
    session: Session, project_id: int, annotator: str | None, after: int, limit: int
) -> list[dict[str, Any]]:
    statement = (
        select(Label)
        .where(
            Label.project_id == project_id,
            col(Label.source).in_(("review", "audit", "calibration")),
            col(Label.id) > after,
        )
        .order_by(col(Label.id))
        .limit(limit)
    )
    if annotator is not None:
        statement = statement.where(Label.annotator == annotator)
    return [label_view(label, duplicate=False) for label in session.exec(statement)]


def redaction_for_admin(session: Session, pair_id: int) -> dict[str, Any] | None:
    row = session.get(RedactionMapping, pair_id)
    if row is None:
        return None
    return {"pair_id": pair_id, "version": row.version, "mapping": row.mapping, "created_at": row.created_at}
