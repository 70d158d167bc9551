"""The adjudication queue: disputed pairs of low-agreement batches, for senior reviewers.

A batch whose measured agreement is below the project's threshold
(:meth:`api.review.human_labels.BatchAgreement.below`; with enough evidence it also stops
calibrating: :func:`api.review.human_labels.calibration_pairs`) has its disputed pairs (overlapped pairs
whose reviewers named different sides) become review items in the ``adjudication`` queue.
A senior reviewer takes them with the usual leases (:func:`api.review.queue.next_item`) and
submits through the usual submit route; the label is stored with source ``adjudicated`` and
decides the pair (:func:`api.review.human_labels.aggregate`). The queue is brought up to
date when a senior asks for work, so it always follows the current labels.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.db import chunks, insert_ignore
from api.models import Project, Reviewer, ReviewItem, utcnow
from api.review import queue
from api.review.human_labels import counting_labels, project_batches
from api.review.queue import ADJUDICATION_QUEUE, ITEM, Forbidden
from api.vocab import LabelSource, Reason

_c = ITEM.c


def disputed_pairs(session: Session, project_id: int) -> list[int]:
    """Disputed pairs of the project's batches whose agreement is below the threshold and
    that have no adjudicated label yet, in id order."""
    labels = counting_labels(session, project_id)
    settled = {label.pair_id for label in labels if label.source == LabelSource.ADJUDICATED}
    batches, _, threshold = project_batches(session, project_id, labels)
    return sorted(
        pid
        for batch in batches.values()
        if batch.below(threshold)
        for pid in batch.disputed
        if pid not in settled
    )


def sync_queue(session: Session, project_id: int) -> int:
    """Add an item for every disputed pair without one; an open item whose pair is no longer
    disputed turns stale (its batch recovered, or it was settled). Returns items added."""
    disputed = disputed_pairs(session, project_id)
    now = utcnow()
    existing = {
        pid: state
        for pid, state in session.exec(
            select(ReviewItem.pair_id, ReviewItem.state).where(
                ReviewItem.project_id == project_id, ReviewItem.queue == ADJUDICATION_QUEUE
            )
        )
    }
    new = [pid for pid in disputed if pid not in existing]
    rows = [
        {
            "project_id": project_id,
            "pair_id": pid,
            "queue": ADJUDICATION_QUEUE,
            "origin": "adjudication",  # not "routing": re-routing the pair leaves it alone
            "decision_id": None,  # no judge pre-label: the reviewers' dispute is the question
            "state": "open",
            "labels_needed": 1,
            "labels_done": 0,
            "leases_active": 0,
            "uncertainty": 1.0,
            "priority": 1.0,
            "selected_by": "adjudication",
            "is_audit": False,
            "reasons": [Reason.DISPUTED],
            "created_at": now,
            "updated_at": now,
        }
        for pid in new
    ]
    if rows:
        insert_ignore(session, ITEM, rows, ["pair_id", "queue"])
    wanted = set(disputed)
    gone = [pid for pid, state in existing.items() if state in ("open", "leased") and pid not in wanted]
    reopened = [pid for pid, state in existing.items() if state == "stale" and pid in wanted]
    for part in chunks(gone):
        session.execute(
            sa_update(ITEM)
            .where(_c.project_id == project_id, _c.queue == ADJUDICATION_QUEUE, _c.pair_id.in_(part))
            .where(_c.state == "open")
            .values(state="stale", updated_at=now)
        )
    for part in chunks(reopened):
        session.execute(
            sa_update(ITEM)
            .where(_c.project_id == project_id, _c.queue == ADJUDICATION_QUEUE, _c.pair_id.in_(part))
            .where(_c.state == "stale", _c.labels_done < _c.labels_needed)
            .values(state="open", updated_at=now)
        )
    return len(rows)


def next_item(
    engine: Engine, project: Project, reviewer: Reviewer, lease_seconds: float = 600.0
) -> dict[str, Any] | None:
    """Lease the next disputed pair for a senior reviewer (never one they labelled)."""
    if not reviewer.senior:
        raise Forbidden("adjudication is for senior reviewers")
    with Session(engine) as session:
        sync_queue(session, project.id)
        session.commit()
    return queue.next_item(engine, project, reviewer, ADJUDICATION_QUEUE, lease_seconds)
