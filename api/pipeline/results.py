"""What a client reads back: a job's status and its per-pair results."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from api.db import chunks
from api.models import Decision, Job, Judgment, Pair


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
