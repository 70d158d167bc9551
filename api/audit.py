"""The tamper-evident audit log: append an event, read events, verify the chain.

Every event row holds ``hash`` = SHA-256 of its canonical serialisation (sorted-key JSON of
seq, created_at, kind, project_id, subject, payload and prev_hash) and ``prev_hash``, the hash
of the event before it. Editing, deleting or reordering a row therefore breaks the chain at
that row, and :func:`verify` names the first row where it breaks.

Writers call :func:`record_event` inside their own transaction (the caller commits, so the
event is stored with what it describes, or not at all). An append first updates the one-row
``audit_head``: that row lock (PostgreSQL) or the write lock (SQLite) makes appends from all
processes take turns until the caller commits, and the unique ``seq`` refuses a fork even if
that ever failed. Call it after the transaction's other writes, just before the commit: the
head is then the last lock a transaction takes (no deadlock with other row locks) and is
held briefly.

>>> canonical_json({"b": 1.0, "a": [datetime(2026, 1, 2, tzinfo=UTC)]})
'{"a":["2026-01-02T00:00:00.000000Z"],"b":1.0}'
>>> len(digest([{"id": 1, "label": "A>B"}]))
64
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import Session, col

from api.db import insert_ignore, rows_changed
from api.models import AuditEvent, AuditHead, CalibrationVersion, table_of, utcnow

GENESIS = "0" * 64  # the prev_hash of the first event
PAGE = 1000  # rows per read while verifying


class AuditKind(StrEnum):
    """What an audit event records."""

    LABEL_WRITTEN = "label_written"
    LABEL_SUPERSEDED = "label_superseded"
    DECISIONS = "decisions"
    REFIT = "refit"
    GATE_OPENED = "gate_opened"
    GATE_CLOSED = "gate_closed"
    KILL_SWITCH = "kill_switch"
    EXPORT = "export"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    REVIEWER_PAUSED = "reviewer_paused"
    REVIEWER_RESUMED = "reviewer_resumed"
    PROJECT_SETTINGS = "project_settings"  # a panel or routing edit: before and after
    JOB_RETRIED = "job_retried"
    JOB_CANCELLED = "job_cancelled"
    REVIEW_ASSIGNED = "review_assigned"  # a lead gave review items to a reviewer
    REVIEW_UNASSIGNED = "review_unassigned"


# --- canonical serialisation (pure) ---------------------------------------------------------


def _timestamp(value: datetime) -> str:
    """One text per instant: UTC, microseconds, "Z" (naive datetimes are taken as UTC)."""
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain(value: Any) -> Any:
    """``value`` as plain JSON data, the form it is stored and hashed in: datetimes as UTC
    text, tuples and sets as lists, enums as their value, non-finite floats as text (JSON has
    no NaN)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=canonical_json)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    raise TypeError(f"cannot store {type(value).__name__} in an audit event")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, floats as Python's shortest round-trip text."""
    return json.dumps(
        plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value``'s canonical JSON: a content fingerprint for a payload."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def rows_payload(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The payload for a batch of stored rows (each with its ``id``): the ids and a digest of
    their content, so one event vouches for the whole batch without copying it. A row's
    ``aspects`` of None (a row without aspects, issue 23) is left out: such rows digest as before."""
    content = [{k: v for k, v in row.items() if not (k == "aspects" and v is None)} for row in rows]
    return {"ids": [row["id"] for row in rows], "n": len(rows), "digest": digest(content)}


def labels_payload(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The payload of a ``label_written`` event: :func:`rows_payload` plus who gave the labels
    and from which sources."""
    sources = Counter(str(row["source"]) for row in rows)
    annotators = sorted({str(row["annotator"]) for row in rows})
    return dict(rows_payload(rows), sources=dict(sorted(sources.items())), annotators=annotators)


def event_hash(
    *,
    seq: int,
    created_at: datetime,
    kind: str,
    project_id: int | None,
    subject: str,
    payload: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The hash an event row must hold."""
    return digest(
        {
            "seq": seq,
            "created_at": created_at,
            "kind": kind,
            "project_id": project_id,
            "subject": subject,
            "payload": payload,
            "prev_hash": prev_hash,
        }
    )


# --- append -------------------------------------------------------------------------------


def _take_turn(session: Session) -> tuple[int, str]:
    """Lock the head row (waiting for any append not yet committed) and move it one step:
    the new event's seq and the previous event's hash."""
    head = table_of(AuditHead)
    for _ in range(2):
        moved = session.execute(update(head).where(head.c.id == 1).values(seq=head.c.seq + 1))
        if rows_changed(moved) == 1:
            seq, prev_hash = session.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
            return int(seq), str(prev_hash)
        # A database built without the migration's seed row.
        insert_ignore(session, head, [{"id": 1, "seq": 0, "hash": GENESIS}], ["id"])
    raise RuntimeError("the audit log's head row is missing")


def record_event(
    session: Session, kind: str, *, project_id: int | None, subject: str, payload: Mapping[str, Any]
) -> None:
    """Append an event to the log in ``session``'s transaction; the caller commits.

    ``kind`` is an :class:`AuditKind`; ``subject`` says what the event is about
    ("job:12", "api_key:3"); ``payload`` is JSON-able data (see :func:`plain`).
    """
    kind = AuditKind(kind).value  # ValueError on an unknown kind: a programming error
    subject = subject[:200]
    body = plain(dict(payload))
    seq, prev_hash = _take_turn(session)
    created_at = utcnow()
    fields: dict[str, Any] = {
        "seq": seq,
        "created_at": created_at,
        "kind": kind,
        "project_id": project_id,
        "subject": subject,
        "payload": body,
        "prev_hash": prev_hash,
    }
    row_hash = event_hash(**fields)
    session.execute(insert(table_of(AuditEvent)).values(**fields, hash=row_hash))
    head = table_of(AuditHead)
    session.execute(update(head).where(head.c.id == 1).values(hash=row_hash))


def record_version(
    session: Session, version: CalibrationVersion, *, was_open: bool, kill_switch: bool = False
) -> None:
    """Log a calibration version being stored, with its reason: a kill-switch closure, or a
    refit (and, when the gate changes state with it, the gate opening or closing)."""
    session.flush()  # the version's id
    payload = {
        "version_id": version.id,
        "version": version.version,
        "trigger": version.trigger,
        "open": version.open,
        "was_open": was_open,
        "reason": version.reason,
        "threshold": version.threshold,
        "guaranteed_agreement": version.guaranteed_agreement,
        "expected_coverage": version.expected_coverage,
        "n_labels": version.n_labels,
    }
    kinds = [AuditKind.KILL_SWITCH] if kill_switch else [AuditKind.REFIT]
    if not kill_switch and version.open != was_open:
        kinds.append(AuditKind.GATE_OPENED if version.open else AuditKind.GATE_CLOSED)
    subject = f"calibration_version:{version.id}"
    for kind in kinds:
        record_event(session, kind, project_id=version.project_id, subject=subject, payload=payload)


# --- read and verify ------------------------------------------------------------------------


def event_view(event: AuditEvent) -> dict[str, Any]:
    """An event as the API and CLI show it."""
    return {
        "id": event.id,
        "seq": event.seq,
        "created_at": _timestamp(event.created_at),
        "kind": event.kind,
        "project_id": event.project_id,
        "subject": event.subject,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def list_events(
    session: Session, *, after: int = 0, limit: int = 100, project_id: int | None = None
) -> list[AuditEvent]:
    """Events with seq > ``after``, oldest first (of one project when ``project_id`` is set)."""
    query = select(AuditEvent).where(col(AuditEvent.seq) > after)
    if project_id is not None:
        query = query.where(col(AuditEvent.project_id) == project_id)
    return list(session.scalars(query.order_by(col(AuditEvent.seq)).limit(limit)))


def recent_events(session: Session, *, limit: int = 20, project_id: int | None = None) -> list[AuditEvent]:
    """The last ``limit`` events, oldest first (of one project when ``project_id`` is set)."""
    query = select(AuditEvent)
    if project_id is not None:
        query = query.where(col(AuditEvent.project_id) == project_id)
    return list(reversed(list(session.scalars(query.order_by(col(AuditEvent.seq).desc()).limit(limit)))))


@dataclass(frozen=True)
class Break:
    """Where the chain breaks: the row (seq, id) and what differs."""

    seq: int
    id: int | None
    problem: str  # hash | link | seq | head
    message: str


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying the chain: ``broken`` is the first break, None when intact."""

    events: int
    last_seq: int
    broken: Break | None
    last_hash: str | None = None  # of the last event checked, when the chain is intact

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        broken = None
        if self.broken is not None:
            b = self.broken
            broken = {"seq": b.seq, "id": b.id, "problem": b.problem, "message": b.message}
        return {
            "ok": self.ok,
            "events": self.events,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "broken": broken,
        }


def _broken(count: int, event: AuditEvent, problem: str, why: str) -> ChainReport:
    where = f"event seq {event.seq} (id {event.id})"
    return ChainReport(count, event.seq, Break(event.seq, event.id, problem, f"{where} {why}"))


def check_chain(events: Iterable[AuditEvent], head: tuple[int, str] | None = None) -> ChainReport:
    """Recompute the chain over ``events`` (in seq order) and find the first break.

    A row whose content no longer matches its own hash was edited; a row whose prev_hash is
    not the previous row's hash follows a deleted, inserted or moved row; ``head`` (the head
    row's seq and hash) shows rows deleted from the end.
    """
    count, last_seq, last_hash = 0, 0, GENESIS
    for event in events:
        count += 1
        expected = event_hash(
            seq=event.seq,
            created_at=event.created_at,
            kind=event.kind,
            project_id=event.project_id,
            subject=event.subject,
            payload=event.payload,
            prev_hash=event.prev_hash,
        )
        if expected != event.hash:
            return _broken(count, event, "hash", "does not match its own hash: its content was changed")
        if event.prev_hash != last_hash:
            why = f"does not link to the event before it (seq {last_seq}): one was deleted, inserted or moved"
            return _broken(count, event, "link", why)
        if event.seq != last_seq + 1:
            return _broken(count, event, "seq", f"follows seq {last_seq}: a number was skipped")
        last_seq, last_hash = event.seq, event.hash
    if head is not None and head != (last_seq, last_hash):
        why = (
            f"the log ends at seq {last_seq} but the last event written was seq {head[0]}: "
            f"events at the end were deleted or changed"
        )
        return ChainReport(count, last_seq, Break(head[0], None, "head", why))
    return ChainReport(count, last_seq, None, last_hash)


def _all_events(session: Session, up_to: int | None) -> Iterator[AuditEvent]:
    """Every event (with seq <= ``up_to``) in seq order, a page at a time: memory stays flat."""
    after: int | None = None
    while True:
        query = select(AuditEvent).order_by(col(AuditEvent.seq)).limit(PAGE)
        if after is not None:
            query = query.where(col(AuditEvent.seq) > after)
        if up_to is not None:
            query = query.where(col(AuditEvent.seq) <= up_to)
        page = list(session.scalars(query))
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].seq
        session.expunge_all()


def verify(session: Session) -> ChainReport:
    """Recompute the whole chain stored in the database (see :func:`check_chain`).

    The head is read first: events appended (and committed, with the head) while the chain is
    read lie beyond it and are left for the next check.
    """
    head = table_of(AuditHead)
    row = session.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1)).first()
    last = (int(row[0]), str(row[1])) if row else None
    return check_chain(_all_events(session, last[0] if last else None), last)
