"""The queue as a list: what waits in a project's queue and matches a filter, in serving order
(priority), with who it is assigned to. Redacted text only, like everything reviewers read."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from api.models import Pair, ReviewAssignment, Reviewer, ReviewItem
from api.review import filters
from api.review.assignments import count_standing, standing
from api.review.redacted_pairs import ensure_redactions
from api.schemas import QueueFilter

PREVIEW_CHARS = 300
Assigned = Literal["any", "me", "none"]


def list_items(
    session: Session,
    project_id: int,
    queue: str,
    flt: QueueFilter | None,
    reviewer: Reviewer | None,
    assigned: Assigned = "any",
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of the waiting items (open or leased) of ``queue`` that match ``flt``.

    ``assigned``: ``me`` only items standing-assigned to ``reviewer``; ``none`` only items with
    no standing assignment. The caller commits (a text search may store redactions first).
    """
    unprepared = filters.prepare_search(session, project_id, (queue,), flt)
    item = aliased(ReviewItem)
    a = aliased(ReviewAssignment)
    dialect = filters.dialect_of(session)
    where = [
        col(item.project_id) == project_id,
        col(item.queue) == queue,
        col(item.state).in_(filters.WAITING),
        *filters.conditions(flt, item, dialect),
    ]
    held = select(col(a.item_id)).where(col(a.item_id) == col(item.id), standing(a))
    if assigned == "none":
        where.append(~held.exists())
    elif assigned == "me":
        mine = held.where(col(a.reviewer_id) == (reviewer.id if reviewer is not None else -1))
        where.append(mine.exists())
    matched = int(session.execute(select(func.count()).select_from(item).where(*where)).scalar_one())
    rows = session.exec(
        select(item)
        .where(*where)
        .order_by(col(item.priority).desc(), col(item.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    pairs = {p.id: p for p in session.exec(select(Pair).where(col(Pair.id).in_([r.pair_id for r in rows])))}
    shown = ensure_redactions(session, list(pairs.values())) if pairs else {}
    owners = _standing_owners(session, [r.id for r in rows])
    items = [
        {
            "item_id": r.id,
            "pair_id": r.pair_id,
            "job_id": pairs[r.pair_id].job_id,
            "queue": r.queue,
            "state": r.state,
            "reasons": list(r.reasons),
            "priority": r.priority,
            "labels_needed": r.labels_needed,
            "labels_done": r.labels_done,
            "prompt": shown[r.pair_id].prompt[:PREVIEW_CHARS],
            "assigned_to": owners.get(r.id),
        }
        for r in rows
    ]
    yours = count_standing(session, project_id, reviewer.id, queue) if reviewer is not None else 0
    more = offset + len(rows) < matched
    return {
        "items": items,
        "matched": matched,
        "assigned_to_you": yours,
        "next_offset": offset + len(rows) if more else None,
        "searched_unprepared": unprepared,
    }


def _standing_owners(session: Session, item_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not item_ids:
        return {}
    a = aliased(ReviewAssignment)
    rows = session.execute(
        select(col(a.item_id), col(a.reviewer_id), col(Reviewer.name))
        .join(Reviewer, col(Reviewer.id) == col(a.reviewer_id))
        .where(col(a.item_id).in_(item_ids), standing(a))
    ).all()
    return {row.item_id: {"reviewer_id": row.reviewer_id, "name": row.name} for row in rows}
