"""A reviewer's answer: submit a label for a lease (on time or late), skip, escalate.

Labels go to the ``label`` table that calibration reads, with the source the item's
decision gives them (audit and calibration-sample labels calibrate; others are review).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.db import insert_ignore
from api.models import (
    Decision,
    Label,
    Pair,
    Reviewer,
    ReviewItem,
    ReviewLease,
    utcnow,
)
from api.review.queue import ITEM, Conflict, Forbidden, Invalid, NotFound, change_counts, state_after
from api.schemas import ReviewSubmit
from api.vocab import label_source

_c = ITEM.c


def label_view(label: Label, duplicate: bool) -> dict[str, Any]:
    return {
        "label_id": label.id,
        "pair_id": label.pair_id,
        "label": label.label,
        "both_bad": label.both_bad,
        "safety_flag": label.safety_flag,
        "rationale": label.rationale,
        "source": label.source,
        "annotator": label.annotator,
        "time_on_task_s": label.time_on_task_s,
        "prelabel_shown": label.prelabel_shown,
        "redaction_version": label.redaction_version,
        "idempotency_key": label.idempotency_key,
        "created_at": label.created_at,
        "duplicate": duplicate,
    }


def _same_answer(label: Label, body: ReviewSubmit) -> bool:
    return (label.label, label.both_bad, label.safety_flag, label.rationale) == (
        body.stored_label(),
        body.both_bad,
        body.safety_flag,
        body.rationale,
    )


def _own_lease(session: Session, lease_id: int, reviewer: Reviewer) -> ReviewLease:
    lease = session.get(ReviewLease, lease_id)
    if lease is None:
        raise NotFound(f"lease {lease_id} not found")
    if lease.reviewer_id != reviewer.id:
        raise Forbidden(f"lease {lease_id} belongs to another reviewer")
    return lease


def _take_lease(session: Session, lease_id: int, new_state: str, **values: Any) -> str | None:
    """Move a lease from active (or expired) to ``new_state``; return the state it left."""
    for old in ("active", "expired"):
        moved = session.execute(
            sa_update(ReviewLease)
            .where(ReviewLease.id == lease_id, ReviewLease.state == old)  # type: ignore[arg-type]
            .values(state=new_state, finished_at=utcnow(), **values)
            .returning(ReviewLease.id)
            .execution_options(synchronize_session=False)
        ).first()
        if moved is not None:
            return old
    return None


def _retake_slot(session: Session, item_id: int, now: datetime) -> bool:
    """Count a late label on its item if a slot is still free; False if none is.

    One conditional UPDATE: the row's own current counters decide, so a reviewer claiming
    the slot at the same moment and this submit cannot both have it (on PostgreSQL the loser
    re-checks the condition on the winner's row; on SQLite writes are serialized).
    """
    taken = session.execute(
        sa_update(ITEM)
        .where(
            _c.id == item_id,
            _c.state == "open",
            _c.labels_done + _c.leases_active < _c.labels_needed,
        )
        .values(labels_done=_c.labels_done + 1, state=state_after(1, 0), updated_at=now)
        .returning(_c.id)
    ).first()
    return taken is not None


def _late_conflict(session: Session, lease: ReviewLease) -> Conflict:
    item = session.get(ReviewItem, lease.item_id)
    state = item.state if item is not None else "stale"
    why = {
        "done": "it already has all the labels it needs",
        "stale": "the pair was re-routed and no longer needs review",
    }.get(state, "another reviewer holds its free slot")
    return Conflict(
        f"lease {lease.id} expired at {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC and the item was "
        f"reassigned ({why}); your label was not stored. Take the next item."
    )


def submit_label(
    engine: Engine, lease_id: int, reviewer: Reviewer, body: ReviewSubmit
) -> tuple[dict[str, Any], bool]:
    """Store a reviewer's label for a lease. Returns (label, created); a repeat is a no-op.

    A late submit (the lease expired and gave its slot back) is stored only if the item
    still has a free slot, which it then takes: a human label is worth keeping, but not at
    the price of a label more than the item needs or of another reviewer's slot. If the slot
    went to someone else (or the item is done or no longer queued) it is refused with a
    409 (:class:`Conflict`). A lease still active counts as usual, even past its expiry:
    no one else can have its slot until it is expired.
    """
    with Session(engine, expire_on_commit=False) as session:
        lease = _own_lease(session, lease_id, reviewer)
        if body.prelabel_shown is not None and body.prelabel_shown != lease.prelabel_shown:
            raise Invalid(
                f"prelabel_shown={body.prelabel_shown} but the server served this item with "
                f"prelabel_shown={lease.prelabel_shown}"
            )
        left = _take_lease(session, lease_id, "submitted")
        if left is None:
            session.rollback()
            lease = _own_lease(session, lease_id, reviewer)
            if lease.state == "skipped":
                raise Conflict(f"lease {lease_id} was skipped; take the next item instead")
            label = session.get(Label, lease.label_id) if lease.label_id else None
            if label is None:
                raise Conflict(f"lease {lease_id} is {lease.state}")
            if not _same_answer(label, body):
                raise Conflict(
                    f"lease {lease_id} was already labelled {label.label}"
                    f"{' (both bad)' if label.both_bad else ''}; a different answer is not accepted"
                )
            return label_view(label, duplicate=True), False
        if left == "expired" and not _retake_slot(session, lease.item_id, utcnow()):
            session.rollback()  # the lease stays expired; nothing was stored
            raise _late_conflict(session, lease)
        item = session.get(ReviewItem, lease.item_id)
        pair = session.get(Pair, lease.pair_id)
        decision = session.get(Decision, pair.decision_id) if pair and pair.decision_id else None
        label = Label(
            project_id=lease.project_id,
            pair_id=lease.pair_id,
            label=body.stored_label(),
            both_bad=body.both_bad,
            safety_flag=body.safety_flag,
            rationale=body.rationale,
            # Audit labels are the random sample calibration's guarantee rests on.
            source=label_source(decision.reasons if decision is not None else None),
            annotator=reviewer.name,
            idempotency_key=body.idempotency_key or f"review-lease-{lease_id}",
            time_on_task_s=body.time_on_task_s,
            prelabel_shown=lease.prelabel_shown,
            redaction_version=lease.redaction_version,
        )
        session.add(label)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise Conflict(
                f"idempotency_key {label.idempotency_key!r} was already used for another label"
            ) from None
        session.execute(
            sa_update(ReviewLease)
            .where(ReviewLease.id == lease_id)  # type: ignore[arg-type]
            .values(label_id=label.id)
            .execution_options(synchronize_session=False)
        )
        if left == "active":  # a late label took its slot back above
            change_counts(session, lease.item_id, 1, -1)
        if body.safety_flag and item is not None and item.queue == "review":
            _escalate(session, item)
        session.commit()
        return label_view(label, duplicate=False), True


def _escalate(session: Session, item: ReviewItem) -> None:
    """A reviewer's safety flag puts the pair in front of the incident reviewers too."""
    now = utcnow()
    insert_ignore(
        session,
        ITEM,
        [
            {
                "project_id": item.project_id,
                "pair_id": item.pair_id,
                "queue": "incident",
                "origin": "escalation",
                "decision_id": item.decision_id,
                "state": "open",
                "labels_needed": 1,
                "labels_done": 0,
                "leases_active": 0,
                "uncertainty": item.uncertainty,
                # Safety first: an escalation outranks every routine incident.
                "priority": 2.0,
                "selected_by": "escalation",
                "is_audit": False,
                "reasons": ["reviewer_safety_flag", *item.reasons],
                "created_at": now,
                "updated_at": now,
            }
        ],
        ["pair_id", "queue"],
    )


def skip_item(engine: Engine, lease_id: int, reviewer: Reviewer, reason: str) -> dict[str, Any]:
    """Give an item back with a reason; this reviewer will not be served it again."""
    reason = reason.strip()
    if not reason:
        raise Invalid("a skip needs a reason")
    with Session(engine, expire_on_commit=False) as session:
        lease = _own_lease(session, lease_id, reviewer)
        left = _take_lease(session, lease_id, "skipped", skip_reason=reason)
        if left is None:
            session.rollback()
            lease = _own_lease(session, lease_id, reviewer)
            if lease.state == "skipped":
                return {"lease_id": lease_id, "state": "skipped", "duplicate": True}
            raise Conflict(f"lease {lease_id} is {lease.state}; it cannot be skipped")
        if left == "active":
            change_counts(session, lease.item_id, 0, -1)
        session.commit()
    return {"lease_id": lease_id, "state": "skipped", "duplicate": False}
