"""Judging work in the database: claim pairs under leases, renew them, read earlier verdicts.

Workers claim pending pairs (or pairs whose lease expired) and hold a lease while they
judge, renewed by a heartbeat (a third of a lease apart) while the worker lives: leases can
be short, so a dead worker's pairs are judged again within a lease. The judgment cache
serves a verdict already given for the same content, judge, order and prompt version.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.db import chunks, rows_changed
from api.models import Judgment, Label, Pair, utcnow
from api.routing.route import JudgmentView
from api.vocab import CALIBRATION_SOURCES


def claim_pairs(engine: Engine, worker_id: str, limit: int, lease_seconds: float) -> list[Pair]:
    """Lease up to ``limit`` pairs: pending ones, or ones whose lease expired.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint rows without
    waiting. SQLite: one writer at a time, so the UPDATE is atomic by itself.
    """
    if limit <= 0:
        return []
    now = utcnow()
    claimable = or_(
        col(Pair.state) == "pending", and_(col(Pair.state) == "judging", col(Pair.lease_expires_at) < now)
    )
    candidates = select(col(Pair.id)).where(claimable).order_by(col(Pair.id)).limit(limit)
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
            target = col(Pair.id).in_(ids)
        else:
            target = col(Pair.id).in_(candidates.scalar_subquery())
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


def renew_lease(engine: Engine, worker_id: str, pair_id: int, lease_seconds: float) -> bool:
    """Extend a lease this worker still holds (a cascade's next stage is another round of calls)."""
    with Session(engine) as session:
        result = session.execute(
            update(Pair)
            .where(col(Pair.id) == pair_id, col(Pair.lease_owner) == worker_id, col(Pair.state) == "judging")
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        )
        session.commit()
    return bool(rows_changed(result))


def renew_leases(engine: Engine, worker_id: str, pair_ids: Iterable[int], lease_seconds: float) -> set[int]:
    """The worker's heartbeat: extend the leases it still holds on these pairs, in one UPDATE
    per chunk; returns the ids renewed (the others were lost: expired and claimed by another)."""
    renewed: set[int] = set()
    expires = utcnow() + timedelta(seconds=lease_seconds)
    with Session(engine) as session:
        for part in chunks(sorted(pair_ids)):
            renewed.update(
                session.scalars(
                    update(Pair)
                    .where(
                        col(Pair.id).in_(part),
                        col(Pair.lease_owner) == worker_id,
                        col(Pair.state) == "judging",
                    )
                    .values(lease_expires_at=expires)
                    .returning(col(Pair.id))
                )
            )
        session.commit()
    return renewed


def cached_judgments(engine: Engine, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str, str], Judgment]:
    """Successful earlier judgments by (content_hash, judge_key, order).

    ``judge_key`` (judge.client.judge_key) covers the model, endpoint, prompt, rubric and call
    parameters, so a verdict is only reused where the same call would have been made.
    """
    by_hash: dict[str, set[str]] = {}
    for digest, key in keys:
        by_hash.setdefault(digest, set()).add(key)
    found: dict[tuple[str, str, str], Judgment] = {}
    with Session(engine) as session:
        for part in chunks(sorted(by_hash)):
            rows = session.exec(
                select(Judgment).where(
                    col(Judgment.content_hash).in_(part),
                    col(Judgment.judge_key).is_not(None),
                    col(Judgment.error).is_(None),
                    Judgment.verdict != "invalid",
                )
            )
            for row in rows:
                if row.judge_key in by_hash[row.content_hash]:
                    found.setdefault((row.content_hash, row.judge_key, row.order), row)
    return found


def own_judgments(engine: Engine, pair_ids: list[int]) -> list[Judgment]:
    """The judgments these pairs already have (failed and invalid ones included; not the ones
    a retry superseded, which are asked again)."""
    with Session(engine, expire_on_commit=False) as session:
        found: list[Judgment] = []
        for part in chunks(pair_ids):
            found.extend(
                session.exec(select(Judgment).where(col(Judgment.pair_id).in_(part), Judgment.is_current()))
            )
    return found


def judgment_views(session: Session, pair_ids: list[int]) -> dict[int, list[JudgmentView]]:
    views: dict[int, list[JudgmentView]] = {pid: [] for pid in pair_ids}
    for part in chunks(pair_ids):
        query = select(Judgment).where(col(Judgment.pair_id).in_(part), Judgment.is_current())
        for j in session.exec(query):
            views[j.pair_id].append(
                JudgmentView(
                    j.judge, j.order, j.verdict, j.both_bad, j.safety_flag, j.confidence, j.error, j.aspects
                )
            )
    return views


def labelled_pairs(engine: Engine, pair_ids: list[int]) -> set[int]:
    """Which of these pairs carry a calibration-usable human label."""
    found: set[int] = set()
    with Session(engine) as session:
        for part in chunks(pair_ids):
            found.update(
                session.exec(
                    select(Label.pair_id).where(
                        col(Label.pair_id).in_(part),
                        col(Label.source).in_(CALIBRATION_SOURCES),
                    )
                )
            )
    return found
