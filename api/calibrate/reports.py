"""The gate's state and report data behind ``GET /v1/projects/{id}/calibration``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.calibrate.gate_labels import UsableLabels, usable_label_set
from api.calibrate.kill_switch import audit_outcomes
from api.calibrate.versions import KILL_SWITCH_TRIGGERS, gate_model, load_model, version_name
from api.db import chunks
from api.models import CalibrationVersion, Decision, Judgment, Pair, Project, version_label
from api.routing.route import FittedGate
from api.schemas import panel_calls
from calibration.cascade import CascadeModel
from calibration.features import build_features, judgments_table


def judgments_frame(session: Session, project_id: int, pair_ids: list[int] | None = None) -> pd.DataFrame:
    """The long table (:func:`calibration.features.judgments_table`) of a project's judgments."""
    query = sa_select(  # SQLAlchemy's: sqlmodel's select is typed for at most four columns
        col(Judgment.pair_id),
        col(Judgment.judge),
        col(Judgment.order),
        col(Judgment.verdict),
        col(Judgment.confidence),
        col(Judgment.error),
    )
    rows: list[Any] = []
    if pair_ids is None:
        rows = list(
            session.execute(
                query.join(Pair, col(Pair.id) == Judgment.pair_id).where(
                    col(Pair.project_id) == project_id, Judgment.is_current()
                )
            )
        )
    else:
        for part in chunks(pair_ids):
            rows.extend(session.execute(query.where(col(Judgment.pair_id).in_(part), Judgment.is_current())))
    return judgments_table(
        (pid, judge, order, verdict, confidence, error is not None)
        for pid, judge, order, verdict, confidence, error in rows
    )


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


def cascade_summary(engine: Engine, project: Project, fitted: FittedGate | None) -> dict[str, Any] | None:
    """The cascade part of the gate state: stages, expected calls, judge calls saved so far."""
    stages = project.cascade_stages()
    if stages is None:
        return None
    with Session(engine) as session:
        saved, decided = session.exec(
            select(func.coalesce(func.sum(col(Decision.judge_calls_saved)), 0), func.count(col(Decision.id)))
            .join(Pair, col(Pair.decision_id) == col(Decision.id))
            .where(Pair.project_id == project.id)
        ).one()
    full = panel_calls(project.judge_specs())
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


def shift_summary(versions: list[CalibrationVersion]) -> dict[str, Any] | None:
    """The shift detector of the latest version that ran one: its summary (evidence over time),
    or why it was skipped. A version the detector closed carries the summary in its report."""
    from calibration.shift import ShiftDetector

    for v in reversed(versions):
        if v.trigger == "shift" and v.report.get("shift"):
            # The closing version's record names the version whose stream it tested.
            return {**v.report["shift"], "version": version_label(v.version - 1)}
        if v.shift is not None:
            if "skipped" in v.shift:
                return {"version": version_name(v), "skipped": v.shift["skipped"]}
            return {**ShiftDetector.from_dict(v.shift["detector"]).summary(), "version": version_name(v)}
    return None


def _gate_summary(
    engine: Engine,
    project: Project,
    current: CalibrationVersion | None,
    found: UsableLabels,
    fitted: FittedGate | None,
) -> dict[str, Any]:
    """The gate as ``current`` left it, next to the project's targets and its usable labels now."""
    routing = project.routing_settings()
    return {
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
        "n_labels": current.n_labels if current else int(len(found.sides)),
        "n_min": routing.n_min,
        "label_sources": [{"source": k, **v} for k, v in found.sources.items()],
        "cascade": cascade_summary(engine, project, fitted),
        # About the labels as they are now (one-sided gold...), whatever the version says.
        "warnings": found.warnings(),
    }


def _confusion(
    fitted: FittedGate | None, frame: pd.DataFrame, gold: pd.Series
) -> tuple[list[str] | None, list[str] | None]:
    """(human side, gate's predicted side) of the labelled pairs the gate can score; None
    without a fitted gate, judgments or labels."""
    if fitted is None or not len(frame) or not len(gold):
        return None, None
    features = build_features(frame, judges=fitted.judges)
    sides = (
        fitted.predict_side(len(fitted.stages) - 1, features.X)  # the most informed stage
        if isinstance(fitted, CascadeModel)
        else fitted.predict_side(features)
    )
    predicted = pd.Series(sides, index=features.pair_ids)
    common = [pid for pid in gold.index if pid in predicted.index]
    return gold.loc[common].tolist(), predicted.loc[common].tolist()


def calibration_state(engine: Engine, project: Project) -> dict[str, Any]:
    """Gate state, version history and the report data for ``GET .../calibration``."""
    from calibration.report import Monitoring, PanelEvidence, ScoredLabels, build_report

    with Session(engine, expire_on_commit=False) as session:
        versions = list(
            session.exec(
                select(CalibrationVersion)
                .where(CalibrationVersion.project_id == project.id)
                .order_by(col(CalibrationVersion.version))
            )
        )
        found = usable_label_set(session, project.id)
        gold = found.sides
        frame = judgments_frame(session, project.id, [int(i) for i in gold.index])
        audits = audit_outcomes(session, project.id)
    current = versions[-1] if versions else None
    model = gate_model(current)
    fitted = load_model(current.model) if current is not None and current.model else None
    gate = _gate_summary(engine, project, current, found, fitted)
    confusion_true, confusion_pred = _confusion(fitted, frame, gold)
    judges_frame = (
        frame.assign(verdict=frame["verdict"].where(~frame["failed"], "invalid")) if len(frame) else None
    )
    kill = next((v for v in reversed(versions) if v.trigger in KILL_SWITCH_TRIGGERS), None)
    scores = ScoredLabels()
    if fitted is not None:
        finite = np.isfinite(fitted.cal_confidence)  # a hard-flagged pair's score is -inf
        scores = ScoredLabels(fitted.cal_confidence[finite], fitted.cal_correct[finite])
    report = build_report(
        project=project.name,
        calibration_version=version_name(current),
        gate=gate,
        scores=scores,
        panel=PanelEvidence(
            judgments=judges_frame,
            gold=gold.to_dict() if len(gold) else None,
            confusion_true=confusion_true,
            confusion_pred=confusion_pred,
            confusion_compared="gate's predicted side vs human (calibration labels, in-sample)",
        ),
        monitoring=Monitoring(
            audit_timestamps=[t for t, _, _ in audits],
            audit_agree=[a for _, _, a in audits],
            kill_switch={"tripped": True, "rule": kill.reason, "tripped_at": kill.created_at}
            if kill is not None
            else None,
            shift=shift_summary(versions),
        ),
        versions=[version_public(v) for v in versions],
    )
    if current is not None and current.report.get("aspects"):
        report["aspects"] = current.report["aspects"]  # one guarantee line per aspect (issue 23)
    return {
        "project_id": project.id,
        "gate": gate,
        "active": model is not None and model.open,
        "versions": [version_public(v) for v in versions],
        "report": report,
    }
