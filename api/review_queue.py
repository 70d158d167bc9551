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

Reviewers see redacted text only (``pair_redaction``); token -> original lives apart in
``redaction_mapping`` for admins. Labels go to the ``label`` table that calibration reads.

Concurrency: on PostgreSQL a claim locks its candidate with FOR UPDATE SKIP LOCKED; on
SQLite every claim starts with a write, so claims are serialized by the database lock.
Counters change only in single UPDATE statements whose CASE expressions read the row's
own current values, so no read-modify-write race can lose a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PField
from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, and_, bindparam, case, func
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Field, Session, SQLModel, exists, select

from api.auth import Reviewer
from api.db import chunks
from api.models import Decision, Label, Pair, Project, RoutingSettings, utcnow
from judge.verdicts import side

log = logging.getLogger("prelabel.review")

QUEUES: tuple[str, ...] = ("review", "incident")
FIVE_POINT: tuple[str, ...] = ("A>>B", "A>B", "tie", "B>A", "B>>A")
LEASE_SECONDS = float(os.environ.get("PRELABEL_REVIEW_LEASE_SECONDS", "600"))
# SQLite allows 32766 bound parameters; stay far below it for IN (...) lists.
# Hybrid ordering covers the top of each queue only: k-center greedy is O(pool x k), and
# reviewers label hundreds of items an hour, so a re-ordered head of 200 is plenty.
PRIORITY_POOL = 2000
PRIORITY_TOP_K = 200
SELECTED_HISTORY = 1000

# Why a pair is in front of a reviewer, in words (routing reason codes -> text).
REASON_TEXT: dict[str, str] = {
    "judge_failed": "A judge call failed, so the panel's view is incomplete.",
    "order_sensitive": "A judge changed its verdict when the two responses were swapped.",
    "judges_disagree": "The judges on the panel disagree with each other.",
    "low_confidence": "The panel's majority is weak.",
    "safety_flag": "Possible safety issue, flagged by a judge or by the safety pre-check.",
    "both_bad": "The judges think both responses may be bad.",
    "gate_closed": "Automatic acceptance is off until enough human labels calibrate it.",
    "below_threshold": "The calibrated confidence is below the auto-accept threshold.",
    # Deliberately says nothing about the judge's confidence: that would invite a rubber stamp.
    "audit": "Random quality-check sample (audits keep the automation honest).",
    "calibration_sample": "Picked at random: labels on a random sample are what calibrate the automation.",
    "reviewer_safety_flag": "Another reviewer flagged this pair for a safety issue.",
}
SELECTED_TEXT: dict[str, str] = {
    "uncertainty": "Picked early because the judges are unsure about it.",
    "hybrid": "Picked early because the judges are unsure and it differs from pairs already reviewed.",
    "audit": "Picked at random for a quality check.",
    "escalation": "Escalated for a safety review.",
}


def label_source(reasons: list[str] | None) -> str:
    """Where a reviewer's label goes: the random samples calibrate, the rest is review."""
    if reasons and "audit" in reasons:
        return "audit"
    if reasons and "calibration_sample" in reasons:
        return "calibration"
    return "review"


# --- tables ------------------------------------------------------------------------------


class ReviewItem(SQLModel, table=True):
    __tablename__ = "review_item"
    __table_args__ = (
        UniqueConstraint("pair_id", "queue", name="uq_review_item_pair_queue"),
        # The next-item scan: equality on project, queue and state, then priority order.
        Index("ix_review_item_next", "project_id", "queue", "state", "priority", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    pair_id: int = Field(foreign_key="pair.id", index=True)
    queue: str  # review | incident
    origin: str = "routing"  # routing | escalation (a reviewer's safety flag)
    decision_id: int | None = None
    # open: a slot is free | leased: all free slots are leased | done | stale (re-routed away)
    state: str = "open"
    labels_needed: int = 1
    labels_done: int = 0
    leases_active: int = 0
    uncertainty: float = 1.0
    priority: float = 0.0
    selected_by: str = "uncertainty"  # uncertainty | hybrid | audit | escalation
    is_audit: bool = False
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ReviewLease(SQLModel, table=True):
    __tablename__ = "review_lease"
    __table_args__ = (
        UniqueConstraint("item_id", "reviewer_id", name="uq_review_lease_item_reviewer"),
        Index("ix_review_lease_expiry", "state", "expires_at"),
        Index("ix_review_lease_reviewer", "reviewer_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="review_item.id")
    project_id: int = Field(foreign_key="project.id", index=True)
    pair_id: int = Field(foreign_key="pair.id")
    reviewer_id: int = Field(foreign_key="reviewer.id")
    queue: str
    state: str = "active"  # active | submitted | skipped | expired
    decision_id: int | None = None  # the decision whose pre-label the reviewer could see
    prelabel_shown: bool = False
    redaction_version: str | None = None
    leased_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    finished_at: datetime | None = None
    skip_reason: str | None = Field(default=None, sa_column=Column(Text))
    label_id: int | None = None


class PairRedaction(SQLModel, table=True):
    """What reviewers see: the pair with PII replaced by per-pair tokens."""

    __tablename__ = "pair_redaction"

    pair_id: int = Field(foreign_key="pair.id", primary_key=True)
    version: str
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response_a: str = Field(sa_column=Column(Text, nullable=False))
    response_b: str = Field(sa_column=Column(Text, nullable=False))
    n_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class RedactionMapping(SQLModel, table=True):
    """Token -> original text, kept apart from what reviewers read: admins only."""

    __tablename__ = "redaction_mapping"

    pair_id: int = Field(foreign_key="pair.id", primary_key=True)
    version: str
    mapping: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class PairEmbedding(SQLModel, table=True):
    __tablename__ = "pair_embedding"

    pair_id: int = Field(foreign_key="pair.id", primary_key=True)
    model: str
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


# --- small helpers -----------------------------------------------------------------------


def _unit_hash(text: str) -> float:
    """A deterministic uniform draw in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def prelabel_shown_for(pair_id: int, reviewer_id: int, rate: float, is_audit: bool) -> bool:
    """Whether this reviewer sees the judge's pre-label for this pair.

    Deterministic per (pair, reviewer) so a re-served lease shows the same thing. Audit
    labels feed the calibration guarantee, so they are never primed with the judge's answer.
    """
    return not is_audit and _unit_hash(f"prelabel:{pair_id}:{reviewer_id}") < rate


def uncertainty_of(confidence: float | None) -> float:
    return 1.0 if confidence is None else float(min(1.0, max(0.0, 1.0 - confidence)))


def queue_for(route: str | None, reasons: Sequence[str], pair_safety_flag: bool) -> str | None:
    if route == "incident":
        return "incident"
    if route == "review":
        return "incident" if pair_safety_flag or "safety_flag" in reasons else "review"
    return None


@functools.cache
def _insert_ignore_statement(table: Any, dialect: str, keys: tuple[str, ...]) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys))


def _insert_ignore(session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING (two writers may prepare the same pair at once)."""
    if not rows:
        return
    connection = session.connection()
    connection.execute(_insert_ignore_statement(table, connection.dialect.name, tuple(keys)), rows)


_ITEM = ReviewItem.__table__  # type: ignore[attr-defined]
_c = _ITEM.c


def _state_after(done_delta: int, active_delta: int) -> Any:
    """SQL for an item's state after its counters change by these amounts (stale stays stale)."""
    done = _c.labels_done + done_delta
    active = _c.leases_active + active_delta
    return case(
        (_c.state == "stale", "stale"),
        (done >= _c.labels_needed, "done"),
        (done + active >= _c.labels_needed, "leased"),
        else_="open",
    )


def _change_counts(session: Session, item_id: int, done_delta: int, active_delta: int) -> None:
    session.execute(
        sa_update(_ITEM)
        .where(_c.id == item_id)
        .values(
            labels_done=_c.labels_done + done_delta,
            leases_active=_c.leases_active + active_delta,
            state=_state_after(done_delta, active_delta),
            updated_at=utcnow(),
        )
    )


# --- enqueue (the hook the worker and recalibration call) --------------------------------

_PAIR = Pair.__table__  # type: ignore[attr-defined]
_DECISION = Decision.__table__  # type: ignore[attr-defined]
_PROJECT = Project.__table__  # type: ignore[attr-defined]
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
        .outerjoin(_ITEM, and_(_c.pair_id == _PAIR.c.id, _c.origin == "routing"))
    )
    .where(_PAIR.c.id.in_(bindparam("pair_ids", expanding=True)))
    .order_by(_PAIR.c.id, _c.id)
)
_HOOK_STALE = (
    sa_update(_ITEM)
    .where(_c.id.in_(bindparam("item_ids", expanding=True)), _c.state.in_(("open", "leased")))
    .values(state="stale", updated_at=bindparam("b_now"))
)
_HOOK_FOLLOW = (
    sa_update(_ITEM)
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
            pair_id = row.id
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
            # Audits and the calibration sample are random samples; keep them out of the ranking.
            is_audit = "audit" in reasons or "calibration_sample" in reasons
            uncertainty = uncertainty_of(row.confidence)
            # Audits are a random sample: a random priority interleaves them with the rest.
            priority = _unit_hash(f"audit:{pair_id}") if is_audit else uncertainty
            selected_by = "audit" if is_audit else "uncertainty"
            if current is None:
                inserts.append(
                    {
                        "decision_id": row.decision_id,
                        "uncertainty": uncertainty,
                        "priority": priority,
                        "selected_by": selected_by,
                        "is_audit": is_audit,
                        "reasons": reasons,
                        "updated_at": now,
                        "project_id": row.project_id,
                        "pair_id": pair_id,
                        "queue": target,
                        "origin": "routing",
                        "state": "open",
                        "labels_needed": _DEFAULT_OVERLAP if row.overlap is None else row.overlap,
                        "labels_done": 0,
                        "leases_active": 0,
                        "created_at": now,
                    }
                )
            else:
                updates.append(
                    {
                        "b_id": current.item_id,
                        "b_decision_id": row.decision_id,
                        "b_uncertainty": uncertainty,
                        "b_priority": priority,
                        "b_selected_by": selected_by,
                        "b_is_audit": is_audit,
                        "b_reasons": reasons,
                        "b_updated_at": now,
                    }
                )
    for part in chunks(stale):
        connection.execute(_HOOK_STALE, {"item_ids": list(part), "b_now": now})
    if updates:
        connection.execute(_HOOK_FOLLOW, updates)
    if inserts:
        _insert_ignore(session, _ITEM, inserts, ["pair_id", "queue"])
    return len(inserts)


def withdraw(session: Session, pair_ids: Sequence[int]) -> int:
    """Pairs sent back to judging leave the queues until their new decision: their unfinished
    routing items turn stale (labels already given stay). Returns the items withdrawn."""
    n = 0
    for part in chunks(list(dict.fromkeys(pair_ids))):
        result = session.execute(
            sa_update(_ITEM)
            .where(_c.pair_id.in_(part), _c.origin == "routing", _c.state.in_(("open", "leased")))
            .values(state="stale", updated_at=utcnow())
        )
        n += result.rowcount  # type: ignore[attr-defined]
    return n


def backfill(engine: Engine) -> int:
    """Enqueue decided pairs the hook has not seen (a database from before the queue
    existed, or decisions written by code that did not call the hook)."""
    current = aliased(ReviewItem)
    with Session(engine) as session:
        missing = session.exec(
            select(Pair.id)
            .join(Decision, Decision.id == Pair.decision_id)
            .where(
                Decision.route.in_(("review", "incident")),  # type: ignore[attr-defined]
                ~exists().where(
                    current.pair_id == Pair.id,
                    current.origin == "routing",
                    current.decision_id == Pair.decision_id,
                ),
            )
        ).all()
        moved = session.exec(
            select(current.pair_id)
            .join(Pair, Pair.id == current.pair_id)
            .where(
                current.origin == "routing",
                current.state.in_(("open", "leased")),  # type: ignore[attr-defined]
                current.decision_id != Pair.decision_id,
            )
        ).all()
        ids = sorted(set(missing) | set(moved))
        added = 0
        for part in chunks(ids, 5000):
            added += on_decisions_written(session, part)
            session.commit()
    return added


# --- redaction ---------------------------------------------------------------------------


def _redact(prompt: str, response_a: str, response_b: str) -> Any:
    from api.redaction import redact_pair  # the other helper's module: regex recognisers

    return redact_pair(prompt, response_a, response_b)


def ensure_redactions(session: Session, pairs: Sequence[Pair]) -> dict[int, PairRedaction]:
    """Redacted texts for these pairs, computing and storing the missing ones."""
    ids = [p.id for p in pairs]
    found = {
        r.pair_id: r
        for part in chunks(ids)
        for r in session.exec(select(PairRedaction).where(PairRedaction.pair_id.in_(part)))  # type: ignore[attr-defined]
    }
    missing = [p for p in pairs if p.id not in found]
    if missing:
        now = utcnow()
        shown, secret = [], []
        for pair in missing:
            red = _redact(pair.prompt, pair.response_a, pair.response_b)
            shown.append(
                {
                    "pair_id": pair.id,
                    "version": red.version,
                    "prompt": red.prompt,
                    "response_a": red.response_a,
                    "response_b": red.response_b,
                    "n_tokens": len(red.mapping),
                    "created_at": now,
                }
            )
            secret.append(
                {"pair_id": pair.id, "version": red.version, "mapping": red.mapping, "created_at": now}
            )
        _insert_ignore(session, PairRedaction.__table__, shown, ["pair_id"])
        _insert_ignore(session, RedactionMapping.__table__, secret, ["pair_id"])
        # Redaction is deterministic per version, so a row another writer stored first holds
        # the same text: no need to read it back.
        found.update({row["pair_id"]: PairRedaction(**row) for row in shown})
    return found


# --- leasing -----------------------------------------------------------------------------


class QueueError(Exception):
    status = 400

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


def expire_leases(session: Session, now: datetime, project_id: int | None = None) -> int:
    """Return the slots of leases past their expiry to their items."""
    statement = (
        sa_update(ReviewLease)
        .where(ReviewLease.state == "active", ReviewLease.expires_at < now)  # type: ignore[operator]
        .values(state="expired", finished_at=now)
        .returning(ReviewLease.item_id)
        .execution_options(synchronize_session=False)
    )
    if project_id is not None:
        statement = statement.where(ReviewLease.project_id == project_id)
    expired = Counter(session.scalars(statement))
    for item_id, n in sorted(expired.items()):
        _change_counts(session, item_id, 0, -n)
    return sum(expired.values())


def _claim(session: Session, project_id: int, queue: str, reviewer_id: int, now: datetime) -> Any:
    """Take one free slot of the best item this reviewer has not seen; the item row or None."""
    candidate = aliased(ReviewItem)
    seen = exists().where(ReviewLease.item_id == candidate.id, ReviewLease.reviewer_id == reviewer_id)
    best = (
        select(candidate.id)
        .where(candidate.project_id == project_id, candidate.queue == queue, candidate.state == "open", ~seen)
        .order_by(candidate.priority.desc(), candidate.id.desc())  # type: ignore[attr-defined]
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
        sa_update(_ITEM)
        .where(target, _c.state == "open")
        .values(leases_active=_c.leases_active + 1, state=_state_after(0, 1), updated_at=now)
        .returning(*_ITEM.c)
    )
    return session.execute(statement).first()


def next_item(
    engine: Engine,
    project: Project,
    reviewer: Reviewer,
    queue: str = "review",
    lease_seconds: float | None = None,
) -> dict[str, Any] | None:
    """Lease the next item of ``queue`` for ``reviewer`` (or give back the one they hold)."""
    lease_seconds = LEASE_SECONDS if lease_seconds is None else lease_seconds
    if queue not in QUEUES:
        raise Invalid(f"queue must be one of {list(QUEUES)}, got {queue!r}")
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        # A write first: on SQLite it takes the database write lock for the whole claim.
        expire_leases(session, now, project.id)
        held = session.exec(
            select(ReviewLease)
            .where(
                ReviewLease.reviewer_id == reviewer.id,
                ReviewLease.state == "active",
                ReviewLease.project_id == project.id,
                ReviewLease.queue == queue,
                ReviewLease.expires_at > now,  # type: ignore[operator]
            )
            .order_by(ReviewLease.id.desc())  # type: ignore[union-attr]
            .limit(1)
        ).first()
        if held is not None:
            item = session.get(ReviewItem, held.item_id)
            payload = _payload(session, held, item)  # type: ignore[arg-type]
            session.commit()
            return payload
        row = _claim(session, project.id, queue, reviewer.id, now)  # type: ignore[arg-type]
        if row is None:
            session.commit()
            return None
        item = ReviewItem.model_validate(dict(row._mapping))
        pair = session.get(Pair, item.pair_id)
        redaction = ensure_redactions(session, [pair])[item.pair_id]  # type: ignore[list-item]
        rate = project.routing_settings().show_prelabel_rate
        # A pair whose judges gave no label has no pre-label to show: record it as not shown.
        decision = session.get(Decision, item.decision_id) if item.decision_id is not None else None
        has_prelabel = decision is not None and decision.label is not None
        lease = ReviewLease(
            item_id=item.id,  # type: ignore[arg-type]
            project_id=project.id,  # type: ignore[arg-type]
            pair_id=item.pair_id,
            reviewer_id=reviewer.id,  # type: ignore[arg-type]
            queue=queue,
            decision_id=item.decision_id,
            prelabel_shown=has_prelabel
            and prelabel_shown_for(item.pair_id, reviewer.id, rate, item.is_audit),  # type: ignore[arg-type]
            redaction_version=redaction.version,
            leased_at=now,
            expires_at=now + timedelta(seconds=lease_seconds),
        )
        session.add(lease)
        session.flush()
        payload = _payload(session, lease, item, pair, redaction)
        session.commit()
        return payload


def _payload(
    session: Session,
    lease: ReviewLease,
    item: ReviewItem,
    pair: Pair | None = None,
    redaction: PairRedaction | None = None,
) -> dict[str, Any]:
    pair = pair or session.get(Pair, lease.pair_id)
    if redaction is None:
        redaction = ensure_redactions(session, [pair])[lease.pair_id]  # type: ignore[list-item]
    prelabel = None
    if lease.prelabel_shown and lease.decision_id is not None:
        decision = session.get(Decision, lease.decision_id)
        if decision is not None and decision.label is not None:
            prelabel = {"label": decision.label, "confidence": decision.confidence}
    reasons = list(item.reasons)
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
        "labels_needed": item.labels_needed,
    }


# --- submit and skip ---------------------------------------------------------------------


class ReviewSubmit(BaseModel):
    """A reviewer's answer for one lease."""

    model_config = ConfigDict(extra="forbid")

    label: Literal["A>>B", "A>B", "tie", "B>A", "B>>A"] | None = PField(
        None, description="five-point preference in terms of response A / response B"
    )
    both_bad: bool = False
    safety_flag: bool = False
    rationale: str | None = PField(None, max_length=10_000)
    time_on_task_s: float | None = PField(None, ge=0, le=86_400)
    prelabel_shown: bool | None = PField(
        None, description="what the client displayed; must agree with the lease if given"
    )
    idempotency_key: str | None = PField(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _complete(self) -> ReviewSubmit:
        if self.rationale is not None:
            self.rationale = self.rationale.strip() or None
        if self.both_bad and not self.rationale:
            raise ValueError("both_bad needs a rationale: say why neither response is acceptable")
        if self.label is None and not self.both_bad:
            raise ValueError("give a label (A>>B, A>B, tie, B>A, B>>A), or both_bad with a rationale")
        return self

    def stored_label(self) -> str:
        # Both bad without a preference is stored as a tie: neither side is preferred.
        return self.label or "tie"


def _label_view(label: Label, duplicate: bool) -> dict[str, Any]:
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
        sa_update(_ITEM)
        .where(
            _c.id == item_id,
            _c.state == "open",
            _c.labels_done + _c.leases_active < _c.labels_needed,
        )
        .values(labels_done=_c.labels_done + 1, state=_state_after(1, 0), updated_at=now)
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
            return _label_view(label, duplicate=True), False
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
            _change_counts(session, lease.item_id, 1, -1)
        if body.safety_flag and item is not None and item.queue == "review":
            _escalate(session, item)
        session.commit()
        return _label_view(label, duplicate=False), True


def _escalate(session: Session, item: ReviewItem) -> None:
    """A reviewer's safety flag puts the pair in front of the incident reviewers too."""
    now = utcnow()
    _insert_ignore(
        session,
        _ITEM,
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
            _change_counts(session, lease.item_id, 0, -1)
        session.commit()
    return {"lease_id": lease_id, "state": "skipped", "duplicate": False}


# --- priority: embeddings off the request path, hybrid order ------------------------------

_embeddings_broken = False


def _embedding_module() -> Any | None:
    global _embeddings_broken
    if _embeddings_broken:
        return None
    try:
        from api import embeddings
    except ImportError:
        return None
    return embeddings


def queued_pairs_without(session: Session, table: Any, limit: int) -> list[Pair]:
    """Distinct queued pairs (open or leased items) with no row in ``table`` yet, likely-next first."""
    pairs = session.exec(
        select(Pair)
        .join(ReviewItem, ReviewItem.pair_id == Pair.id)
        .where(
            ReviewItem.state.in_(("open", "leased")),  # type: ignore[attr-defined]
            ~exists().where(table.pair_id == Pair.id),
        )
        .order_by(ReviewItem.priority.desc())  # type: ignore[attr-defined]
        .limit(limit)
    ).all()
    return list({p.id: p for p in pairs}.values())


def embed_missing(engine: Engine, limit: int = 64) -> int:
    """Embed up to ``limit`` queued pairs that have no embedding yet (likely-next first)."""
    global _embeddings_broken
    module = _embedding_module()
    if module is None:
        return 0
    with Session(engine) as session:
        unique = queued_pairs_without(session, PairEmbedding, limit)
    if not unique:
        return 0
    try:
        vectors = module.embed_texts([module.pair_text(p.prompt, p.response_a, p.response_b) for p in unique])
    except Exception:  # a missing model must not stop the queue: uncertainty order still works
        log.exception("embedding failed; review priority falls back to uncertainty order")
        _embeddings_broken = True
        return 0
    model = str(getattr(module, "EMBEDDING_MODEL_NAME", "sentence-transformers"))
    now = utcnow()
    rows = [
        {
            "pair_id": p.id,
            "model": model,
            "dim": int(np.asarray(v).shape[-1]),
            "vector": module.to_bytes(np.asarray(v)),
            "created_at": now,
        }
        for p, v in zip(unique, vectors, strict=True)
    ]
    with Session(engine) as session:
        _insert_ignore(session, PairEmbedding.__table__, rows, ["pair_id"])
        session.commit()
    return len(rows)


def _hybrid_order(
    uncertainty: np.ndarray, embeddings: np.ndarray, k: int, weight: float, selected: np.ndarray | None
) -> list[int]:
    try:
        from calibration.priority import hybrid_order
    except ImportError:
        return [int(i) for i in np.argsort(-uncertainty, kind="stable")[:k]]
    order = hybrid_order(
        uncertainty, embeddings, k, uncertainty_weight=weight, already_selected_embeddings=selected
    )
    return [int(i) for i in order]


def reprioritize(engine: Engine, project_id: int, queue: str) -> int:
    """Re-rank the head of a queue by the hybrid order; returns how many items it placed.

    The hybrid order is mapped onto the sorted uncertainties of the same items, so items
    without an embedding yet still interleave with them by plain uncertainty.
    """
    module = _embedding_module()
    if module is None:
        return 0
    with Session(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            return 0
        weight = project.routing_settings().uncertainty_weight
        rows = session.execute(
            select(ReviewItem.id, ReviewItem.uncertainty, PairEmbedding.vector)
            .join(PairEmbedding, PairEmbedding.pair_id == ReviewItem.pair_id)
            .where(
                ReviewItem.project_id == project_id,
                ReviewItem.queue == queue,
                ReviewItem.state == "open",
                ReviewItem.origin == "routing",
                ReviewItem.is_audit.is_(False),  # type: ignore[attr-defined]
            )
            .order_by(ReviewItem.uncertainty.desc(), ReviewItem.id)  # type: ignore[attr-defined]
            .limit(PRIORITY_POOL)
        ).all()
        if not rows:
            return 0
        # Diversity is measured against what reviewers already have (labelled or in hand).
        seen = session.execute(
            select(PairEmbedding.vector)
            .join(ReviewItem, ReviewItem.pair_id == PairEmbedding.pair_id)
            .where(
                ReviewItem.project_id == project_id,
                ReviewItem.queue == queue,
                ReviewItem.labels_done + ReviewItem.leases_active > 0,
            )
            .order_by(ReviewItem.updated_at.desc())  # type: ignore[attr-defined]
            .limit(SELECTED_HISTORY)
        ).scalars()
        selected = [module.from_bytes(v) for v in seen]
        u = np.array([r.uncertainty for r in rows], dtype=float)
        vectors = np.stack([module.from_bytes(r.vector) for r in rows])
        k = min(PRIORITY_TOP_K, len(rows))
        order = _hybrid_order(u, vectors, k, weight, np.stack(selected) if selected else None)
        top_u = np.sort(u)[::-1]
        now = utcnow()
        placed = {rows[i].id for i in order}
        updates = [
            # The small decreasing term keeps the hybrid order among equal uncertainties.
            {"b_id": rows[i].id, "b_priority": float(top_u[rank]) + (k - rank) * 1e-6, "b_sel": "hybrid"}
            for rank, i in enumerate(order)
        ]
        # Items the previous pass placed but this one did not go back to plain uncertainty.
        updates.extend(
            {"b_id": r.id, "b_priority": float(r.uncertainty), "b_sel": "uncertainty"}
            for r in session.execute(
                select(ReviewItem.id, ReviewItem.uncertainty).where(
                    ReviewItem.project_id == project_id,
                    ReviewItem.queue == queue,
                    ReviewItem.state == "open",
                    ReviewItem.selected_by == "hybrid",
                )
            ).all()
            if r.id not in placed
        )
        if updates:
            session.connection().execute(
                sa_update(_ITEM)
                .where(_c.id == bindparam("b_id"), _c.state == "open")
                .values(priority=bindparam("b_priority"), selected_by=bindparam("b_sel"), updated_at=now),
                updates,
            )
        session.commit()
    return len(order)


@dataclass
class _PrepareState:
    last_label_id: int = -1
    last_backfill: float = float("-inf")


_prepare_state: dict[str, _PrepareState] = {}
_prepare_lock = threading.Lock()


def prepare_batch(engine: Engine, redact_limit: int = 256, embed_limit: int = 64) -> dict[str, int]:
    """One pass of the queue's background work; safe to call from any process, any time.

    Expires abandoned leases, redacts and embeds the next queued pairs, and re-ranks
    queues whose inputs changed. Keeps the request path free of model calls.
    """
    import time

    with _prepare_lock:  # one pass at a time per process: passes share the state below
        state = _prepare_state.setdefault(str(engine.url), _PrepareState())
        out = {"backfilled": 0, "expired": 0, "redacted": 0, "embedded": 0, "reprioritized": 0}
        if time.monotonic() - state.last_backfill > 60:
            out["backfilled"] = backfill(engine)
            state.last_backfill = time.monotonic()
        with Session(engine) as session:
            out["expired"] = expire_leases(session, utcnow())
            session.commit()
        with Session(engine, expire_on_commit=False) as session:
            pairs = queued_pairs_without(session, PairRedaction, redact_limit)
            if pairs:
                ensure_redactions(session, pairs)
                session.commit()
                out["redacted"] = len(pairs)
        out["embedded"] = embed_missing(engine, embed_limit)
        with Session(engine) as session:
            last_label = session.exec(select(func.coalesce(func.max(Label.id), 0))).one()
            queues = session.execute(
                select(ReviewItem.project_id, ReviewItem.queue)
                .where(ReviewItem.state == "open", ReviewItem.origin == "routing")
                .distinct()
            ).all()
        if out["embedded"] or last_label != state.last_label_id:
            for project_id, queue in queues:
                out["reprioritized"] += reprioritize(engine, project_id, queue)
            state.last_label_id = last_label
        return out


async def prepare_loop(engine: Engine, stop: asyncio.Event, interval_s: float = 2.0) -> None:
    """Run :func:`prepare_batch` until ``stop``; errors are logged, never fatal."""
    while not stop.is_set():
        try:
            result = await asyncio.to_thread(prepare_batch, engine)
            busy = result["redacted"] or result["embedded"]
        except Exception:
            log.exception("review queue preparation failed; retrying")
            busy = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.05 if busy else interval_s)


# --- reading: progress, stats, labels -----------------------------------------------------


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
        select(func.count(), func.count(case((ReviewLease.finished_at >= since, 1)))).where(  # type: ignore[operator]
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
            Label.source.in_(("review", "audit", "calibration")),  # type: ignore[attr-defined]
            Label.created_at >= since,  # type: ignore[operator]
        )
    ).all():
        per_hour[(annotator, _hour(created))] += 1
    override = {"shown": {"labels": 0, "overrides": 0}, "hidden": {"labels": 0, "overrides": 0}}
    times: list[float] = []
    for label, shown, seconds, prelabel in session.execute(
        select(Label.label, ReviewLease.prelabel_shown, Label.time_on_task_s, Decision.label)
        .join(ReviewLease, ReviewLease.label_id == Label.id)
        .join(Decision, Decision.id == ReviewLease.decision_id, isouter=True)
        .where(Label.project_id == project_id)
    ).all():
        if seconds is not None:
            times.append(seconds)
        if prelabel is None or side(prelabel) is None:
            continue
        bucket = override["shown" if shown else "hidden"]
        bucket["labels"] += 1
        # An override: the human's side (A / B / tie) differs from the judge's.
        bucket["overrides"] += int(side(label) != side(prelabel))
    for bucket in override.values():
        bucket["rate"] = bucket["overrides"] / bucket["labels"] if bucket["labels"] else None  # type: ignore[assignment]
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
            Label.source.in_(("review", "audit", "calibration")),  # type: ignore[attr-defined]
            Label.id > after,  # type: ignore[operator]
        )
        .order_by(Label.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    if annotator is not None:
        statement = statement.where(Label.annotator == annotator)
    return [_label_view(label, duplicate=False) for label in session.exec(statement)]


def redaction_for_admin(session: Session, pair_id: int) -> dict[str, Any] | None:
    row = session.get(RedactionMapping, pair_id)
    if row is None:
        return None
    return {"pair_id": pair_id, "version": row.version, "mapping": row.mapping, "created_at": row.created_at}


def queue_is_empty_reason(session: Session, project_id: int, queue: str) -> str:
    """Why there is nothing to serve, in words for the app."""
    waiting = session.execute(
        select(func.count()).where(
            ReviewItem.project_id == project_id,
            ReviewItem.queue == queue,
            ReviewItem.state.in_(("open", "leased")),  # type: ignore[attr-defined]
        )
    ).scalar_one()
    if waiting:
        return f"{waiting} item(s) are held by other reviewers or were already seen by you."
    return "The queue is empty."


__all__ = [
    "QUEUES",
    "PairEmbedding",
    "PairRedaction",
    "RedactionMapping",
    "ReviewItem",
    "ReviewLease",
    "ReviewSubmit",
    "backfill",
    "next_item",
    "on_decisions_written",
    "prepare_batch",
    "prepare_loop",
    "reprioritize",
    "skip_item",
    "submit_label",
]
