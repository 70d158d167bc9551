"""Honeypots in the review queue: pairs with a known answer, leased like any review item.

A honeypot (``honeypot`` table: a gold label imported with ``honeypot: true``) gets one
``review_item`` in queue ``honeypot`` that never fills up; :func:`claim_honeypot` leases a slot
of one the reviewer has not had instead of a routine item, at the project's ``honeypot_rate``.
The item is dressed as a routine one (the reasons and uncertainty of a real waiting item), so
what ``review/next`` returns does not give it away. Grading is :mod:`api.review.quality`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import false, func
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, exists, select

from api.db import insert_ignore
from api.models import Honeypot, Pair, Project, ReviewItem, ReviewLease, table_of
from api.review import filters
from api.review.redacted_pairs import ensure_redactions
from api.schemas import QueueFilter
from api.vocab import unit_draw

ITEM = table_of(ReviewItem)
_c = ITEM.c

HONEYPOT_QUEUE = "honeypot"
# A honeypot item never fills up: every reviewer may answer it once.
HONEYPOT_SLOTS = 10**9


def claim_honeypot(
    session: Session, project: Project, reviewer_id: int, now: datetime, flt: QueueFilter | None = None
) -> Any:
    """With the project's ``honeypot_rate``, a slot of a honeypot this reviewer has not had
    (the item row), else None. It is leased and served like any review item.

    Under a queue filter a honeypot must still pass for a routine item: it is dressed as a
    waiting item that matches the filter, and a text search takes only honeypots whose
    (redacted) text holds the words. Source and metadata filters do not hold honeypots back:
    the reviewer sees neither on an item, and a filter must not be a way around the checks."""
    rate = project.routing_settings().honeypot_rate
    if rate <= 0:
        return None
    served = session.execute(
        select(func.count()).where(
            ReviewLease.reviewer_id == reviewer_id, ReviewLease.project_id == project.id
        )
    ).scalar_one()
    # Deterministic per (reviewer, position): the same sequence in any process.
    if unit_draw(f"honeypot:{project.id}:{reviewer_id}:{served}") >= rate:
        return None
    waiting = session.execute(
        select(ReviewItem.reasons, ReviewItem.uncertainty, ReviewItem.selected_by)
        .where(
            ReviewItem.project_id == project.id,
            ReviewItem.queue == "review",
            ReviewItem.state == "open",
            ReviewItem.is_audit == false(),  # an audit's reasons with another selection would stand out
            *filters.conditions(flt, ReviewItem, filters.dialect_of(session)),
        )
        .order_by(col(ReviewItem.id).desc())
        .limit(1)
    ).first()
    if waiting is None:  # a honeypot served from an otherwise empty queue would stand out
        return None
    had = exists().where(
        col(ReviewLease.pair_id) == col(Honeypot.pair_id), col(ReviewLease.reviewer_id) == reviewer_id
    )
    found = select(Honeypot.pair_id).where(Honeypot.project_id == project.id, ~had)
    candidates = session.exec(found.where(*_searched(session, project.id, flt))).all()
    if not candidates:
        return None
    pair_id = min(candidates, key=lambda p: unit_draw(f"honeypot-pick:{reviewer_id}:{p}"))
    pair = session.get(Pair, pair_id)
    insert_ignore(
        session,
        ITEM,
        [
            {
                "project_id": project.id,
                "pair_id": pair_id,
                "queue": HONEYPOT_QUEUE,
                "origin": "honeypot",
                "decision_id": pair.decision_id if pair is not None else None,
                "state": "open",
                "labels_needed": HONEYPOT_SLOTS,
                "labels_done": 0,
                "leases_active": 0,
                # Dressed as a routine item: the reasons, uncertainty and selection of a real one.
                "uncertainty": waiting.uncertainty,
                "priority": 0.0,
                "selected_by": waiting.selected_by,
                "is_audit": False,
                "reasons": list(waiting.reasons),
                "created_at": now,
                "updated_at": now,
            }
        ],
        ["pair_id", "queue"],
    )
    return session.execute(
        sa_update(ITEM)
        .where(_c.pair_id == pair_id, _c.queue == HONEYPOT_QUEUE)
        .values(leases_active=_c.leases_active + 1, updated_at=now)
        .returning(*ITEM.c)
    ).first()


def _searched(session: Session, project_id: int, flt: QueueFilter | None) -> list[Any]:
    """Conditions on ``Honeypot`` for a text search: its redacted text holds the words (the
    project's honeypots are redacted first: they are few)."""
    if flt is None or not flt.text:
        return []
    pairs = session.exec(
        select(Pair)
        .join(Honeypot, col(Honeypot.pair_id) == col(Pair.id))
        .where(Honeypot.project_id == project_id)
    ).all()
    ensure_redactions(session, pairs)
    session.flush()
    return filters.conditions(QueueFilter(text=flt.text), Honeypot, filters.dialect_of(session))
