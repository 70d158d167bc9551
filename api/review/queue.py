"""The human review queue: items, leases, labels, redaction, priority.

A pair the router sends to a human becomes a ``review_item`` in one of two queues:
``incident`` (route incident, or anything safety-flagged) or ``review`` (the rest).
Reviewers take items with leases (``review_lease``): an item has ``labels_needed`` slots
(the project's ``review_overlap``), each lease holds one until it is submitted, skipped or
expires, so two reviewers never hold the same slot and an abandoned item comes back.
A reviewer never gets the same item twice (one lease row per item and reviewer). A label
submitted after its lease expired is stored only if the item still has a free slot, which
it takes back; if the slot went to another reviewer (or the item is done or re-routed),
it is refused, so an item never collects more labels than it needs.

Order: ``priority`` (higher first). It starts as the uncertainty (1 - decision confidence)
and :func:`reprioritize` (off the request path) rewrites the top of each queue with the
hybrid active-learning order (uncertainty + k-center diversity in embedding space). Audit
items get a random priority instead: they must stay a random sample, not the hard cases.

Reviewers see redacted text only (``pair_redaction``, stored by :mod:`api.review.redacted_pairs`);
token -> original lives apart in ``redaction_mapping`` for admins. Labels go to the ``label``
table that calibration reads.

Concurrency: on PostgreSQL a claim locks its candidate with FOR UPDATE SKIP LOCKED; on
SQLite every claim starts with a write, so claims are serialized by the database lock.
Counters change only in single UPDATE statements whose CASE expressions read the row's
own current values, so no read-modify-write race can lose a slot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ColumnElement, and_, bindparam, case
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, exists, select

from api.db import chunks, insert_ignore, rows_changed
from api.models import (
    Decision,
    Honeypot,
    Pair,
    PairRedaction,
    Project,
    ReviewAssignment,
    Reviewer,
    ReviewItem,
    ReviewLease,
    table_of,
    utcnow,
)
from api.review import filters, quality
from api.review.assignments import assigned_to, held_for_others
from api.review.honeypots import claim_honeypot
from api.review.redacted_pairs import ensure_redactions
from api.schemas import QueueFilter, RoutingSettings
from api.vocab import REASON_TEXT, unit_draw

QUEUES: tuple[str, ...] = ("review", "incident")
# Disputed pairs for senior reviewers, filled and served by api/review/adjudication.py only.
ADJUDICATION_QUEUE = "adjudication"
SELECTED_TEXT: dict[str, str] = {
    "uncertainty": "Picked early because the judges are unsure about it.",
    "hybrid": "Picked early because the judges are unsure and it differs from pairs already reviewed.",
    "audit": "Picked at random for a quality check.",
    "escalation": "Escalated for a safety review.",
}


# --- small helpers -----------------------------------------------------------------------


def prelabel_shown_for(pair_id: int, reviewer_id: int, rate: float, is_audit: bool) -> bool:
    """Whether this reviewer sees the judge's pre-label for this pair.

    Deterministic per (pair, reviewer) so a re-served lease shows the same thing. Audit
    labels feed the calibration guarantee, so they are never primed with the judge's answer.
    """
    return not is_audit and unit_draw(f"prelabel:{pair_id}:{reviewer_id}") < rate


def uncertainty_of(confidence: float | None) -> float:
    return 1.0 if confidence is None else float(min(1.0, max(0.0, 1.0 - confidence)))


def queue_for(route: str | None, reasons: Sequence[str], pair_safety_flag: bool) -> str | None:
    if route == "incident":
        return "incident"
    if route == "review":
        return "incident" if pair_safety_flag or "safety_flag" in reasons else "review"
    return None


ITEM = table_of(ReviewItem)
_c = ITEM.c
# The candidate a claim looks at (an alias: the claim's UPDATE targets the table itself).
ITEM_ALIAS = aliased(ReviewItem)


def state_after(done_delta: int, active_delta: int) -> Any:
    """SQL for an item's state after its counters change by these amounts (stale stays stale)."""
    done = _c.labels_done + done_delta
    active = _c.leases_active + active_delta
    return case(
        (_c.state == "stale", "stale"),
        (done >= _c.labels_needed, "done"),
        (done + active >= _c.labels_needed, "leased"),
        else_="open",
    )


def change_counts(session: Session, item_id: int, done_delta: int, active_delta: int) -> None:
    session.execute(
        sa_update(ITEM)
        .where(_c.id == item_id)
        .values(
            labels_done=_c.labels_done + done_delta,
            leases_active=_c.leases_active + active_delta,
            state=state_after(done_delta, active_delta),
            updated_at=utcnow(),
        )
    )


# --- enqueue (the hook the decision writer calls) ----------------------------------------

_PAIR = table_of(Pair)
_DECISION = table_of(Decision)
_PROJECT = table_of(Project)
_DEFAULT_OVERLAP: int = RoutingSettings.model_fields["review_overlap"].default

# The hook runs inside the worker's store transaction for every batch, so its statements are
# built once (no per-call construction and cache-key work) and run on the Core connection.
# One read per batch: each pair's current decision, its project's review overlap, and its
# routing items (none, or one per queue), one row per (pair, item).
_HOOK_READ = (
    sa_select(
        _PAIR.c.id,
        _PAIR.c.project_id,
        _PAIR.c.safety_flag,
        _DECISION.c.id.label("decision_id"),
        _DECISION.c.route,
        _DECISION.c.reasons,
        _DECISION.c.confidence,
        _PROJECT.c.routing["review_overlap"].as_integer().label("overlap"),
        _c.id.label("item_id"),
        _c.queue,
        _c.state,
    )
    .select_from(
        _PAIR.join(_DECISION, _DECISION.c.id == _PAIR.c.decision_id)
        .join(_PROJECT, _PROJECT.c.id == _PAIR.c.project_id)
        .outerjoin(ITEM, and_(_c.pair_id == _PAIR.c.id, _c.origin == "routing"))
    )
    .where(_PAIR.c.id.in_(bindparam("pair_ids", expanding=True)))
    .order_by(_PAIR.c.id, _c.id)
)
_HOOK_STALE = (
    sa_update(ITEM)
    .where(_c.id.in_(bindparam("item_ids", expanding=True)), _c.state.in_(("open", "leased")))
    .values(state="stale", updated_at=bindparam("b_now"))
)
_HOOK_FOLLOW = (
    sa_update(ITEM)
    .where(_c.id == bindparam("b_id"))
    .values(
        decision_id=bindparam("b_decision_id"),
        uncertainty=bindparam("b_uncertainty"),
        priority=bindparam("b_priority"),
        selected_by=bindparam("b_selected_by"),
        is_audit=bindparam("b_is_audit"),
        reasons=bindparam("b_reasons", type_=JSON),
        updated_at=bindparam("b_updated_at"),
        # A stale item that is routed back reopens with the state its counters give.
        state=case(
            (
                _c.state == "stale",
                case(
                    (_c.labels_done >= _c.labels_needed, "done"),
                    (_c.labels_done + _c.leases_active >= _c.labels_needed, "leased"),
                    else_="open",
                ),
            ),
            else_=_c.state,
        ),
    )
)


def on_decisions_written(session: Session, pair_ids: Sequence[int]) -> int:
    """Bring the queue in line with these pairs' current decisions; call inside the
    transaction that wrote the decisions (and set pair.decision_id). Returns items added.

    A pair routed to review/incident gets an item in its queue (or its item follows the new
    decision); a pair routed elsewhere has its unfinished item marked stale. Items already
    labelled stay as they are: their labels count.

    Per batch: one read, then at most one statement each for stale items, items that follow
    a new decision, and new items (embeddings and the hybrid order come later, off this path).
    """
    if not pair_ids:
        return 0
    session.flush()  # the read below is Core, which does not autoflush pending ORM writes
    connection = session.connection()
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    stale: list[int] = []
    for part in chunks(list(dict.fromkeys(pair_ids))):
        # pair id -> (its first row, its routing items); rows come ordered by pair.
        found: dict[int, tuple[Any, list[Any]]] = {}
        for row in connection.execute(_HOOK_READ, {"pair_ids": list(part)}):
            entry = found.get(row.id)
            if entry is None:
                entry = found[row.id] = (row, [])
            if row.item_id is not None:
                entry[1].append(row)
        for row, items in found.values():
            reasons = list(row.reasons or [])
            target = queue_for(row.route, reasons, row.safety_flag)
            current = None
            for item in items:
                if item.queue == target:
                    current = item
                elif item.state in ("open", "leased"):
                    stale.append(item.item_id)
            if target is None:
                continue
            fields = _ranking_fields(row.id, row.decision_id, reasons, row.confidence)
            if current is None:
                overlap = _DEFAULT_OVERLAP if row.overlap is None else row.overlap
                inserts.append(_new_item(row.project_id, row.id, target, overlap, fields, now))
            else:
                follow = {f"b_{name}": value for name, value in fields.items()}  # _HOOK_FOLLOW's names
                updates.append({"b_id": current.item_id, "b_updated_at": now, **follow})
    for part in chunks(stale):
        connection.execute(_HOOK_STALE, {"item_ids": list(part), "b_now": now})
    if updates:
        connection.execute(_HOOK_FOLLOW, updates)
    if inserts:
        insert_ignore(session, ITEM, inserts, ["pair_id", "queue"])
    return len(inserts)


def _ranking_fields(
    pair_id: int, decision_id: int, reasons: list[str], confidence: float | None
) -> dict[str, Any]:
    """An item's fields that follow its pair's decision: the decision, how uncertain the judges
    are, the priority and why the item was selected."""
    # Audits and the calibration sample are random samples; keep them out of the ranking.
    is_audit = "audit" in reasons or "calibration_sample" in reasons
    uncertainty = uncertainty_of(confidence)
    return {
        "decision_id": decision_id,
        "uncertainty": uncertainty,
        # Audits are a random sample: a random priority interleaves them with the rest.
        "priority": unit_draw(f"audit:{pair_id}") if is_audit else uncertainty,
        "selected_by": "audit" if is_audit else "uncertainty",
        "is_audit": is_audit,
        "reasons": reasons,
    }


def _new_item(
    project_id: int, pair_id: int, queue: str, overlap: int, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A new open routing item of ``queue`` needing ``overlap`` labels, as a row to insert."""
    return {
        **fields,
        "updated_at": now,
        "project_id": project_id,
        "pair_id": pair_id,
        "queue": queue,
        "origin": "routing",
        "state": "open",
        "labels_needed": overlap,
        "labels_done": 0,
        "leases_active": 0,
        "created_at": now,
    }


def withdraw(session: Session, pair_ids: Sequence[int]) -> int:
    """Pairs sent back to judging leave the queues until their new decision: their unfinished
    routing items turn stale (labels already given stay). Returns the items withdrawn."""
    n = 0
    for part in chunks(list(dict.fromkeys(pair_ids))):
        result = session.execute(
            sa_update(ITEM)
            .where(_c.pair_id.in_(part), _c.origin == "routing", _c.state.in_(("open", "leased")))
            .values(state="stale", updated_at=utcnow())
        )
        n += rows_changed(result)
    return n


def backfill(engine: Engine) -> int:
    """Enqueue decided pairs the hook has not seen (a database from before the queue
    existed, or decisions written by code that did not call the hook)."""
    current = aliased(ReviewItem)
    with Session(engine) as session:
        missing = session.exec(
            select(Pair.id)
            .join(Decision, col(Decision.id) == col(Pair.decision_id))
            .where(
                col(Decision.route).in_(("review", "incident")),
                ~exists().where(
                    col(current.pair_id) == col(Pair.id),
                    col(current.origin) == "routing",
                    col(current.decision_id) == col(Pair.decision_id),
                ),
            )
        ).all()
        moved = session.exec(
            select(col(current.pair_id))
            .join(Pair, col(Pair.id) == col(current.pair_id))
            .where(
                col(current.origin) == "routing",
                col(current.state).in_(("open", "leased")),
                col(current.decision_id) != Pair.decision_id,
            )
        ).all()
        ids = sorted(set(missing) | set(moved))
        added = 0
        for part in chunks(ids, 5000):
            added += on_decisions_written(session, part)
            session.commit()
    return added


# --- leasing -----------------------------------------------------------------------------


class QueueError(Exception):
    status = 400
    detail: str | dict[str, str]  # a message, or a message with fields (ReviewerPaused)

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(QueueError):
    status = 404


class Forbidden(QueueError):
    status = 403


class Conflict(QueueError):
    status = 409


class Invalid(QueueError):
    status = 422


class ReviewerPaused(QueueError):
    """423: the reviewer is paused on the project (api/review/quality.py)."""

    status = 423

    def __init__(self, detail: dict[str, str]) -> None:
        super().__init__(detail["message"])
        self.detail = detail


def expire_leases(session: Session, now: datetime, project_id: int | None = None) -> int:
    """Return the slots of leases past their expiry to their items."""
    statement = (
        sa_update(ReviewLease)
        .where(col(ReviewLease.state) == "active", col(ReviewLease.expires_at) < now)
        .values(state="expired", finished_at=now)
        .returning(col(ReviewLease.item_id))
        .execution_options(synchronize_session=False)
    )
    if project_id is not None:
        statement = statement.where(col(ReviewLease.project_id) == project_id)
    expired = Counter(session.scalars(statement))
    for item_id, n in sorted(expired.items()):
        change_counts(session, item_id, 0, -n)
    return sum(expired.values())


def _claim(
    session: Session,
    project_id: int,
    queue: str,
    reviewer_id: int,
    now: datetime,
    flt: QueueFilter | None = None,
) -> tuple[Any, bool]:
    """Take one free slot of the best item this reviewer has not seen that matches ``flt``:
    one assigned to them first, else the pool's best that no one else's assignment holds.
    Returns the item row (or None) and whether it was assigned to them."""
    mine = assigned_to(ITEM_ALIAS, project_id, reviewer_id)
    row = _claim_where(session, project_id, queue, reviewer_id, now, flt, mine)
    if row is not None:
        return row, True
    pool = ~held_for_others(ITEM_ALIAS, reviewer_id)
    return _claim_where(session, project_id, queue, reviewer_id, now, flt, pool), False


def _claim_where(
    session: Session,
    project_id: int,
    queue: str,
    reviewer_id: int,
    now: datetime,
    flt: QueueFilter | None,
    which: ColumnElement[bool],
) -> Any:
    candidate = ITEM_ALIAS
    mine = col(ReviewLease.reviewer_id) == reviewer_id
    seen: ColumnElement[bool] = exists().where(col(ReviewLease.item_id) == col(candidate.id), mine)
    had_pair = exists().where(col(ReviewLease.pair_id) == col(candidate.pair_id), mine)
    if queue == "incident":
        # An escalation goes to someone else than the reviewer who raised it (they had the
        # pair already): a safety flag deserves a second pair of eyes.
        seen = seen | ((col(candidate.origin) == "escalation") & had_pair)
    else:
        # A honeypot pair may also be a routine item: whoever answered it as a honeypot is
        # not asked again (honeypots are few: the lease scan runs for them only).
        seen = seen | (exists().where(col(Honeypot.pair_id) == col(candidate.pair_id)) & had_pair)
    if queue == ADJUDICATION_QUEUE:
        # Nobody settles a dispute they are part of.
        seen = seen | exists().where(col(ReviewLease.pair_id) == col(candidate.pair_id), mine)
    best = (
        select(col(candidate.id))
        .where(col(candidate.project_id) == project_id, col(candidate.queue) == queue)
        .where(col(candidate.state) == "open", ~seen, which)
        .where(*filters.conditions(flt, candidate, session.get_bind().dialect.name))
        .order_by(col(candidate.priority).desc(), col(candidate.id).desc())
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Skip rows another reviewer is claiming right now instead of queueing behind them.
        chosen = session.execute(best.with_for_update(skip_locked=True, of=candidate)).scalar()
        if chosen is None:
            return None
        target = _c.id == chosen
    else:
        target = _c.id == best.scalar_subquery()
    statement = (
        sa_update(ITEM)
        .where(target, _c.state == "open")
        .values(leases_active=_c.leases_active + 1, state=state_after(0, 1), updated_at=now)
        .returning(*ITEM.c)
    )
    return session.execute(statement).first()


def next_item(
    engine: Engine,
    project: Project,
    reviewer: Reviewer,
    queue: str = "review",
    lease_seconds: float = 600.0,
    flt: QueueFilter | None = None,
) -> dict[str, Any] | None:
    """Lease the next item of ``queue`` for ``reviewer`` (or give back the one they hold, even
    if it does not match ``flt``: a held lease is answered or skipped first)."""
    if queue not in (*QUEUES, ADJUDICATION_QUEUE):
        raise Invalid(f"queue must be one of {list(QUEUES)}, got {queue!r}")
    if flt is not None and flt.text:
        # Redacting pairs is slow (tens of ms each): done before the claim takes the write lock.
        with Session(engine) as session:
            filters.prepare_search(session, project.id, (queue,), flt)
            session.commit()
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        # A write first: on SQLite it takes the database write lock for the whole claim.
        expire_leases(session, now, project.id)
        status = quality.status_of(session, project.id, reviewer.id)
        if status is not None and status.paused:
            session.commit()
            raise ReviewerPaused(quality.pause_detail(status))
        held = session.exec(
            select(ReviewLease)
            .where(
                ReviewLease.reviewer_id == reviewer.id,
                ReviewLease.state == "active",
                ReviewLease.project_id == project.id,
                ReviewLease.queue == queue,
                col(ReviewLease.expires_at) > now,
            )
            .order_by(col(ReviewLease.id).desc())
            .limit(1)
        ).first()
        if held is not None:
            item = session.get_one(ReviewItem, held.item_id)
            payload = _payload(session, held, item)
            assignment = session.get(ReviewAssignment, item.id)
            payload["assigned"] = assignment is not None and assignment.reviewer_id == reviewer.id
            session.commit()
            return payload
        assigned = False
        row = claim_honeypot(session, project, reviewer.id, now, flt) if queue == "review" else None
        if row is None:
            row, assigned = _claim(session, project.id, queue, reviewer.id, now, flt)
        if row is None:
            session.commit()
            return None
        item = ReviewItem.model_validate(dict(row._mapping))
        pair = session.get_one(Pair, item.pair_id)
        redaction = ensure_redactions(session, [pair])[item.pair_id]
        rate = project.routing_settings().show_prelabel_rate
        # A pair whose judges gave no label has no pre-label to show: record it as not shown.
        decision = session.get(Decision, item.decision_id) if item.decision_id is not None else None
        has_prelabel = decision is not None and decision.label is not None
        lease = ReviewLease(
            item_id=item.id,
            project_id=project.id,
            pair_id=item.pair_id,
            reviewer_id=reviewer.id,
            queue=queue,
            decision_id=item.decision_id,
            prelabel_shown=has_prelabel
            and prelabel_shown_for(item.pair_id, reviewer.id, rate, item.is_audit),
            redaction_version=redaction.version,
            leased_at=now,
            expires_at=now + timedelta(seconds=lease_seconds),
        )
        session.add(lease)
        session.flush()
        payload = _payload(session, lease, item, pair, redaction)
        session.commit()
        return {**payload, "assigned": assigned}


def _payload(
    session: Session,
    lease: ReviewLease,
    item: ReviewItem,
    pair: Pair | None = None,
    redaction: PairRedaction | None = None,
) -> dict[str, Any]:
    pair = pair or session.get_one(Pair, lease.pair_id)
    if redaction is None:
        redaction = ensure_redactions(session, [pair])[lease.pair_id]
    prelabel = None
    if lease.prelabel_shown and lease.decision_id is not None:
        decision = session.get(Decision, lease.decision_id)
        if decision is not None and decision.label is not None:
            prelabel = {"label": decision.label, "confidence": decision.confidence}
    reasons = list(item.reasons)
    labels_needed = item.labels_needed
    if item.origin == "honeypot":
        project = session.get(Project, lease.project_id)
        labels_needed = project.routing_settings().review_overlap if project is not None else 1
    if item.origin == "escalation":
        reasons = ["reviewer_safety_flag", *[r for r in reasons if r != "reviewer_safety_flag"]]
    return {
        "lease_id": lease.id,
        "item_id": item.id,
        "pair_id": lease.pair_id,
        "project_id": lease.project_id,
        "queue": lease.queue,
        "leased_at": lease.leased_at,
        "expires_at": lease.expires_at,
        "prompt": redaction.prompt,
        "response_a": redaction.response_a,
        "response_b": redaction.response_b,
        "redaction_version": redaction.version,
        "redacted_values": redaction.n_tokens,
        "why": {
            "reasons": [{"code": r, "text": REASON_TEXT.get(r, r)} for r in reasons],
            "selected_by": item.selected_by,
            "priority_text": SELECTED_TEXT.get(item.selected_by, ""),
            "uncertainty": item.uncertainty,
        },
        "safety": "safety_flag" in reasons or item.queue == "incident" and bool(pair and pair.safety_flag),
        "prelabel_shown": lease.prelabel_shown,
        "prelabel": prelabel,
        "labels_needed": labels_needed,
    }


def queue_is_empty_reason(
    session: Session, project_id: int, queue: str, flt: QueueFilter | None = None
) -> str:
    """Why there is nothing to serve, in words for the app."""
    waiting = filters.count_waiting(session, project_id, queue, None)
    busy = "held by other reviewers, assigned to someone else, or were already seen by you."
    if waiting and flt is not None and not flt.is_empty():
        matching = filters.count_waiting(session, project_id, queue, flt)
        if not matching:
            return f"No waiting item matches your filter ({waiting} item(s) wait in this queue)."
        return f"{matching} item(s) match your filter; they are {busy}"
    return f"{waiting} item(s) are {busy}" if waiting else "The queue is empty."
