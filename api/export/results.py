"""What a client reads back: a job's status and its per-pair results, per job or per project.

Each result row's ``label`` is the pair's final label (:mod:`api.export.final_labels`: a
human label beats an auto-accepted judge label) with its provenance under ``final``; the
judges' own answer stays in ``judge_label``, ``chosen`` (the judges' side) and ``route``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from api.db import chunks
from api.export.final_labels import AUTO, HUMAN, DecisionView, FinalLabel, decision_judges, final_label
from api.models import CalibrationVersion, Decision, Job, Judgment, Pair, Project, version_label
from api.review.human_labels import HumanLabel, human_label_per_pair
from api.vocab import PairState
from judge.parse import invalid_answer_error
from judge.verdicts import INVALID


def job_status(session: Session, job: Job) -> dict[str, Any]:
    by_state = dict(
        session.exec(select(Pair.state, func.count()).where(Pair.job_id == job.id).group_by(Pair.state)).all()
    )
    decisions = session.exec(
        select(Decision.route, Decision.reasons, Decision.judge_calls_saved)
        .join(Pair, col(Pair.decision_id) == col(Decision.id))
        .where(Pair.job_id == job.id)
    ).all()
    by_route = Counter(route for route, _, _ in decisions)
    by_reason = Counter(reason for _, reasons, _ in decisions for reason in reasons)
    # Cost and calls count every call paid for; errors only those a retry has not asked again.
    cost, calls, errors = session.exec(
        select(
            func.coalesce(func.sum(col(Judgment.cost)), 0.0),
            func.count(col(Judgment.id)),
            func.count(col(Judgment.error)).filter(Judgment.is_current()),
        )
        .join(Pair, col(Pair.id) == col(Judgment.pair_id))
        .where(Pair.job_id == job.id)
    ).one()
    recent_errors = session.exec(
        select(Pair.client_id, Judgment.judge, Judgment.order, Judgment.error)
        .join(Pair, col(Pair.id) == col(Judgment.pair_id))
        .where(Pair.job_id == job.id, col(Judgment.error).is_not(None), Judgment.is_current())
        .order_by(col(Judgment.id).desc())
        .limit(20)
    ).all()
    total = job.n_pairs
    done = by_state.get(PairState.DONE, 0)
    cancelled = by_state.get(PairState.CANCELLED, 0)
    return {
        "id": job.id,
        "project_id": job.project_id,
        "created_at": job.created_at,
        "pairs": total,
        "existing_pairs_skipped": job.n_existing,
        "done": done,
        "progress": (done / total) if total else 1.0,
        # Complete: nothing left to judge (a cancelled pair is not judged unless the job is retried).
        "complete": done + cancelled == total,
        "cancelled": cancelled,
        "by_state": {s.value: by_state.get(s, 0) for s in PairState},
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


@dataclass(frozen=True)
class LabelContext:
    """What a project's final labels are read against: its versions' guarantees and its panel."""

    guarantees: dict[str, float | None]
    panel: list[str]
    stages: list[list[str]] | None
    prompt_version: str

    def final(self, decision: DecisionView | None, human: HumanLabel | None) -> FinalLabel:
        return final_label(
            decision,
            human,
            guarantees=self.guarantees,
            judges=decision_judges(self.panel, self.stages, decision.stage if decision else None),
            prompt_version=self.prompt_version,
        )


def decision_view(decision: Decision | None) -> DecisionView | None:
    if decision is None:
        return None
    return DecisionView(
        route=decision.route,
        label=decision.label,
        chosen=decision.chosen,
        confidence=decision.confidence,
        version=decision.version,
        stage=decision.stage,
    )


def label_context(session: Session, project: Project) -> LabelContext:
    versions = session.exec(
        select(CalibrationVersion.version, CalibrationVersion.guaranteed_agreement).where(
            CalibrationVersion.project_id == project.id
        )
    ).all()
    return LabelContext(
        guarantees={version_label(v): g for v, g in versions},
        panel=[spec.model for spec in project.judge_specs()],
        stages=project.cascade_stages(),
        prompt_version=project.prompt_version,
    )


def _judgments(session: Session, pair_ids: Sequence[int]) -> dict[int, list[Judgment]]:
    found: dict[int, list[Judgment]] = {}
    for part in chunks(list(pair_ids)):
        query = (
            select(Judgment)
            .where(col(Judgment.pair_id).in_(part), Judgment.is_current())
            .order_by(col(Judgment.id))
        )
        for j in session.exec(query):
            found.setdefault(j.pair_id, []).append(j)
    return found


def judgment_error(judgment: Judgment) -> str | None:
    """A judgment's error as results show it: the failed call's, or why an answer held no
    verdict (judge.parse.invalid_answer_error; not stored, so routing's failures stay calls)."""
    if judgment.error is None and judgment.verdict == INVALID:
        return invalid_answer_error(judgment.raw)
    return judgment.error


def pair_judgments(session: Session, pair_id: int) -> list[dict[str, Any]]:
    """Every judgment of a pair with the judge's raw answer, oldest first (admins only: raw
    answers quote the pair's texts)."""
    query = select(Judgment).where(Judgment.pair_id == pair_id).order_by(col(Judgment.id))
    return [
        {
            "id": j.id,
            "judge": j.judge,
            "order": j.order,
            "verdict": j.verdict,
            "confidence": j.confidence,
            "raw": j.raw,
            "error": judgment_error(j),
            "attempts": j.attempts,
            "latency_ms": j.latency_ms,
            "prompt_tokens": j.prompt_tokens,
            "completion_tokens": j.completion_tokens,
            "cost": j.cost,
            "cached": j.cached,
            "created_at": j.created_at,
        }
        for j in session.exec(query)
    ]


def _row(
    pair: Pair, decision: Decision | None, final: FinalLabel, judgments: list[Judgment]
) -> dict[str, Any]:
    return {
        "pair_id": pair.id,
        "client_id": pair.client_id,
        "state": pair.state,
        "split": pair.split,
        "label": final.label,
        "label_source": final.source,
        "final": final.provenance(),
        "judge_label": decision.label if decision else None,
        "chosen": decision.chosen if decision else None,
        "confidence": decision.confidence if decision else None,
        "route": decision.route if decision else None,
        "reasons": decision.reasons if decision else [],
        "decision_version": decision.version if decision else None,
        "decision_stage": decision.stage if decision else None,
        "aspects": decision.aspects if decision else None,
        "judgments": [
            {
                "judge": j.judge,
                "order": j.order,
                "verdict": j.verdict,
                "confidence": j.confidence,
                "both_bad": j.both_bad,
                "safety_flag": j.safety_flag,
                "cached": j.cached,
                "error": judgment_error(j),
                "aspects": j.aspects,
            }
            for j in judgments
        ],
    }


def result_rows(session: Session, job_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """Per-pair results of a job, in pair-id order, after the cursor ``after``."""
    rows = session.exec(
        select(Pair, Decision)
        .join(Decision, col(Decision.id) == col(Pair.decision_id), isouter=True)
        .where(Pair.job_id == job_id, col(Pair.id) > after)
        .order_by(col(Pair.id))
        .limit(limit)
    ).all()
    if not rows:
        return []
    project = session.get(Project, rows[0][0].project_id)
    assert project is not None  # a pair's project exists (foreign key)
    context = label_context(session, project)
    pair_ids = [p.id for p, _ in rows]
    humans = human_label_per_pair(session, project.id, pair_ids)
    judgments = _judgments(session, pair_ids)
    return [
        _row(
            pair,
            decision,
            context.final(decision_view(decision), humans.get(pair.id)),
            judgments.get(pair.id, []),
        )
        for pair, decision in rows
    ]


# Label sources a project-results filter may ask for; "none" is a pair without a final label.
SOURCES = (HUMAN, AUTO, "none")


def project_result_rows(
    session: Session,
    project: Project,
    after: int,
    limit: int,
    *,
    route: str | None = None,
    source: str | None = None,
    split: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a project's per-pair results with text, in pair-id order after ``after``,
    filtered by route, label source and split; and the cursor of the next page (None: done)."""
    context = label_context(session, project)
    out: list[dict[str, Any]] = []
    cursor = after
    scan = max(limit, 500)
    while len(out) < limit:
        query = (
            select(Pair, Decision)
            .join(Decision, col(Decision.id) == col(Pair.decision_id), isouter=True)
            .where(Pair.project_id == project.id, col(Pair.id) > cursor)
        )
        if route is not None:
            query = query.where(Decision.route == route)
        if split is not None:
            query = query.where(Pair.split == split)
        rows = session.exec(query.order_by(col(Pair.id)).limit(scan)).all()
        if not rows:
            return out, None
        pair_ids = [p.id for p, _ in rows]
        humans = human_label_per_pair(session, project.id, pair_ids)
        judgments = _judgments(session, pair_ids)
        for pair, decision in rows:
            cursor = pair.id
            final = context.final(decision_view(decision), humans.get(pair.id))
            if source is not None and (final.source or "none") != source:
                continue
            row = _row(pair, decision, final, judgments.get(pair.id, []))
            row.update(
                job_id=pair.job_id,
                prompt=pair.prompt,
                response_a=pair.response_a,
                response_b=pair.response_b,
                metadata=pair.meta,
            )
            out.append(row)
            if len(out) == limit:
                return out, cursor
        if len(rows) < scan:
            return out, None
    return out, cursor
