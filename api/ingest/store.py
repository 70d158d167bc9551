"""Ingest: jobs of pairs and human labels, JSON or NDJSON, all-or-nothing.

Parsing is pure (every bad line is reported, nothing half-read); storing happens only when
every line is valid, in one transaction, idempotent by client id (pairs) or idempotency key
(labels). A job posted again with the same pairs (a client's retry) is the job it created the
first time, not a new empty one.

JSON is read strictly: NaN, Infinity, numbers beyond a float (1e400) and integer literals of
more than 40 digits (Python refuses to read 4,300 and more) are refused where they stand, with
the field named (``api.fields``), as is text no column can hold (NUL, lone surrogates).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api import audit
from api.db import bulk_insert, chunks, insert_ignore
from api.fields import printable
from api.models import Honeypot, Job, Label, Pair, Project, table_of, utcnow
from api.schemas import LabelIn, PairIn, label_aspects_problem, stored_aspect_labels
from api.vocab import IMPORT_SOURCES, LabelSource
from judge.content import content_hash
from judge.verdicts import to_five_point


@dataclass
class LineError:
    line: int  # 1-based line (NDJSON) or position in the "pairs" array (JSON)
    client_id: str | None
    errors: list[str]


@dataclass
class ParsedRequest:
    pairs: list[PairIn] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


_MAX_INT_DIGITS = 40
# The label table's idempotency_key column (VARCHAR(512) on PostgreSQL).
MAX_IDEMPOTENCY_KEY = 512


def _int(literal: str) -> int:
    """A JSON integer; one too long to be a sane number reads as ±10^40, which every field
    that takes a number refuses as out of range (Python itself refuses 4,300 digits with a
    ValueError that was a 500)."""
    if len(literal.lstrip("-")) > _MAX_INT_DIGITS:
        return -(10**_MAX_INT_DIGITS) if literal.startswith("-") else 10**_MAX_INT_DIGITS
    return int(literal)


def _loads(text: str) -> Any:
    """``json.loads``; RecursionError (nesting thousands deep) as a JSONDecodeError."""
    try:
        return json.loads(text, parse_int=_int)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def _client_id(record: Any) -> str | None:
    """A record's client_id as it may be echoed in an error."""
    client_id = record.get("client_id") if isinstance(record, dict) else None
    return printable(client_id, 512) if isinstance(client_id, str) else None


def _ndjson_records(text: str) -> tuple[list[tuple[int, Any]], list[LineError]]:
    """One record per non-blank line, with its line number; a line that is not JSON as a LineError."""
    records: list[tuple[int, Any]] = []
    errors: list[LineError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, _loads(line)))
        except json.JSONDecodeError as exc:
            errors.append(LineError(number, None, [f"invalid JSON: {exc.msg} at column {exc.colno}"]))
    return records, errors


def _records_from_body(
    body: bytes, content_type: str, key: str = "pairs"
) -> tuple[list[tuple[int, Any]], list[LineError]]:
    """Raw records with their line numbers; JSON syntax errors as LineErrors.

    JSON bodies are an array or ``{key: [...]}``; NDJSON bodies hold one record per line.
    NDJSON sent as JSON (``Content-Type: application/json``, curl's ``-H`` forgotten) is read
    as NDJSON when that is unambiguous: the body is no JSON document ("Extra data" after the
    first value) and its first line is a JSON object of its own, or the body is one object
    with a ``client_id`` (a one-line NDJSON body). Otherwise the error names the NDJSON
    content type.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [LineError(0, None, [f"body is not UTF-8: {exc}"])]
    if "ndjson" in content_type or "jsonl" in content_type or "json-seq" in content_type:
        return _ndjson_records(text)
    try:
        document = _loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            records, errors = _ndjson_records(text)
            first = min([n for n, _ in records] + [e.line for e in errors], default=0)
            if records and records[0][0] == first and isinstance(records[0][1], dict):
                return records, errors
        hint = (
            "; one record per line is NDJSON: send it with 'Content-Type: application/x-ndjson'"
            if exc.msg == "Extra data"
            else ""
        )
        return [], [LineError(exc.lineno, None, [f"invalid JSON: {exc.msg} at line {exc.lineno}{hint}"])]
    if isinstance(document, dict) and key not in document and "client_id" in document:
        return [(1, document)], []  # one record alone: a one-line NDJSON body sent as JSON
    items = document.get(key) if isinstance(document, dict) else document
    if not isinstance(items, list):
        return [], [LineError(0, None, [f'body must be a JSON array of {key} or {{"{key}": [...]}}'])]
    return list(enumerate(items, start=1)), []


def _describe(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(printable(str(p)) for p in err["loc"]) or "record"
        out.append(f"{where}: {printable(err['msg'], 500)}")
    return out


def parse_job_request(
    body: bytes,
    content_type: str,
    *,
    max_field_chars: int,
    max_pairs: int,
    allow_empty_responses: bool = False,
) -> ParsedRequest:
    records, errors = _records_from_body(body, content_type)
    result = ParsedRequest(errors=errors)
    if not records and not errors:
        result.errors.append(LineError(0, None, ["request holds no pairs"]))
        return result
    if len(records) > max_pairs:
        result.errors.append(LineError(0, None, [f"{len(records)} pairs exceed the limit of {max_pairs}"]))
        return result
    first_line: dict[str, int] = {}
    for number, record in records:
        client_id = _client_id(record)
        if not isinstance(record, dict):
            result.errors.append(LineError(number, None, ["each pair must be a JSON object"]))
            continue
        try:
            pair = PairIn.model_validate(record)
        except ValidationError as exc:
            result.errors.append(LineError(number, client_id, _describe(exc)))
            continue
        problems = []
        if not pair.client_id.strip():
            problems.append("client_id: must not be empty")
        elif len(pair.client_id) > 512:
            problems.append("client_id: longer than 512 characters")
        for name in ("prompt", "response_a", "response_b"):
            value: str = getattr(pair, name)
            if not value.strip() and not (allow_empty_responses and name != "prompt"):
                problems.append(f"{name}: must not be empty")
            elif len(value) > max_field_chars:
                problems.append(f"{name}: {len(value)} characters exceed the limit of {max_field_chars}")
        if pair.metadata and len(json.dumps(pair.metadata)) > max_field_chars:
            problems.append(f"metadata: larger than {max_field_chars} characters as JSON")
        if pair.client_id in first_line:
            problems.append(f"client_id: duplicate of line {first_line[pair.client_id]} in this request")
        else:
            first_line[pair.client_id] = number
        if problems:
            result.errors.append(LineError(number, pair.client_id, problems))
        else:
            result.pairs.append(pair)
    return result


# --- storing a job ----------------------------------------------------------------------


class ClientIdConflict(Exception):
    def __init__(self, client_ids: list[str]) -> None:
        super().__init__(", ".join(client_ids))
        self.client_ids = client_ids


@dataclass
class JobCreated:
    job_id: int
    created: int
    existing: list[str] = field(default_factory=list)
    # The same pairs were posted before, as one job: ``job_id`` is that job, nothing was stored.
    resubmitted: bool = False


def _job_posted_before(session: Session, project_id: int, existing: dict[str, Row[Any]]) -> Job | None:
    """The job that stored exactly these pairs, if one did: every pair is one job's, and that
    job stored as many new pairs as this request holds (so the sets are equal)."""
    job_ids = {pair.job_id for pair in existing.values()}
    if len(job_ids) != 1:
        return None
    job = session.get(Job, job_ids.pop())
    if job is None or job.project_id != project_id or (job.n_pairs, job.n_existing) != (len(existing), 0):
        return None
    return job


def _existing(session: Session, project_id: int, client_ids: list[str]) -> dict[str, Row[Any]]:
    """The stored pairs of these client ids: what an idempotent re-post is compared on."""
    found: dict[str, Row[Any]] = {}
    for part in chunks(client_ids):
        # SQLAlchemy's select: sqlmodel's is typed for at most four columns
        query = sa_select(
            col(Pair.client_id), col(Pair.content_hash), col(Pair.meta), col(Pair.split), col(Pair.job_id)
        ).where(col(Pair.project_id) == project_id, col(Pair.client_id).in_(part))
        found.update({row.client_id: row for row in session.execute(query)})
    return found


def create_job(engine: Engine, project_id: int, pairs: list[PairIn]) -> JobCreated:
    """Store a job's new pairs in one transaction; same id + same content is a no-op, and
    the same pairs as an earlier job (a retry) give that job back (``resubmitted``).

    Raises ClientIdConflict (nothing stored) when an id already holds different content.
    """
    hashes = {p.client_id: content_hash(p.prompt, p.response_a, p.response_b) for p in pairs}
    for attempt in range(2):
        with Session(engine, expire_on_commit=False) as session:
            existing = _existing(session, project_id, list(hashes))
            conflicts = [
                p.client_id
                for p in pairs
                if p.client_id in existing
                and (
                    existing[p.client_id].content_hash != hashes[p.client_id]
                    or existing[p.client_id].meta != p.metadata
                    or existing[p.client_id].split != p.split
                )
            ]
            if conflicts:
                raise ClientIdConflict(conflicts)
            new = [p for p in pairs if p.client_id not in existing]
            if not new and (before := _job_posted_before(session, project_id, existing)) is not None:
                ids = [p.client_id for p in pairs]
                return JobCreated(job_id=before.id, created=0, existing=ids, resubmitted=True)
            created_at = utcnow()
            # Rows by column name, built before the write transaction begins (SQLite has one
            # writer at a time), stored by bulk_insert: not the ORM's, which costs a third more.
            rows: list[dict[str, Any]] = [
                {
                    "project_id": project_id,
                    "job_id": None,
                    "client_id": p.client_id,
                    "prompt": p.prompt,
                    "response_a": p.response_a,
                    "response_b": p.response_b,
                    "metadata": p.metadata,
                    "split": p.split,
                    "content_hash": hashes[p.client_id],
                    "state": "pending",
                    "attempts": 0,
                    "safety_flag": False,
                    "safety_reasons": [],
                    "created_at": created_at,
                }
                for p in new
            ]
            job = Job(
                project_id=project_id,
                n_pairs=len(new),
                n_existing=len(pairs) - len(new),
                created_at=created_at,
            )
            session.add(job)
            session.flush()
            for row in rows:
                row["job_id"] = job.id
            try:
                bulk_insert(session, table_of(Pair), rows)
                session.commit()
            except IntegrityError:
                # A concurrent request stored one of these ids first: check again against it.
                session.rollback()
                if attempt:
                    raise
                continue
            return JobCreated(
                job_id=job.id,
                created=len(new),
                existing=[p.client_id for p in pairs if p.client_id in existing],
            )
    raise AssertionError("unreachable")


@dataclass
class JobPosted:
    """What a job post came to: refused lines, client ids that hold other content, or the job."""

    errors: list[LineError] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    created: JobCreated | None = None


def post_job(
    engine: Engine,
    project_id: int,
    body: bytes,
    content_type: str,
    *,
    max_field_chars: int,
    max_pairs: int,
    allow_empty_responses: bool = False,
) -> JobPosted:
    """Parse a job's body and store its pairs, all or nothing (what ``POST .../jobs`` does)."""
    parsed = parse_job_request(
        body,
        content_type,
        max_field_chars=max_field_chars,
        max_pairs=max_pairs,
        allow_empty_responses=allow_empty_responses,
    )
    if parsed.errors:
        return JobPosted(errors=parsed.errors)
    try:
        return JobPosted(created=create_job(engine, project_id, parsed.pairs))
    except ClientIdConflict as exc:
        return JobPosted(conflicts=exc.client_ids)


# --- human labels ------------------------------------------------------------------------


class LabelsRefused(Exception):
    """Some lines are invalid (or name no pair of the project): nothing was stored."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(f"{len(errors)} invalid line(s); nothing was stored")
        self.errors = sorted(errors, key=lambda e: e.line)


class LabelsForbidden(Exception):
    """Some lines carry a source the caller may not give (``vocab.IMPORT_SOURCES``): nothing
    was stored."""

    def __init__(self, errors: list[LineError], allowed: Collection[str]) -> None:
        super().__init__(
            f"{len(errors)} line(s) carry a label source this caller may not give; nothing was stored. "
            f"Import sources: {', '.join(sorted(allowed))}. Review, audit, calibration, adjudicated and "
            "honeypot labels come only from reviewers through the review queue"
        )
        self.errors = sorted(errors, key=lambda e: e.line)


class LabelKeyConflict(Exception):
    """An idempotency key was reused with a different label: nothing was stored."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__("idempotency key reused with a different label: " + ", ".join(keys[:20]))
        self.keys = keys


@dataclass
class LabelsStored:
    created: int
    existing: int


def _idempotency_key(item: LabelIn) -> str:
    return item.idempotency_key or f"{item.source}:{item.annotator}:{item.client_id}"


def parse_labels(
    body: bytes, content_type: str, sources: Collection[str] = IMPORT_SOURCES
) -> tuple[list[tuple[int, LabelIn]], list[LineError]]:
    """Validated labels with their line numbers, and every invalid line.

    Raises :class:`LabelsForbidden` when any line names a source outside ``sources``
    (checked before anything else about the line: who may give a label comes first).
    """
    records, errors = _records_from_body(body, content_type, key="labels")
    forbidden = [
        LineError(number, _client_id(record), [f"source: {record['source']!r} may not be imported"])
        for number, record in records
        if isinstance(record, dict)
        and isinstance(record.get("source"), str)
        and record["source"] in set(LabelSource) - set(sources)  # unknown words: a 422 below
    ]
    if forbidden:
        raise LabelsForbidden(forbidden, sources)
    if not records and not errors:
        errors.append(LineError(0, None, ["request holds no labels"]))
    parsed: list[tuple[int, LabelIn]] = []
    for number, record in records:
        try:
            item = LabelIn.model_validate(record)
        except ValidationError as exc:
            errors.append(LineError(number, _client_id(record), _describe(exc)))
            continue
        if len(_idempotency_key(item)) > MAX_IDEMPOTENCY_KEY:
            errors.append(
                LineError(
                    number,
                    item.client_id,
                    [
                        f"idempotency_key: the default key (source:annotator:client_id) is longer than "
                        f"{MAX_IDEMPOTENCY_KEY} characters; give a shorter idempotency_key"
                    ],
                )
            )
            continue
        parsed.append((number, item))
    return parsed, errors


def store_labels(
    engine: Engine,
    project: Project,
    body: bytes,
    content_type: str,
    sources: Collection[str] = IMPORT_SOURCES,
) -> LabelsStored:
    """Store human labels, all or nothing; the same idempotency key with the same label is a no-op.

    ``sources``: the label sources this caller may give. The labels route passes the default
    (a project key or the admin imports gold and import labels only); a wider set is for
    in-process simulations of the review flow (benchmarks), never for an HTTP caller.

    Raises :class:`LabelsForbidden` (a line's source is not in ``sources``),
    :class:`LabelsRefused` (bad lines, unknown client ids, a key repeated in the
    request), :class:`LabelKeyConflict` (a stored key with a different label), or
    ``IntegrityError`` when a concurrent request stored some of the same keys first.
    """
    parsed, errors = parse_labels(body, content_type, sources)
    aspects = project.aspect_settings()
    errors += [
        LineError(number, item.client_id, [problem])
        for number, item in parsed
        if (problem := label_aspects_problem(item.aspects, aspects, complete=False)) is not None
    ]
    with Session(engine) as session:
        pair_of = _pair_ids(session, project, [item.client_id for _, item in parsed])
        errors += _unknown_or_repeated(parsed, pair_of)
        if errors:
            raise LabelsRefused(errors)
        existing = _labels_by_key(session, project, [_idempotency_key(item) for _, item in parsed])
        now = utcnow()
        rows: list[dict[str, Any]] = []
        conflicts = []
        for _, item in parsed:
            row = _label_row(item, project, pair_of[item.client_id], now)
            old = existing.get(row["idempotency_key"])
            if old is None:
                rows.append(row)
            elif (old.label, old.pair_id, old.source, old.aspects) != (
                row["label"], row["pair_id"], row["source"], row.get("aspects")
            ):  # fmt: skip
                conflicts.append(row["idempotency_key"])
        if conflicts:
            raise LabelKeyConflict(conflicts)
        # Gold labels flagged honeypot make their pair a honeypot (the first answer stands).
        honeypots = {
            pair_of[item.client_id]: (to_five_point(item.label), stored_aspect_labels(item.aspects))
            for _, item in parsed
            if item.honeypot
        }
        try:
            _insert_labels(session, project, rows, honeypots, now)
            session.commit()
        except IntegrityError:
            session.rollback()
            raise
    return LabelsStored(created=len(rows), existing=len(parsed) - len(rows))


def _pair_ids(session: Session, project: Project, client_ids: list[str]) -> dict[str, int]:
    """Pair id by client id, of those of ``client_ids`` the project has."""
    pair_of: dict[str, int] = {}
    for part in chunks(client_ids):
        query = select(Pair.client_id, Pair.id).where(
            Pair.project_id == project.id, col(Pair.client_id).in_(part)
        )
        pair_of.update(session.exec(query).all())
    return pair_of


def _unknown_or_repeated(parsed: list[tuple[int, LabelIn]], pair_of: dict[str, int]) -> list[LineError]:
    """A line error per label on a client id the project lacks, and per idempotency key that an
    earlier line of the request already has."""
    errors: list[LineError] = []
    first_line: dict[str, int] = {}
    for number, item in parsed:
        if item.client_id not in pair_of:
            errors.append(
                LineError(number, item.client_id, [f"client_id: no pair {item.client_id!r} in this project"])
            )
        key = _idempotency_key(item)
        if key in first_line:
            errors.append(
                LineError(number, item.client_id, [f"idempotency key {key!r} repeats line {first_line[key]}"])
            )
        first_line.setdefault(key, number)
    return errors


def _labels_by_key(session: Session, project: Project, keys: list[str]) -> dict[str, Label]:
    """The project's stored labels with these idempotency keys."""
    found: dict[str, Label] = {}
    for part in chunks(keys):
        query = select(Label).where(Label.project_id == project.id, col(Label.idempotency_key).in_(part))
        found.update({row.idempotency_key: row for row in session.exec(query)})
    return found


def _label_row(item: LabelIn, project: Project, pair_id: int, now: datetime) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "pair_id": pair_id,
        "label": to_five_point(item.label),
        "both_bad": item.both_bad,
        "safety_flag": item.safety_flag,
        "rationale": item.rationale,
        "source": str(item.source),
        "annotator": item.annotator,
        "idempotency_key": _idempotency_key(item),
        "created_at": now,
        # Only when given: an overall-only label's row (and audit digest) is the one of before.
        **({"aspects": stored_aspect_labels(item.aspects)} if item.aspects else {}),
    }


def _insert_labels(
    session: Session,
    project: Project,
    rows: list[dict[str, Any]],
    honeypots: dict[int, tuple[str, dict[str, str] | None]],
    now: datetime,
) -> None:
    """Insert the new label rows (with their audit event) and the honeypots they make."""
    if rows:
        returning = insert(Label).returning(col(Label.id), sort_by_parameter_order=True)
        keyed = [dict(row, aspects=row.get("aspects")) for row in rows]  # one key set for executemany
        ids = session.execute(returning, keyed).scalars()
        stored = [dict(row, id=label_id) for row, label_id in zip(rows, ids, strict=True)]
        audit.record_event(
            session,
            audit.AuditKind.LABEL_WRITTEN,
            project_id=project.id,
            subject=f"project:{project.id}",
            payload=audit.labels_payload(stored),
        )
    if honeypots:
        insert_ignore(
            session,
            table_of(Honeypot),
            [
                {
                    "pair_id": pid,
                    "project_id": project.id,
                    "label": label,
                    "aspects": aspects,
                    "created_at": now,
                }
                for pid, (label, aspects) in honeypots.items()
            ],
            ["pair_id"],
        )
