"""Database operations shared by the routes and the worker (the thin shell around storage)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api import review_queue
from api.db import chunks
from api.models import (
    CalibrationVersion,
    Decision,
    Job,
    Judgment,
    Pair,
    PairIn,
    Project,
    utcnow,
    version_label,
)
from judge.content import content_hash

# --- ingest ------------------------------------------------------------------------------


class ClientIdConflict(Exception):
    def __init__(self, client_ids: list[str]) -> None:
        super().__init__(", ".join(client_ids))
        self.client_ids = client_ids


@dataclass
class JobCreated:
    job: Job
    created: int
    existing: list[str] = field(default_factory=list)


def _existing(session: Session, project_id: int, client_ids: list[str]) -> dict[str, Pair]:
    found: dict[str, Pair] = {}
    for part in chunks(client_ids):
        rows = session.exec(select(Pair).where(Pair.project_id == project_id, Pair.client_id.in_(part)))
        found.update({row.client_id: row for row in rows})
    return found


def create_job(engine: Engine, project: Project, pairs: list[PairIn]) -> JobCreated:
    """Store a job's new pairs in one transaction; same id + same content is a no-op.

    Raises ClientIdConflict (nothing stored) when an id already holds different content.
    """
    hashes = {p.client_id: content_hash(p.prompt, p.response_a, p.response_b) for p in pairs}
    for attempt in range(2):
        with Session(engine, expire_on_commit=False) as session:
            existing = _existing(session, project.id, list(hashes))  # type: ignore[arg-type]
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
            job = Job(project_id=project.id, n_pairs=len(new), n_existing=len(pairs) - len(new))  # type: ignore[arg-type]
            session.add(job)
            session.flush()
            rows = [
                {
                    "project_id": project.id,
                    "job_id": job.id,
                    "client_id": p.client_id,
                    "prompt": p.prompt,
                    "response_a": p.response_a,
                    "response_b": p.response_b,
                    "meta": p.metadata,
                    "split": p.split,
                    "content_hash": hashes[p.client_id],
                    "state": "pending",
                    "attempts": 0,
                    "safety_flag": False,
                    "safety_reasons": [],
                    "created_at": job.created_at,
                }
                for p in new
            ]
            try:
                if rows:
                    session.execute(insert(Pair), rows)
                session.commit()
            except IntegrityError:
                # A concurrent request stored one of these ids first: check again against it.
                session.rollback()
                if attempt:
                    raise
                continue
            return JobCreated(
                job=job, created=len(new), existing=[p.client_id for p in pairs if p.client_id in existing]
            )
    raise AssertionError("unreachable")


# --- claiming work with leases -----------------------------------------------------------


def claim_pairs(engine: Engine, worker_id: str, limit: int, lease_seconds: float) -> list[Pair]:
    """Lease up to ``limit`` pairs: pending ones, or ones whose lease expired.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint rows without
    waiting. SQLite: one writer at a time, so the UPDATE is atomic by itself.
    """
    if limit <= 0:
        return []
    now = utcnow()
    claimable = or_(Pair.state == "pending", and_(Pair.state == "judging", Pair.lease_expires_at < now))
    candidates = select(Pair.id).where(claimable).order_by(Pair.id).limit(limit)
    lease = {
        "state": "judging",
        "lease_owner": worker_id,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "attempts": Pair.attempts + 1,
    }
    with Session(engine, expire_on_commit=False) as session:
        if engine.dialect.name == "postgresql":
            # Lock first, update second: PostgreSQL may re-run a LIMIT subquery inside
            # UPDATE ... WHERE id IN (...) and so take more rows than asked for.
            ids = list(session.exec(candidates.with_for_update(skip_locked=True)))
            target = Pair.id.in_(ids)
        else:
            target = Pair.id.in_(candidates.scalar_subquery())
        statement = (
            update(Pair)
            .where(target, claimable)
            .values(**lease)
            .returning(Pair)
            .execution_options(synchronize_session=False)
        )
        pairs = list(session.scalars(statement))
        session.commit()
    return sorted(pairs, key=lambda p: p.id or 0)


def cached_judgments(
    engine: Engine, prompt_version: str, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str, str], Judgment]:
    """Successful earlier judgments by (content_hash, judge, order) for this prompt version."""
    by_hash: dict[str, set[str]] = {}
    for digest, judge in keys:
        by_hash.setdefault(digest, set()).add(judge)
    found: dict[tuple[str, str, str], Judgment] = {}
    with Session(engine) as session:
        for part in chunks(sorted(by_hash)):
            rows = session.exec(
                select(Judgment).where(
                    Judgment.content_hash.in_(part),
                    Judgment.prompt_version == prompt_version,
                    Judgment.error.is_(None),  # type: ignore[union-attr]
                    Judgment.verdict != "invalid",
                )
            )
            for row in rows:
                if row.judge in by_hash[row.content_hash]:
                    found.setdefault((row.content_hash, row.judge, row.order), row)
    return found


def renew_lease(engine: Engine, worker_id: str, pair_id: int, lease_seconds: float) -> bool:
    """Extend a lease this worker still holds (a cascade's next stage is another round of calls)."""
    with Session(engine) as session:
        result = session.execute(
            update(Pair)
            .where(Pair.id == pair_id, Pair.lease_owner == worker_id, Pair.state == "judging")  # type: ignore[arg-type]
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        )
        session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def own_judgments(engine: Engine, pair_ids: list[int]) -> list[Judgment]:
    """The judgments these pairs already have (failed and invalid ones included)."""
    with Session(engine, expire_on_commit=False) as session:
        found: list[Judgment] = []
        for part in chunks(pair_ids):
            found.extend(session.exec(select(Judgment).where(Judgment.pair_id.in_(part))))
    return found


@dataclass
class PairOutcome:
    pair_id: int
    judgments: list[dict[str, Any]]
    decision: dict[str, Any]
    safety_flag: bool = False
    safety_reasons: list[str] = field(default_factory=list)


# The first key of the advisory locks that hold a project's calibration versions (hold_versions).
VERSIONS_LOCK = 0x7072656C  # "prel"


def store_outcomes(engine: Engine, worker_id: str, outcomes: list[PairOutcome]) -> int:
    """Write judgments and decisions for pairs this worker still leases, in one transaction.

    A pair whose lease was lost (expired and re-claimed) is skipped: the new holder writes it.
    A pair decided under a calibration version that is no longer its project's latest (a
    refit or the kill-switch landed while it was being judged) keeps its judgments but goes
    back to the queue, to be routed under the current gate. Returns the pairs now done.
    """
    if not outcomes:
        return 0
    now = utcnow()
    with Session(engine) as session:
        held: dict[int, int] = {}
        for part in chunks([o.pair_id for o in outcomes]):
            held.update(
                session.exec(
                    select(Pair.id, Pair.project_id).where(
                        Pair.id.in_(part), Pair.lease_owner == worker_id, Pair.state == "judging"
                    )
                ).all()  # type: ignore[arg-type]
            )
        kept = [o for o in outcomes if o.pair_id in held]
        if not kept:
            return 0
        hold_versions(session, held.values())  # no version lands between this check and the commit
        latest = latest_version_names(session, set(held.values()))
        done = [o for o in kept if o.decision["version"] == latest[held[o.pair_id]]]
        outdated = [o for o in kept if o.decision["version"] != latest[held[o.pair_id]]]
        judgment_rows = [dict(j, pair_id=o.pair_id, created_at=now) for o in kept for j in o.judgments]
        if judgment_rows:
            session.execute(insert(Judgment), judgment_rows)
        decision_of: dict[int, int] = {}
        if done:
            decision_rows = [dict(o.decision, pair_id=o.pair_id, created_at=now) for o in done]
            ids = session.execute(
                insert(Decision).returning(Decision.id, Decision.pair_id), decision_rows
            ).all()
            decision_of = {pair_id: decision_id for decision_id, pair_id in ids}
        session.execute(
            update(Pair),
            [
                {
                    "id": o.pair_id,
                    "state": "done" if o.pair_id in decision_of else "pending",
                    "decision_id": decision_of.get(o.pair_id),
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "judged_at": now,
                    "safety_flag": o.safety_flag,
                    "safety_reasons": o.safety_reasons,
                }
                for o in kept
            ],
        )
        # Review queue hook: enqueue pairs routed to a human, in this same transaction.
        review_queue.on_decisions_written(session, [o.pair_id for o in done])
        review_queue.withdraw(session, [o.pair_id for o in outdated])
        session.commit()
    return len(done)


def hold_versions(session: Session, project_ids: Iterable[int], *, adding: bool = False) -> None:
    """Keep these projects' calibration versions as they are until the transaction ends.

    A decision is stored only under its project's latest version, and a new version's
    re-routing must see every pair decided before it landed. So writers of decisions hold the
    projects shared and the writer of a new version (``adding``) holds its project exclusively:
    no version lands between a decision writer's check of "latest" and its commit, and two
    version writers never read the same latest.

    PostgreSQL: transaction-level advisory locks, which queue fairly (a steady stream of
    decision writers cannot starve a refit, as it could with FOR SHARE row locks) and leave
    the project row alone. SQLite has one writer at a time: taking the write lock first, with
    a no-op UPDATE of a column no foreign key points at (SET id=id would make SQLite check
    every child row), gives the same order. That relies on pysqlite's default transaction
    handling, where earlier SELECTs run outside any transaction and so hold no old snapshot.
    """
    ids = sorted(set(project_ids))
    if not ids:
        return
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Project)
            .where(Project.id.in_(ids))  # type: ignore[union-attr]
            .values(allow_empty_responses=Project.allow_empty_responses)
        )
        return
    lock = func.pg_advisory_xact_lock if adding else func.pg_advisory_xact_lock_shared
    for project_id in ids:  # in order, so two writers of several projects cannot deadlock
        session.execute(select(lock(VERSIONS_LOCK, project_id)))


def latest_version_names(session: Session, project_ids: set[int]) -> dict[int, str]:
    """Name of each project's latest calibration version ("routing-v0" before the first)."""
    rows = session.exec(
        select(CalibrationVersion.project_id, func.max(CalibrationVersion.version))
        .where(CalibrationVersion.project_id.in_(project_ids))  # type: ignore[attr-defined]
        .group_by(CalibrationVersion.project_id)
    ).all()
    names = {pid: version_label(None) for pid in project_ids}
    names.update({pid: version_label(version) for pid, version in rows})
    return names


# --- reading jobs ------------------------------------------------------------------------


def job_status(session: Session, job: Job) -> dict[str, Any]:
    by_state = dict(
        session.exec(select(Pair.state, func.count()).where(Pair.job_id == job.id).group_by(Pair.state)).all()
    )
    decisions = session.exec(
        select(Decision.route, Decision.reasons, Decision.judge_calls_saved)
        .join(Pair, Pair.decision_id == Decision.id)
        .where(Pair.job_id == job.id)
    ).all()
    by_route = Counter(route for route, _, _ in decisions)
    by_reason = Counter(reason for _, reasons, _ in decisions for reason in reasons)
    cost, calls, errors = session.exec(
        select(
            func.coalesce(func.sum(Judgment.cost), 0.0), func.count(Judgment.id), func.count(Judgment.error)
        )
        .join(Pair, Pair.id == Judgment.pair_id)
        .where(Pair.job_id == job.id)
    ).one()
    recent_errors = session.exec(
        select(Pair.client_id, Judgment.judge, Judgment.order, Judgment.error)
        .join(Pair, Pair.id == Judgment.pair_id)
        .where(Pair.job_id == job.id, Judgment.error.is_not(None))  # type: ignore[union-attr]
        .order_by(Judgment.id.desc())  # type: ignore[union-attr]
        .limit(20)
    ).all()
    total = job.n_pairs
    done = by_state.get("done", 0)
    return {
        "id": job.id,
        "project_id": job.project_id,
        "created_at": job.created_at,
        "pairs": total,
        "existing_pairs_skipped": job.n_existing,
        "done": done,
        "progress": (done / total) if total else 1.0,
        "complete": done == total,
        "by_state": {s: by_state.get(s, 0) for s in ("pending", "judging", "done")},
        "by_route": dict(by_route),
        "by_reason": dict(by_reason),
        "judge_calls": calls,
        # Cascade projects: judge calls the pairs' decisions did not need (full panel minus made).
        "judge_calls_saved": sum(saved or 0 for _, _, saved in decisions),
        "judge_errors": errors,
        "cost": float(cost),
        "recent_errors": [
            {"client_id": c, "judge": j, "order": o, "error": e} for c, j, o, e in recent_errors
        ],
    }


def result_rows(session: Session, job_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """Per-pair results of a job, in pair-id order, after the cursor ``after``."""
    rows = session.exec(
        select(Pair, Decision)
        .join(Decision, Decision.id == Pair.decision_id, isouter=True)
        .where(Pair.job_id == job_id, Pair.id > after)
        .order_by(Pair.id)
        .limit(limit)
    ).all()
    judgments: dict[int, list[Judgment]] = {}
    for part in chunks([p.id for p, _ in rows]):
        for j in session.exec(select(Judgment).where(Judgment.pair_id.in_(part)).order_by(Judgment.id)):
            judgments.setdefault(j.pair_id, []).append(j)
    out = []
    for pair, decision in rows:
        out.append(
            {
                "pair_id": pair.id,
                "client_id": pair.client_id,
                "state": pair.state,
                "split": pair.split,
                "label": decision.label if decision else None,
                "chosen": decision.chosen if decision else None,
                "confidence": decision.confidence if decision else None,
                "route": decision.route if decision else None,
                "reasons": decision.reasons if decision else [],
                "decision_version": decision.version if decision else None,
                "decision_stage": decision.stage if decision else None,
                "judgments": [
                    {
                        "judge": j.judge,
                        "order": j.order,
                        "verdict": j.verdict,
                        "confidence": j.confidence,
                        "both_bad": j.both_bad,
                        "safety_flag": j.safety_flag,
                        "cached": j.cached,
                        "error": j.error,
                    }
                    for j in judgments.get(pair.id or 0, [])
                ],
            }
        )
    return out
