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
from sqlmodel import Session, col, select

from api import audit
from api.db import insert_ignore
from api.models import (
    Decision,
    Label,
    Pair,
    Project,
    Reviewer,
    ReviewerProject,
    ReviewItem,
    ReviewLease,
    utcnow,
)
from api.review import quality
from api.review.queue import (
    ADJUDICATION_QUEUE,
    ITEM,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ReviewerPaused,
    change_counts,
    state_after,
)
from api.review.redacted_pairs import ensure_redactions
from api.schemas import ReviewSubmit, label_aspects_problem, stored_aspect_labels
from api.vocab import LabelSource, label_source

_c = ITEM.c


def label_view(label: Label, duplicate: bool) -> dict[str, Any]:
    return {
        "label_id": label.id,
        "pair_id": label.pair_id,
        "label": label.label,
        "aspects": label.aspects,
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
        "warnings": warnings_for(label),
    }


def warnings_for(label: Label) -> list[dict[str, str]]:
    """What the reviewer is told about a stored label (gently: it is stored either way)."""
    if not label.speed_flagged:
        return []
    return [
        {
            "code": "too_fast",
            "message": "That was quicker than it takes to read this pair, so this label will not be "
            "used to calibrate the automation. Take the time to read both responses in full.",
        }
    ]


def too_fast(project: Project, pair: Pair, seconds: float) -> bool:
    """Was a label on ``pair`` given in less than the project's minimum reading time?"""
    n_chars = len(pair.prompt) + len(pair.response_a) + len(pair.response_b)
    return seconds < quality.min_reading_seconds(project.routing_settings(), n_chars)


def _seconds_on(lease: ReviewLease, body: ReviewSubmit) -> float:
    # The server's clock since the lease was taken; a client's own shorter figure (the app
    # times the page actually shown) counts too, a longer one cannot hide a quick answer.
    elapsed = (utcnow() - lease.leased_at).total_seconds()
    return elapsed if body.time_on_task_s is None else min(elapsed, body.time_on_task_s)


def _same_answer(label: Label, body: ReviewSubmit) -> bool:
    return (label.label, label.both_bad, label.safety_flag, label.rationale, label.aspects) == (
        body.stored_label(),
        body.both_bad,
        body.safety_flag,
        body.rationale,
        stored_aspect_labels(body.aspects),
    )


def _check_aspects(project: Project | None, body: ReviewSubmit) -> None:
    """A reviewer answers every required aspect of the project (422 naming the one missing)."""
    if project is not None and (
        problem := label_aspects_problem(body.aspects, project.aspect_settings(), complete=True)
    ):
        raise Invalid(problem)


def _own_lease(session: Session, lease_id: int, reviewer: Reviewer) -> ReviewLease:
    lease = session.get(ReviewLease, lease_id)
    if lease is None:
        raise NotFound(f"lease {lease_id} not found")
    if lease.reviewer_id != reviewer.id:
        raise Forbidden(f"lease {lease_id} belongs to another reviewer")
    return lease


def _still_assigned(session: Session, reviewer: Reviewer, project_id: int) -> None:
    """403 unless the reviewer is (still) assigned to the project: a lease taken before an
    admin removed them gives no right to label after (an adjudication lease neither)."""
    if session.get(ReviewerProject, (reviewer.id, project_id)) is None:
        raise Forbidden(f"you are no longer assigned to project {project_id}")


def _take_lease(session: Session, lease_id: int, new_state: str, **values: Any) -> str | None:
    """Move a lease from active (or expired) to ``new_state``; return the state it left."""
    for old in ("active", "expired"):
        moved = session.execute(
            sa_update(ReviewLease)
            .where(col(ReviewLease.id) == lease_id, col(ReviewLease.state) == old)
            .values(state=new_state, finished_at=utcnow(), **values)
            .returning(col(ReviewLease.id))
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
        _still_assigned(session, reviewer, lease.project_id)
        if body.prelabel_shown is not None and body.prelabel_shown != lease.prelabel_shown:
            raise Invalid(
                f"prelabel_shown={body.prelabel_shown} but the server served this item with "
                f"prelabel_shown={lease.prelabel_shown}"
            )
        left = _take_lease(session, lease_id, "submitted")
        if left is None:
            session.rollback()
            return _repeated_submit(session, lease_id, reviewer, body), False
        if left == "expired" and not _retake_slot(session, lease.item_id, utcnow()):
            session.rollback()  # the lease stays expired; nothing was stored
            raise _late_conflict(session, lease)
        item = session.get(ReviewItem, lease.item_id)
        pair = session.get(Pair, lease.pair_id)
        project = session.get(Project, lease.project_id)
        try:
            _check_aspects(project, body)
        except Invalid:
            session.rollback()  # the lease stays active: the reviewer may answer again
            raise
        label = _new_label(session, lease, reviewer, body, item, pair, project)
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
            .where(col(ReviewLease.id) == lease_id)
            .values(label_id=label.id)
            .execution_options(synchronize_session=False)
        )
        if left == "active":  # a late label took its slot back above
            change_counts(session, lease.item_id, 1, -1)
        if body.safety_flag and item is not None and item.queue == "review":
            _escalate(session, item)
        if project is not None:
            quality.check_after_label(session, project, label)
        # Last: the log's turn is taken after every other lock (see api/audit.py).
        audit.record_event(
            session,
            audit.AuditKind.LABEL_WRITTEN,
            project_id=label.project_id,
            subject=f"pair:{label.pair_id}",
            payload=dict(audit.labels_payload([label.model_dump()]), lease_id=lease_id),
        )
        session.commit()
        return label_view(label, duplicate=False), True


def _repeated_submit(
    session: Session, lease_id: int, reviewer: Reviewer, body: ReviewSubmit
) -> dict[str, Any]:
    """The stored label of a lease already answered, if ``body`` gives the same answer; else a 409."""
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
    return label_view(label, duplicate=True)


def _new_label(
    session: Session,
    lease: ReviewLease,
    reviewer: Reviewer,
    body: ReviewSubmit,
    item: ReviewItem | None,
    pair: Pair | None,
    project: Project | None,
) -> Label:
    """The label ``body`` makes for ``lease``, with the source its decision gives it (not stored yet)."""
    decision = session.get(Decision, pair.decision_id) if pair and pair.decision_id else None
    status = quality.status_of(session, lease.project_id, reviewer.id)
    source = label_source(decision.reasons if decision is not None else None)
    if item is not None and item.origin == "honeypot":
        source = LabelSource.HONEYPOT  # graded against the known answer, never the pair's label
    if lease.queue == ADJUDICATION_QUEUE:
        source = LabelSource.ADJUDICATED  # a senior reviewer settles a dispute (review/adjudication.py)
    return Label(
        project_id=lease.project_id,
        pair_id=lease.pair_id,
        label=body.stored_label(),
        aspects=stored_aspect_labels(body.aspects),
        both_bad=body.both_bad,
        safety_flag=body.safety_flag,
        rationale=body.rationale,
        # Audit labels are the random sample calibration's guarantee rests on.
        source=source,
        annotator=reviewer.name,
        idempotency_key=body.idempotency_key or f"review-lease-{lease.id}",
        time_on_task_s=body.time_on_task_s,
        prelabel_shown=lease.prelabel_shown,
        redaction_version=lease.redaction_version,
        speed_flagged=pair is not None
        and project is not None
        and too_fast(project, pair, _seconds_on(lease, body)),
        # A paused reviewer's label on a lease they still held is kept but held back too.
        quarantined=status is not None and status.paused,
    )


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


# --- edit and undo: append-only revisions, and the reviewer's own history -------------------


def _own_label(session: Session, label_id: int, reviewer: Reviewer) -> Label:
    label = session.get(Label, label_id)
    if label is None:
        raise NotFound(f"label {label_id} not found")
    if label.annotator != reviewer.name or label.source not in quality.REVIEWER_SOURCES:
        raise Forbidden(f"label {label_id} is not one of your review labels")
    _still_assigned(session, reviewer, label.project_id)
    return label


def revise_label(
    engine: Engine, label_id: int, reviewer: Reviewer, body: ReviewSubmit
) -> tuple[dict[str, Any], bool]:
    """Replace one of the reviewer's current labels with a new answer. Returns (label, created).

    Append-only: a new label row (same pair, same source) and the old one's
    ``superseded_by_id`` pointing at it; both are kept. Only the current label can be
    revised (409 otherwise); a retry of the same revision returns it (``duplicate``). The new
    label counts towards the next refit like any new label.
    """
    with Session(engine, expire_on_commit=False) as session:
        old = _own_label(session, label_id, reviewer)
        key = body.idempotency_key or f"revise-{label_id}"
        if old.superseded_by_id is not None:
            newer = session.get(Label, old.superseded_by_id)
            if newer is not None and newer.idempotency_key == key and _same_answer(newer, body):
                return {**label_view(newer, duplicate=True), "supersedes": old.id}, False
            raise Conflict(
                f"label {label_id} was already replaced by label {old.superseded_by_id}; revise that one"
            )
        project = session.get(Project, old.project_id)
        _check_aspects(project, body)
        status = quality.status_of(session, old.project_id, reviewer.id)
        if status is not None and status.paused:
            raise ReviewerPaused(quality.pause_detail(status))
        pair = session.get(Pair, old.pair_id)
        speed_flagged = old.speed_flagged
        if body.time_on_task_s is not None and pair is not None and project is not None:
            speed_flagged = too_fast(project, pair, body.time_on_task_s)
        new = Label(
            project_id=old.project_id,
            pair_id=old.pair_id,
            label=body.stored_label(),
            aspects=stored_aspect_labels(body.aspects),
            both_bad=body.both_bad,
            safety_flag=body.safety_flag,
            rationale=body.rationale,
            source=old.source,
            annotator=reviewer.name,
            idempotency_key=key,
            time_on_task_s=body.time_on_task_s,
            prelabel_shown=old.prelabel_shown,
            redaction_version=old.redaction_version,
            speed_flagged=speed_flagged,
            quarantined=old.quarantined,
        )
        session.add(new)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise Conflict(f"idempotency_key {key!r} was already used for another label") from None
        taken = session.execute(
            sa_update(Label)
            .where(col(Label.id) == old.id, col(Label.superseded_by_id).is_(None))
            .values(superseded_by_id=new.id)
            .returning(col(Label.id))
            .execution_options(synchronize_session=False)
        ).first()
        if taken is None:  # a concurrent revision won
            session.rollback()
            raise Conflict(f"label {label_id} was just replaced by another revision; revise the newest")
        if body.safety_flag and not old.safety_flag:
            item = session.exec(
                select(ReviewItem).where(ReviewItem.pair_id == old.pair_id, ReviewItem.queue == "review")
            ).first()
            if item is not None:
                _escalate(session, item)
        if project is not None:
            quality.check_after_label(session, project, new)
        # Last before the commit: the audit log's head row is the last lock this transaction takes.
        audit.record_event(
            session,
            audit.AuditKind.LABEL_SUPERSEDED,
            project_id=old.project_id,
            subject=f"label:{old.id}",
            payload=dict(audit.labels_payload([new.model_dump()]), superseded_label_id=old.id),
        )
        session.commit()
        return {**label_view(new, duplicate=False), "supersedes": old.id}, True


def label_history(engine: Engine, project_id: int, reviewer: Reviewer, limit: int) -> list[dict[str, Any]]:
    """The reviewer's own current labels on the project, newest first, with the redacted pair."""
    with Session(engine, expire_on_commit=False) as session:
        labels = list(
            session.exec(
                select(Label)
                .where(
                    Label.project_id == project_id,
                    Label.annotator == reviewer.name,
                    col(Label.source).in_(quality.REVIEWER_SOURCES),
                    col(Label.superseded_by_id).is_(None),
                )
                .order_by(col(Label.id).desc())
                .limit(limit)
            )
        )
        pairs = [session.get(Pair, pid) for pid in dict.fromkeys(label.pair_id for label in labels)]
        shown = ensure_redactions(session, [p for p in pairs if p is not None])
        session.commit()
    return [
        {
            "label_id": label.id,
            "pair_id": label.pair_id,
            "label": label.label,
            "aspects": label.aspects,
            "both_bad": label.both_bad,
            "safety_flag": label.safety_flag,
            "rationale": label.rationale,
            "created_at": label.created_at,
            "prompt": shown[label.pair_id].prompt,
            "response_a": shown[label.pair_id].response_a,
            "response_b": shown[label.pair_id].response_b,
        }
        for label in labels
        if label.pair_id in shown
    ]
