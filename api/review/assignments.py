"""Assignments: a senior reviewer (or the admin) gives waiting items to one reviewer of the
project. The one writer of ``review_assignment``; every change is an audit event.

An assignment *stands* while the assignee

* has not leased the item yet (once they lease it their turn has come: labelled, skipped or
  let expire, the item's other slots and any retry belong to the pool again),
* is still a reviewer of the project and active, and
* is not paused on the project (api/review/quality.py).

While it stands, the assignee is served the item before any unassigned one (priority order
among their assigned items) and no other reviewer is served it. When it stops standing the
item is back in the pool at once: nothing has to run for that, the claim reads the rule above.
An assignment of a reviewer who is removed or paused stays stored (and listed, with why it does
not stand); it stands again if they are resumed or re-added while the item still waits. An
unassign deletes it. One assignee per item: assigning an item again moves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, true
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, exists, select

from api import audit
from api.db import chunks, insert_ignore
from api.models import (
    ReviewAssignment,
    Reviewer,
    ReviewerProject,
    ReviewerStatus,
    ReviewItem,
    ReviewLease,
    table_of,
    utcnow,
)
from api.review import filters
from api.schemas import AssignRequest, QueueFilter, UnassignRequest

WAITING = filters.WAITING
QUEUES = ("review", "incident")
_TABLE = table_of(ReviewAssignment)


class AssignmentError(Exception):
    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AssigneePaused(AssignmentError):
    status = 409


def _ids_text(ids: Sequence[int]) -> str:
    shown = ", ".join(map(str, ids[:20]))
    return shown + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")


# --- the rule, as SQL ----------------------------------------------------------------------------


def standing(a: Any) -> ColumnElement[bool]:
    """SQL: the assignment row ``a`` (the model or an alias) stands (see the module docstring).
    Its subqueries use aliases of their own: they must never correlate with the outer query's
    tables (a listing that joins ``reviewer`` would otherwise leave one without a FROM)."""
    lease, member_row, reviewer, status = (
        aliased(ReviewLease),
        aliased(ReviewerProject),
        aliased(Reviewer),
        aliased(ReviewerStatus),
    )
    leased = exists().where(
        col(lease.item_id) == col(a.item_id), col(lease.reviewer_id) == col(a.reviewer_id)
    )
    member = exists().where(
        col(member_row.reviewer_id) == col(a.reviewer_id), col(member_row.project_id) == col(a.project_id)
    )
    active = exists().where(col(reviewer.id) == col(a.reviewer_id), col(reviewer.active) == true())
    paused = exists().where(
        col(status.reviewer_id) == col(a.reviewer_id),
        col(status.project_id) == col(a.project_id),
        col(status.paused) == true(),
    )
    return ~leased & member & active & ~paused


def held_for_others(item: Any, reviewer_id: int) -> ColumnElement[bool]:
    """SQL: ``item`` has a standing assignment to someone other than ``reviewer_id``."""
    a = aliased(ReviewAssignment)
    return exists().where(col(a.item_id) == col(item.id), col(a.reviewer_id) != reviewer_id, standing(a))


def assigned_to(item: Any, project_id: int, reviewer_id: int) -> ColumnElement[bool]:
    """SQL: ``item`` is assigned to ``reviewer_id`` (driven by the assignment table's index: a
    reviewer's assignments are few next to the queue)."""
    mine = select(col(ReviewAssignment.item_id)).where(
        col(ReviewAssignment.project_id) == project_id, col(ReviewAssignment.reviewer_id) == reviewer_id
    )
    return col(item.id).in_(mine)


# --- writes --------------------------------------------------------------------------------------


def _assignee(session: Session, project_id: int, reviewer_id: int) -> Reviewer:
    reviewer = session.get(Reviewer, reviewer_id)
    member = session.get(ReviewerProject, (reviewer_id, project_id))
    if reviewer is None or not reviewer.active or member is None:
        raise AssignmentError(f"reviewer {reviewer_id} is not an active reviewer of project {project_id}")
    status = session.get(ReviewerStatus, (reviewer_id, project_id))
    if status is not None and status.paused:
        raise AssigneePaused(
            f"reviewer {reviewer_id} ({reviewer.name}) is paused on this project: items assigned to "
            "them would go back to the pool; resume them first"
        )
    return reviewer


def _explicit_items(
    session: Session, project_id: int, queue: str, reviewer_id: int, ids: list[int]
) -> list[int]:
    wanted = sorted(set(ids))
    waiting: set[int] = set()
    had: set[int] = set()
    for part in chunks(wanted):
        waiting.update(
            session.exec(
                select(col(ReviewItem.id)).where(
                    col(ReviewItem.id).in_(part),
                    col(ReviewItem.project_id) == project_id,
                    col(ReviewItem.queue) == queue,
                    col(ReviewItem.state).in_(WAITING),
                )
            )
        )
        had.update(
            session.exec(
                select(col(ReviewLease.item_id)).where(
                    col(ReviewLease.item_id).in_(part), col(ReviewLease.reviewer_id) == reviewer_id
                )
            )
        )
    if missing := [i for i in wanted if i not in waiting]:
        raise AssignmentError(
            f"items {_ids_text(missing)} are not waiting in this project's {queue} queue "
            "(unknown, of another project or queue, done, or re-routed)"
        )
    if seen := sorted(had):
        raise AssignmentError(
            f"reviewer {reviewer_id} already had items {_ids_text(seen)} (nobody gets an item twice)"
        )
    return wanted


def _matching_items(
    session: Session, project_id: int, queue: str, reviewer_id: int, flt: QueueFilter, limit: int
) -> list[int]:
    """Waiting items matching ``flt`` that the reviewer never had and nobody else holds, best first."""
    item = aliased(ReviewItem)
    had = exists().where(
        col(ReviewLease.item_id) == col(item.id), col(ReviewLease.reviewer_id) == reviewer_id
    )
    filters.prepare_search(session, project_id, (queue,), flt)
    query = (
        select(col(item.id))
        .where(col(item.project_id) == project_id, col(item.queue) == queue, col(item.state).in_(WAITING))
        .where(
            ~had,
            ~held_for_others(item, reviewer_id),
            *filters.conditions(flt, item, filters.dialect_of(session)),
        )
        .order_by(col(item.priority).desc(), col(item.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def assign(session: Session, project_id: int, body: AssignRequest, by: str) -> dict[str, Any]:
    """Assign items to ``body.reviewer_id`` (by id, or by filter); audited; the caller commits.

    By id every item must be waiting in the queue and new to the reviewer (422 otherwise,
    nothing stored); an item assigned to someone else moves. By filter, items another
    reviewer's standing assignment holds are left to them.
    """
    reviewer = _assignee(session, project_id, body.reviewer_id)
    if body.item_ids is not None:
        ids = _explicit_items(session, project_id, body.queue, reviewer.id, body.item_ids)
    else:
        assert body.filter is not None  # AssignRequest allows one of the two
        ids = _matching_items(session, project_id, body.queue, reviewer.id, body.filter, body.limit)
    before: dict[int, int] = {}
    for part in chunks(ids):
        rows = session.exec(
            select(ReviewAssignment.item_id, ReviewAssignment.reviewer_id).where(
                col(ReviewAssignment.item_id).in_(part)
            )
        )
        before.update({item_id: rid for item_id, rid in rows})
    moved = {i: rid for i, rid in before.items() if rid != reviewer.id}
    for part in chunks(sorted(moved)):
        session.execute(sa_delete(_TABLE).where(_TABLE.c.item_id.in_(part)))
    now = utcnow()
    rows_in = [
        {
            "item_id": i,
            "project_id": project_id,
            "reviewer_id": reviewer.id,
            "assigned_by": by,
            "created_at": now,
        }
        for i in ids
        if before.get(i) != reviewer.id
    ]
    if rows_in:
        # Ignore: a concurrent assign of the same item won the race; the read below tells.
        insert_ignore(session, _TABLE, rows_in, ["item_id"])
    now_theirs = sorted(
        i
        for part in chunks(ids)
        for i in session.exec(
            select(col(ReviewAssignment.item_id)).where(
                col(ReviewAssignment.item_id).in_(part), col(ReviewAssignment.reviewer_id) == reviewer.id
            )
        )
    )
    theirs = set(now_theirs)
    moved_from = {str(i): rid for i, rid in sorted(moved.items()) if i in theirs}
    payload = {
        "reviewer_id": reviewer.id,
        "reviewer": reviewer.name,
        "by": by,
        "queue": body.queue,
        "item_ids": now_theirs,
        "moved_from": moved_from,
        "filter": body.filter.model_dump(mode="json") if body.filter is not None else None,
    }
    audit.record_event(
        session,
        audit.AuditKind.REVIEW_ASSIGNED,
        project_id=project_id,
        subject=f"reviewer:{reviewer.id}",
        payload=payload,
    )
    return {
        "reviewer_id": reviewer.id,
        "assigned": len(now_theirs),
        "moved": len(moved_from),
        "item_ids": now_theirs,
    }


def unassign(session: Session, project_id: int, body: UnassignRequest, by: str) -> dict[str, Any]:
    """Give these items (or all of one reviewer's) back to the pool; audited; the caller commits.
    Items without an assignment are left alone (unassigning twice changes nothing)."""
    query = select(ReviewAssignment.item_id, ReviewAssignment.reviewer_id).where(
        col(ReviewAssignment.project_id) == project_id
    )
    found: dict[int, int] = {}
    if body.item_ids is not None:
        for part in chunks(sorted(set(body.item_ids))):
            found.update(dict(session.exec(query.where(col(ReviewAssignment.item_id).in_(part))).all()))
    else:
        found.update(
            dict(session.exec(query.where(col(ReviewAssignment.reviewer_id) == body.reviewer_id)).all())
        )
    ids = sorted(found)
    for part in chunks(ids):
        session.execute(sa_delete(_TABLE).where(_TABLE.c.item_id.in_(part)))
    if ids:
        payload = {"by": by, "item_ids": ids, "from": {str(i): found[i] for i in ids}}
        subject = f"reviewer:{body.reviewer_id}" if body.reviewer_id is not None else f"items:{len(ids)}"
        audit.record_event(
            session,
            audit.AuditKind.REVIEW_UNASSIGNED,
            project_id=project_id,
            subject=subject,
            payload=payload,
        )
    return {"unassigned": len(ids), "item_ids": ids}


# --- reads ---------------------------------------------------------------------------------------


def _why_not(row: Any) -> str | None:
    if row.leased:
        return "the assignee has had it (labelled, skipped or let the lease expire)"
    if not row.member or not row.active:
        return "the assignee is no longer a reviewer of the project"
    if row.paused:
        return "the assignee is paused on the project"
    return None


def overview(session: Session, project_id: int) -> dict[str, Any]:
    """The project's reviewers (with their standing assignments) and its assignments on
    waiting items, each with whether it stands and why not."""
    a = ReviewAssignment
    leased = exists().where(
        col(ReviewLease.item_id) == col(a.item_id), col(ReviewLease.reviewer_id) == col(a.reviewer_id)
    )
    member = exists().where(
        col(ReviewerProject.reviewer_id) == col(a.reviewer_id), col(ReviewerProject.project_id) == project_id
    )
    paused = exists().where(
        col(ReviewerStatus.reviewer_id) == col(a.reviewer_id),
        col(ReviewerStatus.project_id) == project_id,
        col(ReviewerStatus.paused) == true(),
    )
    rows = session.execute(
        sa_select(
            col(a.item_id),
            col(a.reviewer_id),
            col(a.assigned_by),
            col(a.created_at),
            col(ReviewItem.pair_id),
            col(ReviewItem.queue),
            col(ReviewItem.state),
            col(Reviewer.name),
            col(Reviewer.active),
            leased.label("leased"),
            member.label("member"),
            paused.label("paused"),
        )
        .join(ReviewItem, col(ReviewItem.id) == col(a.item_id))
        .join(Reviewer, col(Reviewer.id) == col(a.reviewer_id))
        .where(col(a.project_id) == project_id, col(ReviewItem.state).in_(WAITING))
        .order_by(col(a.reviewer_id), col(a.item_id))
    ).all()
    assignments = []
    standing_count: dict[int, int] = {}
    for row in rows:
        why = _why_not(row)
        if why is None:
            standing_count[row.reviewer_id] = standing_count.get(row.reviewer_id, 0) + 1
        assignments.append(
            {
                "item_id": row.item_id,
                "pair_id": row.pair_id,
                "queue": row.queue,
                "state": row.state,
                "reviewer_id": row.reviewer_id,
                "name": row.name,
                "assigned_by": row.assigned_by,
                "created_at": row.created_at,
                "standing": why is None,
                "why_not": why,
            }
        )
    paused_ids = set(
        session.exec(
            select(col(ReviewerStatus.reviewer_id)).where(
                col(ReviewerStatus.project_id) == project_id, col(ReviewerStatus.paused) == true()
            )
        )
    )
    reviewers = [
        {
            "reviewer_id": r.id,
            "name": r.name,
            "senior": r.senior,
            "paused": r.id in paused_ids,
            "assigned": standing_count.get(r.id, 0),
        }
        for r in session.exec(
            select(Reviewer)
            .join(ReviewerProject, col(ReviewerProject.reviewer_id) == col(Reviewer.id))
            .where(col(ReviewerProject.project_id) == project_id, col(Reviewer.active) == true())
            .order_by(col(Reviewer.name))
        )
    ]
    return {"reviewers": reviewers, "assignments": assignments}


def count_standing(session: Session, project_id: int, reviewer_id: int, queue: str) -> int:
    """Waiting items of ``queue`` assigned to the reviewer that stand (for their queue view)."""
    a = aliased(ReviewAssignment)
    return int(
        session.execute(
            select(func.count())
            .select_from(a)
            .join(ReviewItem, col(ReviewItem.id) == col(a.item_id))
            .where(
                col(a.project_id) == project_id,
                col(a.reviewer_id) == reviewer_id,
                col(ReviewItem.queue) == queue,
                col(ReviewItem.state).in_(WAITING),
                standing(a),
            )
        ).scalar_one()
    )
