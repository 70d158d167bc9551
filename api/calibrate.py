"""The calibration gate as a service: labels in, versions out, pairs re-routed.

The math lives in ``calibration/`` (pure); this module only moves data between the
database and those functions:

* :func:`refit` reads the project's judgments and its *usable* human labels (sources in
  ``CALIBRATION_SOURCES``: a random gold sample and the audit stream — review labels are
  left out because reviewers see the uncertain pairs, a selected sample), fits the gate,
  stores a new :class:`CalibrationVersion` and re-routes every judged pair under it.
* :func:`check_drift` runs the kill-switch test on the audit labels since the gate opened
  and closes the gate at once when audited agreement is below target with confidence.
* :func:`maintain` is what workers call every few seconds: refit after ``refit_every`` new
  usable labels, then the drift check.
* :class:`GateCache` gives the worker the current gate of a project, cheaply.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api import review_queue
from api.crud import hold_versions, latest_version_names
from api.db import chunks
from api.models import (
    CALIBRATION_SOURCES,
    CalibrationVersion,
    Decision,
    Judgment,
    Label,
    Pair,
    Project,
    RoutingSettings,
    utcnow,
    version_label,
)
from api.routing import JudgmentView, RouteDecision, hard_reasons, route, summarize
from calibration.cascade import CascadeModel, fit_cascade
from calibration.drift import drift_alarm
from calibration.features import build_features
from calibration.gate import GateModel, fit_gate
from judge.verdicts import side

log = logging.getLogger("prelabel.calibrate")

SOURCE_WHY = {
    "gold": "used: a random calibration sample, declared as such by the importer",
    "audit": "used: a random share of would-be auto-accepts (unbiased for auto-accept agreement)",
    "calibration": "used: reviewers' labels on the random calibration sample of all pairs",
    "review": "not used: reviewers see pairs routed for uncertainty, a selected (biased) sample",
    "import": "not used: how these pairs were chosen is unknown; import them as source=gold if random",
}


def version_name(version: CalibrationVersion | None) -> str:
    return version_label(version.version if version is not None else None)


# --- reading -----------------------------------------------------------------------------


def judgments_frame(session: Session, project_id: int, pair_ids: list[int] | None = None) -> pd.DataFrame:
    """Long table (pair_id, judge, order, verdict, confidence, failed) of a project's judgments."""
    query = select(
        Judgment.pair_id,
        Judgment.judge,
        Judgment.order,
        Judgment.verdict,
        Judgment.confidence,
        Judgment.error,
    )
    rows: list[Any] = []
    if pair_ids is None:
        rows = list(
            session.exec(query.join(Pair, Pair.id == Judgment.pair_id).where(Pair.project_id == project_id))
        )
    else:
        for part in chunks(pair_ids):
            rows.extend(session.exec(query.where(Judgment.pair_id.in_(part))))
    frame = pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict", "confidence", "error"])
    frame["failed"] = frame["error"].notna()
    return frame.drop(columns=["error"])


def label_side(label: str) -> str | None:
    return side(label) if label not in ("A", "B") else label


def human_sides(labels: list[Label]) -> pd.Series:
    """One side per pair: the majority of its labels' sides; a split pair is left out."""
    votes: dict[int, Counter[str]] = {}
    for label in labels:
        s = label_side(label.label)
        if s is not None:
            votes.setdefault(label.pair_id, Counter())[s] += 1
    out = {}
    for pair_id, counter in votes.items():
        (top, n), *rest = counter.most_common()
        if not rest or rest[0][1] < n:
            out[pair_id] = top
    return pd.Series(out, dtype=object)


def latest_version(session: Session, project_id: int) -> CalibrationVersion | None:
    return session.exec(
        select(CalibrationVersion)
        .where(CalibrationVersion.project_id == project_id)
        .order_by(CalibrationVersion.version.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).first()


def latest_version_to_follow(session: Session, project_id: int) -> CalibrationVersion | None:
    """The latest version, with the project held until ``session`` commits the one after it.

    Refits (two workers' maintenance passes, a manual refit) and the kill-switch may run at
    once; each numbers its version after the latest it read here, so they never collide.
    """
    hold_versions(session, [project_id], adding=True)
    return latest_version(session, project_id)


Gate = GateModel | CascadeModel


def load_model(stored: dict[str, Any]) -> Gate:
    """A stored gate: a cascade when it has stages, else the single-panel gate."""
    return CascadeModel.from_dict(stored) if "stages" in stored else GateModel.from_dict(stored)


def gate_model(version: CalibrationVersion | None) -> Gate | None:
    if version is None or version.model is None:
        return None
    model = load_model(version.model)
    # A kill-switch version keeps the fitted model for the record but must not accept.
    model.open = bool(version.open and model.open)
    return model


class GateCache:
    """Current gate per project; re-reads the latest version id at most every ``ttl_s``."""

    def __init__(self, engine: Engine, ttl_s: float = 2.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        # project -> (read at, latest version's gate, its name)
        self._entries: dict[int, tuple[float, Gate | None, str]] = {}

    def get(self, project_id: int, fresh: bool = False) -> tuple[Gate | None, str]:
        """``fresh``: look up the latest version now, whatever the age of the cached one."""
        now = time.monotonic()
        entry = self._entries.get(project_id)
        if entry is not None and now - entry[0] < self.ttl_s and not fresh:
            return entry[1], entry[2]
        with Session(self.engine) as session:
            name = latest_version_names(session, {project_id})[project_id]
            if entry is not None and entry[2] == name:
                self._entries[project_id] = (now, entry[1], name)
                return entry[1], name
            model = gate_model(latest_version(session, project_id))
        self._entries[project_id] = (now, model, name)
        return model, name


# --- routing under a gate ----------------------------------------------------------------


def audit_draw(pair_id: int, version: str, rate: float) -> bool:
    """A reproducible uniform draw per (pair, version): the same pair is audited on re-routing."""
    digest = hashlib.sha256(f"audit|{pair_id}|{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass
class GatedInput:
    views: list[JudgmentView]
    precheck_safety: bool


def route_many(
    pair_ids: list[int],
    inputs: dict[int, GatedInput],
    judgments: pd.DataFrame | None,
    gate: Gate | None,
    version: str,
    routing: RoutingSettings,
) -> dict[int, RouteDecision]:
    """Route pairs under ``gate``: calibrated confidence and side when the gate is open.

    Under an open cascade a pair is routed stage by stage on the verdicts of stages <= k; a
    pair whose next stage is needed but not judged yet gets ``next_stage`` set (provisional).
    """
    if isinstance(gate, CascadeModel) and gate.open and judgments is not None and len(judgments):
        return _route_cascade(pair_ids, inputs, judgments, gate, version, routing)
    confidence: dict[int, float] = {}
    sides: dict[int, str] = {}
    if isinstance(gate, GateModel) and gate.open and judgments is not None and len(judgments):
        features = build_features(judgments, judges=gate.judges)
        confidence, sides = _by_pair(
            features.pair_ids, gate.confidence(features), gate.predict_side(features)
        )
    out: dict[int, RouteDecision] = {}
    for pid in pair_ids:
        decision = _route_one(
            pid, inputs[pid].views, inputs[pid], gate, confidence.get(pid), version, routing
        )
        out[pid] = _finish(pid, decision, sides.get(pid), routing)
    return out


def _by_pair(pair_ids: np.ndarray, confidence: np.ndarray, sides: np.ndarray) -> tuple[dict, dict]:  # type: ignore[type-arg]
    ids = [int(pid) for pid in pair_ids.tolist()]
    return dict(zip(ids, map(float, confidence), strict=True)), dict(zip(ids, map(str, sides), strict=True))


def _route_one(
    pid: int,
    views: list[JudgmentView],
    item: GatedInput,
    gate: Gate | None,
    confidence: float | None,
    version: str,
    routing: RoutingSettings,
) -> RouteDecision:
    return route(
        views,
        min_confidence=routing.min_confidence,
        precheck_safety=item.precheck_safety,
        gate=gate,
        calibrated_confidence=confidence,
        audit=audit_draw(pid, version, routing.audit_rate),
        order_sensitive_judges=routing.order_sensitive_judges,
    )


def _route_cascade(
    pair_ids: list[int],
    inputs: dict[int, GatedInput],
    judgments: pd.DataFrame,
    cascade: CascadeModel,
    version: str,
    routing: RoutingSettings,
) -> dict[int, RouteDecision]:
    """Stage k sees the verdicts of stages <= k and its own calibrator, as in ``fit_cascade``.

    A stage ends the cascade with an acceptance, an audit, an incident or a hard flag (no
    later judge can undo one); a low confidence escalates to the next stage, and after the
    last stage it is a review. This is the rule ``fit_cascade`` replays on the calibration
    labels, so the guarantee covers what is accepted here.
    """
    stages = range(len(cascade.stages))
    stage_judges = [set(cascade.stage_judges(k)) for k in stages]
    stage_calls = [{(j, order) for j in cascade.stages[k] for order in ("ab", "ba")} for k in stages]
    scores = []
    for k in stages:
        features = build_features(judgments, judges=cascade.stage_judges(k))
        X = features.X
        scores.append(_by_pair(features.pair_ids, cascade.confidence(k, X), cascade.predict_side(k, X)))
    out: dict[int, RouteDecision] = {}
    for pid in pair_ids:
        item = inputs[pid]
        judged = {(v.judge, v.order) for v in item.views}
        decision: RouteDecision | None = None
        side_k: str | None = None
        for k in stages:
            if not stage_calls[k] <= judged:  # a stage is judged when each judge saw both orders
                if decision is None:  # nothing judged yet: a provisional review until stage 0 is in
                    decision = RouteDecision(None, None, None, "review", ["gate_closed"])
                decision.next_stage = k
                break
            confidence, sides = scores[k]
            views = [v for v in item.views if v.judge in stage_judges[k]]
            decision = _route_one(pid, views, item, cascade, confidence.get(pid), version, routing)
            decision.stage, side_k = k, sides.get(pid)
            if decision.route != "review" or decision.hard or "low_confidence" not in decision.reasons:
                break
        assert decision is not None
        out[pid] = _finish(pid, decision, side_k, routing)
    return out


def _finish(
    pid: int, decision: RouteDecision, calibrated_side: str | None, routing: RoutingSettings
) -> RouteDecision:
    if calibrated_side is not None and (decision.route == "auto_accept" or "audit" in decision.reasons):
        # What is auto-accepted is the calibrator's side: that is what the guarantee covers.
        decision.chosen = calibrated_side
        if decision.label is None or side(decision.label) != decision.chosen:
            decision.label = {"A": "A>B", "B": "B>A", "tie": "tie"}.get(decision.chosen, decision.label)
    if decision.route != "incident" and in_calibration_sample(pid, routing):
        decision.route = "review"
        decision.reasons = [*decision.reasons, "calibration_sample"]
    return decision


def needs_full_panel(pid: int, version: str, routing: RoutingSettings) -> bool:
    """Pairs whose human label will calibrate the gate are judged by every stage of a cascade.

    The calibration sample and the audits are drawn before judging (both draws are hashes of
    the pair id), so their labels come with the verdicts the cascade fit needs.
    """
    return audit_draw(pid, version, routing.audit_rate) or in_calibration_sample(pid, routing)


def in_calibration_sample(pid: int, routing: RoutingSettings) -> bool:
    """Drawn once per pair (not per version), so the sample stays the same sample."""
    return audit_draw(pid, "calibration-sample", routing.calibration_sample_rate)


def judgment_views(session: Session, pair_ids: list[int]) -> dict[int, list[JudgmentView]]:
    views: dict[int, list[JudgmentView]] = {pid: [] for pid in pair_ids}
    for part in chunks(pair_ids):
        for j in session.exec(select(Judgment).where(Judgment.pair_id.in_(part))):
            views[j.pair_id].append(
                JudgmentView(j.judge, j.order, j.verdict, j.both_bad, j.safety_flag, j.confidence, j.error)
            )
    return views


FRAME_COLUMNS = ["pair_id", "judge", "order", "verdict", "confidence", "failed"]


def views_frame(views: dict[int, list[JudgmentView]]) -> pd.DataFrame:
    """The long table the calibration code reads, from judgments already in hand."""
    rows = [
        (pid, v.judge, v.order, v.verdict, v.confidence, v.error is not None)
        for pid, pair_views in views.items()
        for v in pair_views
    ]
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def never_accept_flags(
    session: Session,
    project: Project,
    views: dict[int, list[JudgmentView]],
    stages: list[list[str]] | None = None,
) -> pd.DataFrame:
    """Per pair and stage: does routing hard-flag it on the verdicts of stages <= k?

    One column (stage 0) without a cascade. A flagged pair can't be auto-accepted by any
    threshold; the gate is fitted with exactly these flags, so its guarantee covers what
    routing accepts.
    """
    routing = project.routing_settings()
    pair_ids = list(views)
    precheck: dict[int, bool] = {}
    for part in chunks(pair_ids):
        precheck.update(session.exec(select(Pair.id, Pair.safety_flag).where(Pair.id.in_(part))).all())  # type: ignore[union-attr,arg-type]
    prefixes = [None] if not stages else [{j for s in stages[: k + 1] for j in s} for k in range(len(stages))]
    flags: dict[int, list[bool]] = {}
    for pid in pair_ids:
        row = []
        for judges in prefixes:
            summary = summarize([v for v in views[pid] if judges is None or v.judge in judges])
            hard = hard_reasons(
                summary,
                precheck_safety=bool(precheck.get(pid)),
                order_sensitive_judges=routing.order_sensitive_judges,
            )
            row.append(bool(hard) or summary.both_bad)
        flags[pid] = row
    return pd.DataFrame.from_dict(flags, orient="index", columns=list(range(len(prefixes))), dtype=bool)


def reroute(engine: Engine, project: Project, version: CalibrationVersion) -> int:
    """Write a decision under ``version`` for every judged pair of the project.

    Under a cascade, a pair that now needs a stage it was never judged by goes back to the
    judging queue (state ``pending``) instead: the worker calls the missing stage (earlier
    stages come from the judgment cache) and routes it.
    """
    gate = gate_model(version)
    name = version_name(version)
    routing = project.routing_settings()
    written = 0
    with Session(engine) as session:
        pair_rows = session.exec(
            select(Pair.id, Pair.safety_flag)
            .where(Pair.project_id == project.id, Pair.state == "done")
            .order_by(Pair.id)
        ).all()
    for part in chunks(pair_rows, 2000):
        ids = [pid for pid, _ in part]
        with Session(engine) as session:
            views = judgment_views(session, ids)
            frame = views_frame(views)
            inputs = {pid: GatedInput(views[pid], flag) for pid, flag in part}
            decisions = route_many(ids, inputs, frame, gate, name, routing)
            hold_versions(session, [project.id])  # type: ignore[list-item]
            if latest_version_names(session, {project.id})[project.id] != name:  # type: ignore[index,arg-type]
                # A newer version landed: its own re-routing covers every pair, and a decision
                # under this one written after it would be stale.
                break
            unjudged = [pid for pid, d in decisions.items() if d.next_stage is not None]
            if unjudged:
                requeue(session, unjudged)
            now = utcnow()
            rows = [
                dict(decision_fields(d, name, len(inputs[pid].views), project), pair_id=pid, created_at=now)
                for pid, d in decisions.items()
                if d.next_stage is None
            ]
            if rows:
                new_ids = session.execute(
                    insert(Decision).returning(Decision.id, Decision.pair_id), rows
                ).all()
                session.execute(update(Pair), [{"id": pid, "decision_id": did} for did, pid in new_ids])
            # Pairs whose route changed move in or out of the review queues, in this transaction.
            review_queue.on_decisions_written(session, [row["pair_id"] for row in rows])
            session.commit()
            written += len(rows)
    return written


def decision_fields(
    decision: RouteDecision, version: str, n_judgments: int, project: Project
) -> dict[str, Any]:
    """A routing decision as Decision columns (its pair and time are the writer's to add)."""
    panel = 2 * len(project.judges)
    return {
        "label": decision.label,
        "chosen": decision.chosen,
        "confidence": decision.confidence,
        "route": decision.route,
        "reasons": decision.reasons,
        "version": version,
        "stage": decision.stage,
        "judge_calls_saved": max(0, panel - n_judgments),
    }


def requeue(session: Session, pair_ids: list[int]) -> int:
    """Send judged pairs back to the judging queue, out of the review queues.

    Until the worker routes them again they have no current decision (results show them
    pending); their earlier decisions stay in the history.
    """
    n = 0
    for part in chunks(pair_ids):
        result = session.execute(
            update(Pair)
            .where(Pair.id.in_(part), Pair.state == "done")  # type: ignore[union-attr]
            .values(state="pending", decision_id=None, lease_owner=None, lease_expires_at=None)
        )
        n += result.rowcount  # type: ignore[attr-defined]
    review_queue.withdraw(session, pair_ids)
    return n


def requeue_for_backfill(engine: Engine, project: Project) -> tuple[int, int]:
    """Cascade projects: labelled pairs missing some judge's verdicts go back to judging.

    Fitting a cascade needs every stage's verdicts on the calibration labels, but a pair that
    was accepted at a cheap stage (and later audited, or labelled as gold) has only those.
    The worker judges a pair with a usable label by the whole panel. Returns (pairs sent
    back now, labelled pairs still missing verdicts, in whatever state).
    """
    if project.cascade_stages() is None:
        return 0, 0
    panel = {(spec.model, order) for spec in project.judge_specs() for order in ("ab", "ba")}
    with Session(engine) as session:
        labelled = dict(
            session.exec(
                select(Label.pair_id, Pair.state)
                .join(Pair, Pair.id == Label.pair_id)
                .where(
                    Label.project_id == project.id,
                    Label.source.in_(CALIBRATION_SOURCES),  # type: ignore[attr-defined]
                )
                .distinct()
            ).all()
        )
        have: dict[int, set[tuple[str, str]]] = {pid: set() for pid in labelled}
        for part in chunks(list(labelled)):
            for pid, judge, order in session.exec(
                select(Judgment.pair_id, Judgment.judge, Judgment.order).where(Judgment.pair_id.in_(part))
            ):
                have[pid].add((judge, order))
        missing = [pid for pid, got in have.items() if not panel <= got]
        n = requeue(session, [pid for pid in missing if labelled[pid] == "done"]) if missing else 0
        session.commit()
    return n, len(missing)


def labelled_pairs(engine: Engine, pair_ids: list[int]) -> set[int]:
    """Which of these pairs carry a calibration-usable human label."""
    found: set[int] = set()
    with Session(engine) as session:
        for part in chunks(pair_ids):
            found.update(
                session.exec(
                    select(Label.pair_id).where(
                        Label.pair_id.in_(part),
                        Label.source.in_(CALIBRATION_SOURCES),  # type: ignore[attr-defined]
                    )
                )
            )
    return found


# --- fitting -----------------------------------------------------------------------------


def usable_labels(session: Session, project_id: int) -> tuple[pd.Series, dict[str, Any]]:
    """Human sides of pairs with calibration-usable labels, and what each source contributed."""
    labels = list(session.exec(select(Label).where(Label.project_id == project_id)))
    counts = Counter(label.source for label in labels)
    sources = {
        source: {"n": counts.get(source, 0), "used": source in CALIBRATION_SOURCES, "why": SOURCE_WHY[source]}
        for source in SOURCE_WHY
    }
    usable = [label for label in labels if label.source in CALIBRATION_SOURCES]
    return human_sides(usable), sources


def refit(
    engine: Engine, project: Project, trigger: str = "manual", random_state: int = 0
) -> CalibrationVersion:
    """Fit the gate on the usable labels, store a new version, re-route the project's pairs."""
    routing = project.routing_settings()
    with Session(engine, expire_on_commit=False) as session:
        # Read before the labels: a kill-switch stored after this read is one the labels may
        # predate, and the version written below must not undo it.
        latest_when_read = latest_version(session, project.id)  # type: ignore[arg-type]
        gold, sources = usable_labels(session, project.id)  # type: ignore[arg-type]
        labelled = [int(i) for i in gold.index]
        views = judgment_views(session, labelled)
        frame = views_frame(views)
        stages = project.cascade_stages()
        blocked = never_accept_flags(session, project, views, stages)
    judges = [spec.model for spec in project.judge_specs()]
    model: Gate | None = None
    n_used = len(gold)
    if stages and len(frame):
        # A cascade is fitted on labelled pairs that carry every stage's verdicts; the others
        # are being judged by the missing stages (requeue_for_backfill) and count next time.
        complete = _complete_pairs(frame, judges)
        waiting, n_used = len(gold) - len(complete), len(complete)
        model = fit_cascade(
            frame[frame["pair_id"].isin(complete)],
            gold.loc[complete],
            stages,
            alpha=1 - routing.target_agreement,
            delta=routing.delta,
            n_min=routing.n_min,
            random_state=random_state,
            never_accept=blocked.loc[complete],  # routing's hard flags per stage
        )
        reason = model.reason + (
            f"; {waiting} labelled pairs wait for their missing judges" if waiting else ""
        )
    elif len(frame):
        features = build_features(frame, judges=judges)
        model = fit_gate(
            features,
            gold,
            alpha=1 - routing.target_agreement,
            delta=routing.delta,
            n_min=routing.n_min,
            random_state=random_state,
            never_accept=blocked[0],  # routing's hard flags, so the guarantee covers what is accepted
        )
        reason = model.reason
    else:
        reason = f"no usable labels yet (need {routing.n_min} from sources {', '.join(CALIBRATION_SOURCES)})"
    with Session(engine, expire_on_commit=False) as session:
        previous = latest_version_to_follow(session, project.id)  # type: ignore[arg-type]
        is_open = bool(model and model.open)
        kill_switch = kill_switch_since(session, project.id, latest_when_read) if is_open else None  # type: ignore[arg-type]
        if kill_switch is not None:
            # Its labels were read before the kill-switch fired: a fit on them must not undo it.
            # The next refit, on the labels that arrive after, may open the gate again.
            is_open = False
            reason = f"kept closed: {version_name(kill_switch)} closed the gate while this fit ran; {reason}"
        version = CalibrationVersion(
            project_id=project.id,  # type: ignore[arg-type]
            version=(previous.version + 1) if previous else 1,
            trigger=trigger,
            open=is_open,
            reason=reason,
            threshold=model.threshold if model else None,
            guaranteed_agreement=model.guaranteed_agreement if model else None,
            expected_coverage=model.expected_coverage if model else 0.0,
            n_labels=int(n_used),
            label_sources=sources,
            model=model.to_dict() if model else None,
            report={},
        )
        session.add(version)
        session.commit()
    reroute(engine, project, version)
    log.info(
        "project %s: %s %s (%s)",
        project.id,
        version_name(version),
        "open" if version.open else "closed",
        reason,
    )
    return version


def kill_switch_since(
    session: Session, project_id: int, after: CalibrationVersion | None
) -> CalibrationVersion | None:
    """The first kill-switch version stored after ``after`` (after none: the first ever)."""
    query = select(CalibrationVersion).where(
        CalibrationVersion.project_id == project_id, CalibrationVersion.trigger == "drift"
    )
    if after is not None:
        query = query.where(CalibrationVersion.version > after.version)
    return session.exec(query.order_by(CalibrationVersion.version).limit(1)).first()  # type: ignore[arg-type]


def _complete_pairs(frame: pd.DataFrame, judges: list[str]) -> list[int]:
    """Pairs of the long table with a row for every (judge, order) of the panel."""
    panel = frame[frame["judge"].isin(judges)]
    counts = panel.drop_duplicates(["pair_id", "judge", "order"]).groupby("pair_id").size()
    return [int(pid) for pid in counts.index[counts.to_numpy() == 2 * len(judges)]]


# --- audits and the kill-switch ----------------------------------------------------------


def audit_outcomes(session: Session, project_id: int, since: Any = None) -> list[tuple[Any, int, int]]:
    """(time, pair_id, agrees) for audit labels, in arrival order.

    Agreement compares the human side with the side the audit decision would have accepted.
    """
    query = (
        select(Label.created_at, Label.pair_id, Label.label, Decision.chosen)
        .join(Decision, Decision.pair_id == Label.pair_id)
        .where(Label.project_id == project_id, Label.source == "audit", Decision.route == "review")
        .order_by(Label.created_at, Label.id)
    )
    if since is not None:
        query = query.where(Label.created_at >= since)
    seen: set[int] = set()
    out = []
    for created, pair_id, label, chosen in session.exec(query):
        if pair_id in seen or chosen is None:
            continue
        seen.add(pair_id)
        out.append((created, pair_id, int(label_side(label) == chosen)))
    return out


def check_drift(engine: Engine, project: Project) -> CalibrationVersion | None:
    """Close the gate (a new version, trigger "drift") when audits show agreement below target."""
    routing = project.routing_settings()
    with Session(engine, expire_on_commit=False) as session:
        current = latest_version(session, project.id)  # type: ignore[arg-type]
        if current is None or not current.open:
            return None
        outcomes = audit_outcomes(session, project.id, since=current.created_at)  # type: ignore[arg-type]
    if not outcomes:
        return None
    result = drift_alarm(
        [agree for _, _, agree in outcomes], target=routing.target_agreement, delta=routing.delta
    )
    if not result.alarm:
        return None
    with Session(engine, expire_on_commit=False) as session:
        if latest_version_to_follow(session, project.id).version != current.version:  # type: ignore[arg-type,union-attr]
            # A refit landed while the audits were tested: its own audits are checked next pass.
            return None
        closed = CalibrationVersion(
            project_id=project.id,  # type: ignore[arg-type]
            version=current.version + 1,
            trigger="drift",
            open=False,
            reason=(
                f"kill-switch: audited agreement {result.estimate:.3f} over the last {result.n} audits "
                f"is below the target {routing.target_agreement:.2f} with confidence {1 - routing.delta:.2f} "
                f"(alarm at audit {result.at_index})"
            ),
            threshold=current.threshold,
            guaranteed_agreement=None,
            expected_coverage=0.0,
            n_labels=current.n_labels,
            label_sources=current.label_sources,
            model=current.model,
            report={"drift": {"estimate": result.estimate, "bound": result.bound, "audits": len(outcomes)}},
        )
        session.add(closed)
        session.commit()
    reroute(engine, project, closed)
    log.warning("project %s: gate closed by the drift kill-switch", project.id)
    return closed


def new_usable_labels(session: Session, project_id: int, since: Any) -> int:
    query = (
        select(func.count())
        .select_from(Label)
        .where(
            Label.project_id == project_id,
            Label.source.in_(CALIBRATION_SOURCES),  # type: ignore[attr-defined]
        )
    )
    if since is not None:
        query = query.where(Label.created_at > since)
    return session.exec(query).one()


def maintain(engine: Engine) -> list[str]:
    """Refit projects with ``refit_every`` new usable labels; run the drift check. Returns actions."""
    actions = []
    with Session(engine, expire_on_commit=False) as session:
        projects = list(session.exec(select(Project)))
    for project in projects:
        routing = project.routing_settings()
        with Session(engine) as session:
            current = latest_version(session, project.id)  # type: ignore[arg-type]
            fresh = new_usable_labels(session, project.id, current.created_at if current else None)  # type: ignore[arg-type]
        due = (
            fresh >= routing.refit_every
            if current is not None
            else fresh >= min(routing.n_min, routing.refit_every)
        )
        backfill, waiting = requeue_for_backfill(engine, project)
        if backfill:
            actions.append(f"project {project.id}: {backfill} labelled pairs sent to the missing judges")
        if due and not waiting:
            version = refit(engine, project, trigger="auto")
            actions.append(f"project {project.id}: refit -> {version_name(version)}")
            continue
        if due:
            # Fitting now would leave out exactly the pairs the previous version settled early
            # (a non-random subset of the labels); the refit runs once their verdicts are in.
            actions.append(f"project {project.id}: refit waits for {waiting} labelled pairs' missing judges")
        if check_drift(engine, project) is not None:
            actions.append(f"project {project.id}: kill-switch closed the gate")
    return actions


# --- state and report --------------------------------------------------------------------


def version_public(version: CalibrationVersion) -> dict[str, Any]:
    return {
        "version": version_name(version),
        "created_at": version.created_at,
        "trigger": version.trigger,
        "state": "open" if version.open else "closed",
        "open": version.open,
        "reason": version.reason,
        "threshold": version.threshold,
        "guaranteed_agreement": version.guaranteed_agreement,
        "expected_coverage": version.expected_coverage,
        "n_labels": version.n_labels,
        "label_sources": version.label_sources,
    }


def cascade_summary(engine: Engine, project: Project, fitted: Gate | None) -> dict[str, Any] | None:
    """The cascade part of the gate state: stages, expected calls, judge calls saved so far."""
    stages = project.cascade_stages()
    if stages is None:
        return None
    with Session(engine) as session:
        saved, decided = session.exec(
            select(func.coalesce(func.sum(Decision.judge_calls_saved), 0), func.count(Decision.id))
            .join(Pair, Pair.decision_id == Decision.id)
            .where(Pair.project_id == project.id)
        ).one()
    full = 2 * len(project.judges)
    cascade = fitted if isinstance(fitted, CascadeModel) else None
    return {
        "stages": stages,
        "full_panel_calls": full,
        # A closed gate judges with the whole panel, whatever the fitted cascade would do.
        "expected_calls_per_pair": cascade.expected_calls_per_pair
        if cascade and cascade.open
        else float(full),
        "stage_accept_rates": cascade.stage_accept_rates if cascade else [],
        "judge_calls_saved": int(saved),
        "saved_fraction": int(saved) / (full * decided) if decided else None,
    }


def calibration_state(engine: Engine, project: Project) -> dict[str, Any]:
    """Gate state, version history and the report data for ``GET .../calibration``."""
    from calibration.report import build_report

    routing = project.routing_settings()
    with Session(engine, expire_on_commit=False) as session:
        versions = list(
            session.exec(
                select(CalibrationVersion)
                .where(CalibrationVersion.project_id == project.id)
                .order_by(CalibrationVersion.version)  # type: ignore[arg-type]
            )
        )
        gold, sources = usable_labels(session, project.id)  # type: ignore[arg-type]
        frame = judgments_frame(session, project.id, [int(i) for i in gold.index])  # type: ignore[arg-type]
        audits = audit_outcomes(session, project.id)  # type: ignore[arg-type]
    current = versions[-1] if versions else None
    model = gate_model(current)
    fitted = load_model(current.model) if current is not None and current.model else None
    gate = {
        "state": "open" if current is not None and current.open else "closed",
        "open": bool(current is not None and current.open),
        "reason": current.reason if current else "not calibrated yet: import gold labels and refit",
        "version": version_name(current),
        "threshold": current.threshold if current else None,
        "target_agreement": routing.target_agreement,
        "delta": routing.delta,
        "agreement_lower_bound": current.guaranteed_agreement if current else None,
        "guaranteed_agreement": current.guaranteed_agreement if current else None,
        "expected_coverage": current.expected_coverage if current else 0.0,
        "n_labels": current.n_labels if current else int(len(gold)),
        "n_min": routing.n_min,
        "label_sources": [{"source": k, **v} for k, v in sources.items()],
        "cascade": cascade_summary(engine, project, fitted),
    }
    confusion_true: list[str] | None = None
    confusion_pred: list[str] | None = None
    if fitted is not None and len(frame) and len(gold):
        features = build_features(frame, judges=fitted.judges)
        sides = (
            fitted.predict_side(len(fitted.stages) - 1, features.X)  # the most informed stage
            if isinstance(fitted, CascadeModel)
            else fitted.predict_side(features)
        )
        predicted = pd.Series(sides, index=features.pair_ids)
        common = [pid for pid in gold.index if pid in predicted.index]
        confusion_true, confusion_pred = gold.loc[common].tolist(), predicted.loc[common].tolist()
    judges_frame = (
        frame.assign(verdict=frame["verdict"].where(~frame["failed"], "invalid")) if len(frame) else None
    )
    kill = next((v for v in reversed(versions) if v.trigger == "drift"), None)
    report = build_report(
        project=project.name,
        calibration_version=version_name(current),
        gate=gate,
        confidence=fitted.cal_confidence[np.isfinite(fitted.cal_confidence)] if fitted is not None else (),
        correct=fitted.cal_correct[np.isfinite(fitted.cal_confidence)] if fitted is not None else (),
        judgments=judges_frame,
        gold=gold.to_dict() if len(gold) else None,
        confusion_true=confusion_true,
        confusion_pred=confusion_pred,
        confusion_compared="gate's predicted side vs human (calibration labels, in-sample)",
        audit_timestamps=[t for t, _, _ in audits],
        audit_agree=[a for _, _, a in audits],
        kill_switch={"tripped": True, "rule": kill.reason, "tripped_at": kill.created_at}
        if kill is not None
        else None,
        versions=[version_public(v) for v in versions],
    )
    return {
        "project_id": project.id,
        "gate": gate,
        "active": model is not None and model.open,
        "versions": [version_public(v) for v in versions],
        "report": report,
    }


def calibrate_cli(project: str | None, report: str | None) -> int:
    """``prelabel calibrate``: refit now, print the gate state, optionally write the HTML report."""
    from pathlib import Path

    from api.db import make_engine, upgrade
    from api.settings import get_settings
    from calibration.report import render_report_html

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        projects = list(session.exec(select(Project).order_by(Project.id)))  # type: ignore[arg-type]
    if project is not None:
        projects = [p for p in projects if str(p.id) == project or p.name == project]
        if not projects:
            raise SystemExit(f"no project {project!r}")
    if report and len(projects) != 1:
        raise SystemExit("--report needs exactly one project: name it with --project")
    for item in projects:
        version = refit(engine, item, trigger="manual")
        state = "OPEN" if version.open else "closed"
        print(f"project {item.id} {item.name!r}: {version_name(version)} gate {state} — {version.reason}")
        if version.open:
            print(
                f"  threshold {version.threshold:.3f}, "
                f"guaranteed agreement >= {version.guaranteed_agreement:.3f}, "
                f"expected coverage {version.expected_coverage:.1%}, {version.n_labels} labels"
            )
        if report:
            Path(report).write_text(
                render_report_html(calibration_state(engine, item)["report"]), encoding="utf-8"
            )
            print(f"  report written to {report}")
    return 0
