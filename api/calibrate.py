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
from api.db import chunks
from api.models import (
    CALIBRATION_SOURCES,
    CalibrationVersion,
    Decision,
    Judgment,
    Label,
    Pair,
    Project,
    utcnow,
)
from api.routing import JudgmentView, RouteDecision, hard_reasons, route, summarize
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
    return f"cal-{version.version}" if version is not None else "routing-v0"


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


def gate_model(version: CalibrationVersion | None) -> GateModel | None:
    if version is None or version.model is None:
        return None
    model = GateModel.from_dict(version.model)
    # A kill-switch version keeps the fitted model for the record but must not accept.
    model.open = bool(version.open and model.open)
    return model


class GateCache:
    """Current gate per project; re-reads the latest version id at most every ``ttl_s``."""

    def __init__(self, engine: Engine, ttl_s: float = 2.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._entries: dict[int, tuple[float, int | None, GateModel | None, str]] = {}

    def get(self, project_id: int) -> tuple[GateModel | None, str]:
        now = time.monotonic()
        entry = self._entries.get(project_id)
        if entry is not None and now - entry[0] < self.ttl_s:
            return entry[2], entry[3]
        with Session(self.engine) as session:
            latest_id = session.exec(
                select(func.max(CalibrationVersion.id)).where(CalibrationVersion.project_id == project_id)
            ).one()
            if entry is not None and entry[1] == latest_id:
                self._entries[project_id] = (now, latest_id, entry[2], entry[3])
                return entry[2], entry[3]
            version = session.get(CalibrationVersion, latest_id) if latest_id is not None else None
            model, name = gate_model(version), version_name(version)
        self._entries[project_id] = (now, latest_id, model, name)
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
    gate: GateModel | None,
    version: str,
    *,
    min_confidence: float,
    audit_rate: float,
    order_sensitive_judges: list[str] | None = None,
    calibration_sample_rate: float = 0.0,
) -> dict[int, RouteDecision]:
    """Route pairs under ``gate``: calibrated confidence and side when the gate is open."""
    confidence: dict[int, float] = {}
    sides: dict[int, str] = {}
    if gate is not None and gate.open and judgments is not None and len(judgments):
        features = build_features(judgments, judges=gate.judges)
        for pid, conf, s in zip(
            features.pair_ids.tolist(), gate.confidence(features), gate.predict_side(features), strict=True
        ):
            confidence[int(pid)] = float(conf)
            sides[int(pid)] = str(s)
    out: dict[int, RouteDecision] = {}
    for pid in pair_ids:
        item = inputs[pid]
        decision = route(
            item.views,
            min_confidence=min_confidence,
            precheck_safety=item.precheck_safety,
            gate=gate,
            calibrated_confidence=confidence.get(pid),
            audit=audit_draw(pid, version, audit_rate),
            order_sensitive_judges=order_sensitive_judges,
        )
        if pid in sides and (decision.route == "auto_accept" or "audit" in decision.reasons):
            # What is auto-accepted is the calibrator's side: that is what the guarantee covers.
            decision.chosen = sides.get(pid, decision.chosen)
            if decision.label is None or side(decision.label) != decision.chosen:
                decision.label = {"A": "A>B", "B": "B>A", "tie": "tie"}.get(
                    decision.chosen or "", decision.label
                )
        if decision.route != "incident" and audit_draw(pid, "calibration-sample", calibration_sample_rate):
            # Drawn once per pair (not per version), so the sample stays the same sample.
            decision.route = "review"
            decision.reasons = [*decision.reasons, "calibration_sample"]
        out[pid] = decision
    return out


def judgment_views(session: Session, pair_ids: list[int]) -> dict[int, list[JudgmentView]]:
    views: dict[int, list[JudgmentView]] = {pid: [] for pid in pair_ids}
    for part in chunks(pair_ids):
        for j in session.exec(select(Judgment).where(Judgment.pair_id.in_(part))):
            views[j.pair_id].append(
                JudgmentView(j.judge, j.order, j.verdict, j.both_bad, j.safety_flag, j.confidence, j.error)
            )
    return views


def never_accept_flags(session: Session, project: Project, pair_ids: list[int]) -> pd.Series:
    """Per pair: does routing hard-flag it (so no threshold could auto-accept it)?

    The gate is fitted with exactly these flags, so its guarantee covers what routing accepts.
    """
    routing = project.routing_settings()
    views = judgment_views(session, pair_ids)
    precheck: dict[int, bool] = {}
    for part in chunks(pair_ids):
        precheck.update(session.exec(select(Pair.id, Pair.safety_flag).where(Pair.id.in_(part))).all())  # type: ignore[union-attr,arg-type]
    flags = {}
    for pid in pair_ids:
        summary = summarize(views[pid])
        hard = hard_reasons(
            summary,
            precheck_safety=bool(precheck.get(pid)),
            order_sensitive_judges=routing.order_sensitive_judges,
        )
        flags[pid] = bool(hard) or summary.both_bad
    return pd.Series(flags, dtype=bool)


def reroute(engine: Engine, project: Project, version: CalibrationVersion) -> int:
    """Write a decision under ``version`` for every judged pair of the project."""
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
            frame = judgments_frame(session, project.id, ids)  # type: ignore[arg-type]
            views = judgment_views(session, ids)
            inputs = {pid: GatedInput(views[pid], flag) for pid, flag in part}
            decisions = route_many(
                ids,
                inputs,
                frame,
                gate,
                name,
                min_confidence=routing.min_confidence,
                audit_rate=routing.audit_rate,
                order_sensitive_judges=routing.order_sensitive_judges,
                calibration_sample_rate=routing.calibration_sample_rate,
            )
            now = utcnow()
            rows = [
                {
                    "pair_id": pid,
                    "label": d.label,
                    "chosen": d.chosen,
                    "confidence": d.confidence,
                    "route": d.route,
                    "reasons": d.reasons,
                    "version": name,
                    "created_at": now,
                }
                for pid, d in decisions.items()
            ]
            new_ids = session.execute(insert(Decision).returning(Decision.id, Decision.pair_id), rows).all()
            session.execute(update(Pair), [{"id": pid, "decision_id": did} for did, pid in new_ids])
            # Pairs whose route changed move in or out of the review queues, in this transaction.
            review_queue.on_decisions_written(session, ids)
            session.commit()
            written += len(rows)
    return written


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
        gold, sources = usable_labels(session, project.id)  # type: ignore[arg-type]
        labelled = [int(i) for i in gold.index]
        frame = judgments_frame(session, project.id, labelled)  # type: ignore[arg-type]
        blocked = never_accept_flags(session, project, labelled)
        previous = latest_version(session, project.id)  # type: ignore[arg-type]
    judges = [spec.model for spec in project.judge_specs()]
    model: GateModel | None = None
    if len(frame):
        features = build_features(frame, judges=judges)
        model = fit_gate(
            features,
            gold,
            alpha=1 - routing.target_agreement,
            delta=routing.delta,
            n_min=routing.n_min,
            random_state=random_state,
            never_accept=blocked,  # routing's hard flags, so the guarantee covers what is accepted
        )
        reason = model.reason
    else:
        reason = f"no usable labels yet (need {routing.n_min} from sources {', '.join(CALIBRATION_SOURCES)})"
    with Session(engine, expire_on_commit=False) as session:
        version = CalibrationVersion(
            project_id=project.id,  # type: ignore[arg-type]
            version=(previous.version + 1) if previous else 1,
            trigger=trigger,
            open=bool(model and model.open),
            reason=reason,
            threshold=model.threshold if model else None,
            guaranteed_agreement=model.guaranteed_agreement if model else None,
            expected_coverage=model.expected_coverage if model else 0.0,
            n_labels=int(len(gold)),
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
        if due:
            version = refit(engine, project, trigger="auto")
            actions.append(f"project {project.id}: refit -> {version_name(version)}")
        elif check_drift(engine, project) is not None:
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
    fitted = GateModel.from_dict(current.model) if current is not None and current.model else None
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
    }
    confusion_true: list[str] | None = None
    confusion_pred: list[str] | None = None
    if fitted is not None and len(frame) and len(gold):
        features = build_features(frame, judges=fitted.judges)
        predicted = pd.Series(fitted.predict_side(features), index=features.pair_ids)
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
