"""The one writer of decisions: a pair's routing outcome stored, its review item kept in step.

Two paths write decisions, both through here: the worker's batches (:func:`store_outcomes`,
with the judgments they were made from) and re-routing under a new calibration version
(:func:`reroute`). Each stores a decision only under its project's latest version, holding
the versions lock (``versions.hold_versions``) until it commits, and brings the review
queue in line in the same transaction.

A job's recovery writes pair states here too: :func:`retry_job` sends pairs with failed or
invalid judgments back to judging (those judgments superseded, the valid ones kept) and
:func:`cancel_job` ends the job's unjudged pairs in ``cancelled``. The worker's writes
check a pair's state and lease, so a late result on a cancelled pair is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api import audit
from api.calibrate.versions import gate_model, hold_versions, latest_version_names, version_name
from api.db import chunks, rows_changed
from api.judging.claims import judgment_views
from api.models import CalibrationVersion, Decision, Judgment, Pair, Project, utcnow
from api.review import queue
from api.routing.route import GatedInput, RouteDecision, route_many, views_frame
from api.schemas import panel_calls
from api.vocab import PairState


@dataclass
class PairOutcome:
    pair_id: int
    judgments: list[dict[str, Any]]
    decision: dict[str, Any]
    safety_flag: bool = False
    safety_reasons: list[str] = field(default_factory=list)
    injection_reasons: list[str] = field(default_factory=list)  # judge.injection: a hard flag if any


def store_outcomes(engine: Engine, worker_id: str, outcomes: list[PairOutcome]) -> int:
    """Write judgments and decisions for pairs this worker still leases, in one transaction.

    A pair whose lease was lost (expired and re-claimed) is skipped: the new holder writes it.
    The lease check locks the rows it passes until the commit, so a pair cannot change hands
    between the check and the writes: one worker's judgments and decision per pair, never two.
    A pair decided under a calibration version that is no longer its project's latest (a
    refit or the kill-switch landed while it was being judged) keeps its judgments but goes
    back to the queue, to be routed under the current gate. Returns the pairs now done.
    """
    if not outcomes:
        return 0
    now = utcnow()
    with Session(engine) as session:
        ids = [o.pair_id for o in outcomes]
        projects: set[int] = set()
        for part in chunks(ids):
            projects.update(session.exec(select(Pair.project_id).where(col(Pair.id).in_(part))))
        if not projects:
            return 0
        # The versions lock first, then the pairs' (the order re-routing takes them in).
        hold_versions(session, projects)  # no version lands between this check and the commit
        held: dict[int, int] = {}
        for part in chunks(ids):
            # A no-op UPDATE, not a SELECT: it locks the rows it finds held until the commit,
            # so a claim skips them (SKIP LOCKED) or, had it won the race, they are not found.
            held.update(
                session.execute(
                    update(Pair)
                    .where(
                        col(Pair.id).in_(part),
                        col(Pair.lease_owner) == worker_id,
                        col(Pair.state) == "judging",
                    )
                    .values(lease_owner=worker_id)
                    .returning(col(Pair.id), col(Pair.project_id))
                ).all()
            )
        # One outcome per pair, should a pair have been judged twice in one batch.
        kept = list({o.pair_id: o for o in outcomes if o.pair_id in held}.values())
        if not kept:
            return 0
        latest = latest_version_names(session, set(held.values()))
        done = [o for o in kept if o.decision["version"] == latest[held[o.pair_id]]]
        outdated = [o for o in kept if o.decision["version"] != latest[held[o.pair_id]]]
        judgment_rows = [dict(j, pair_id=o.pair_id, created_at=now) for o in kept for j in o.judgments]
        if judgment_rows:
            session.execute(insert(Judgment), judgment_rows)
        decision_of = _insert_decisions(
            session, [dict(o.decision, pair_id=o.pair_id, created_at=now) for o in done]
        )
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
                    "injection_reasons": o.injection_reasons,
                }
                for o in kept
            ],
        )
        # Review queue hook: enqueue pairs routed to a human, in this same transaction.
        queue.on_decisions_written(session, [o.pair_id for o in done])
        queue.withdraw(session, [o.pair_id for o in outdated])
        _audit_decisions(session, [dict(o.decision, pair_id=o.pair_id) for o in done], decision_of, held)
        session.commit()
    return len(done)


def reroute(engine: Engine, project: Project, version: CalibrationVersion) -> int:
    """Write a decision under ``version`` for every judged pair of the project.

    Under a cascade, a pair that now needs a stage it was never judged by goes back to the
    judging queue (state ``pending``) instead: the worker calls the missing stage (earlier
    stages come from the judgment cache) and routes it.
    """
    gate = gate_model(version)
    name = version_name(version)
    routing = project.routing_settings()
    panel = panel_calls(project.judge_specs())
    written = 0
    with Session(engine) as session:
        pair_rows = session.exec(
            select(Pair.id, Pair.safety_flag, Pair.injection_reasons)
            .where(Pair.project_id == project.id, Pair.state == "done")
            .order_by(col(Pair.id))
        ).all()
    for part in chunks(pair_rows, 2000):
        ids = [pid for pid, _, _ in part]
        with Session(engine) as session:
            views = judgment_views(session, ids)
            frame = views_frame(views)
            inputs = {pid: GatedInput(views[pid], flag, bool(injection)) for pid, flag, injection in part}
            decisions = route_many(ids, inputs, frame, gate, name, routing, project.aspect_settings())
            hold_versions(session, [project.id])
            if latest_version_names(session, {project.id})[project.id] != name:
                # A newer version landed: its own re-routing covers every pair, and a decision
                # under this one written after it would be stale.
                break
            unjudged = [pid for pid, d in decisions.items() if d.next_stage is not None]
            if unjudged:
                requeue(session, unjudged)
            now = utcnow()
            rows = [
                dict(decision_fields(d, name, len(inputs[pid].views), panel), pair_id=pid, created_at=now)
                for pid, d in decisions.items()
                if d.next_stage is None
            ]
            decision_of = _insert_decisions(session, rows)
            if decision_of:
                session.execute(
                    update(Pair), [{"id": pid, "decision_id": did} for pid, did in decision_of.items()]
                )
            # Pairs whose route changed move in or out of the review queues, in this transaction.
            queue.on_decisions_written(session, [row["pair_id"] for row in rows])
            _audit_decisions(session, rows, decision_of, dict.fromkeys(decision_of, project.id))
            session.commit()
            written += len(rows)
    return written


def _insert_decisions(session: Session, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Insert decision rows; the new decision id of each pair (its pair row is the caller's to point)."""
    if not rows:
        return {}
    rows = [dict(row, aspects=row.get("aspects")) for row in rows]  # one key set for executemany
    ids = session.execute(insert(Decision).returning(col(Decision.id), col(Decision.pair_id)), rows).all()
    return {pair_id: decision_id for decision_id, pair_id in ids}


def _audit_decisions(
    session: Session, rows: list[dict[str, Any]], decision_of: dict[int, int], project_of: dict[int, int]
) -> None:
    """One audit event per project for a batch of stored decisions (last: it takes the log's
    turn until the commit)."""
    stored: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        pair_id = row["pair_id"]
        if pair_id in decision_of:
            content = {k: v for k, v in row.items() if k != "created_at"}
            stored.setdefault(project_of[pair_id], []).append(dict(content, id=decision_of[pair_id]))
    for project_id, batch in sorted(stored.items()):
        batch.sort(key=lambda row: row["id"])
        versions = sorted({row["version"] for row in batch})
        audit.record_event(
            session,
            audit.AuditKind.DECISIONS,
            project_id=project_id,
            subject=f"project:{project_id}",
            payload=dict(audit.rows_payload(batch), versions=versions),
        )


def decision_fields(decision: RouteDecision, version: str, n_judgments: int, panel: int) -> dict[str, Any]:
    """A routing decision as Decision columns (its pair and time are the writer's to add).
    ``panel``: the calls the whole panel makes on a pair (:func:`api.schemas.panel_calls`)."""
    fields: dict[str, Any] = {
        "label": decision.label,
        "chosen": decision.chosen,
        "confidence": decision.confidence,
        "route": decision.route,
        "reasons": decision.reasons,
        "version": version,
        "stage": decision.stage,
        "judge_calls_saved": max(0, panel - n_judgments),
    }
    if decision.aspects:  # only then: without aspects the row (and its audit digest) of before
        fields["aspects"] = {name: outcome.stored() for name, outcome in decision.aspects.items()}
    return fields


def requeue(session: Session, pair_ids: list[int]) -> int:
    """Send judged pairs back to the judging queue, out of the review queues.

    Until the worker routes them again they have no current decision (results show them
    pending); their earlier decisions stay in the history.
    """
    n = 0
    for part in chunks(pair_ids):
        result = session.execute(
            update(Pair)
            .where(col(Pair.id).in_(part), col(Pair.state) == "done")
            .values(state="pending", decision_id=None, lease_owner=None, lease_expires_at=None)
        )
        n += rows_changed(result)
    queue.withdraw(session, pair_ids)
    return n


def retry_job(session: Session, project_id: int, job_id: int, *, include_invalid: bool = True) -> int:
    """Send the job's judged pairs with a failed (or, with ``include_invalid``, unreadable)
    judgment back to the judging queue, and resume its cancelled pairs. Returns the pairs
    re-queued; the caller commits.

    Only the failed and invalid judgments are superseded (kept in the call log, read no
    more): the worker serves a re-queued pair's valid verdicts from its own judgments and asks
    only the superseded (judge, order) calls again, then routes it. The content cache never
    serves a failed or invalid verdict (:func:`api.judging.claims.cached_judgments`). Pairs
    being judged now are left alone. A pair with a human label is re-judged too (its judges'
    verdicts calibrate the gate); its human label still decides its final label. Its open
    review item turns stale meanwhile, as on any re-routing.
    """
    bad = or_(col(Judgment.error).is_not(None), col(Judgment.verdict).is_(None))
    if include_invalid:
        bad = or_(bad, col(Judgment.verdict) == "invalid")
    # The versions lock: re-routing (which writes decisions on done pairs) takes turns with this.
    hold_versions(session, [project_id])
    failed = set(
        session.exec(
            select(Judgment.pair_id)
            .join(Pair, col(Pair.id) == col(Judgment.pair_id))
            .where(Pair.job_id == job_id, Pair.state == PairState.DONE, Judgment.is_current(), bad)
        )
    )
    cancelled = set(
        session.exec(select(Pair.id).where(Pair.job_id == job_id, Pair.state == PairState.CANCELLED))
    )
    requeued: list[int] = []
    now = utcnow()
    for part in chunks(sorted(failed | cancelled)):
        # Under the state check: a pair that changed meanwhile (claimed, re-routed) is not touched.
        requeued.extend(
            session.scalars(
                update(Pair)
                .where(col(Pair.id).in_(part), col(Pair.state).in_((PairState.DONE, PairState.CANCELLED)))
                .values(state=PairState.PENDING, decision_id=None, lease_owner=None, lease_expires_at=None)
                .returning(col(Pair.id))
            )
        )
    superseded = 0
    for part in chunks(sorted(requeued)):
        superseded += rows_changed(
            session.execute(
                update(Judgment)
                .where(col(Judgment.pair_id).in_(part), Judgment.is_current(), bad)
                .values(superseded_at=now)
            )
        )
    queue.withdraw(session, requeued)
    audit.record_event(
        session,
        audit.AuditKind.JOB_RETRIED,
        project_id=project_id,
        subject=f"job:{job_id}",
        payload={
            "requeued": len(requeued),
            "resumed": len(cancelled & set(requeued)),
            "judgments_superseded": superseded,
            "include_invalid": include_invalid,
        },
    )
    return len(requeued)


def cancel_job(session: Session, project_id: int, job_id: int) -> int:
    """End every unjudged pair of the job (pending, or leased by a worker) in ``cancelled``;
    judged pairs keep their judgments and decisions. Returns the pairs cancelled by this call
    (0 when called again: idempotent). The caller commits.

    A worker holding such a pair loses its lease: :func:`store_outcomes` stores results only
    for pairs still ``judging`` under the worker's lease, so the calls in flight are dropped
    (their cost is not logged) and nothing is written back as judged.
    """
    # Pending pairs first, then leased ones: a pair claimed between the two is caught by the
    # second (a pair finished between them is judged, and stays so). Counted by state: the
    # audit event says how many pairs' calls in flight were dropped.
    by_state = {
        state: rows_changed(
            session.execute(
                update(Pair)
                .where(col(Pair.job_id) == job_id, col(Pair.state) == state)
                .values(state=PairState.CANCELLED, lease_owner=None, lease_expires_at=None)
            )
        )
        for state in (PairState.PENDING, PairState.JUDGING)
    }
    cancelled = sum(by_state.values())
    if cancelled:
        audit.record_event(
            session,
            audit.AuditKind.JOB_CANCELLED,
            project_id=project_id,
            subject=f"job:{job_id}",
            payload={"cancelled": cancelled, "in_flight": by_state[PairState.JUDGING]},
        )
    return cancelled
