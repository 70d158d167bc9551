"""The kill switch: audits of would-be auto-accepts keep testing the open gate.

:func:`check_drift` runs the drift test (:func:`calibration.drift.drift_alarm`) on the audit
labels since the gate opened and closes the gate at once when audited agreement is below
target with confidence. :func:`closing_version` is the version any closure stores (the shift
detector's too, in :mod:`api.calibrate.refits`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api import audit
from api.calibrate.versions import latest_version, latest_version_to_follow
from api.models import CalibrationVersion, Decision, Label, Project
from api.routing.decisions import reroute
from calibration.drift import drift_alarm
from judge.verdicts import to_side

log = logging.getLogger("prelabel.calibrate")


def audit_outcomes(session: Session, project_id: int, since: Any = None) -> list[tuple[Any, int, int]]:
    """(time, pair_id, agrees) for audit labels, in arrival order.

    Agreement compares the human side with the side the audit decision would have accepted.
    """
    query = (
        select(Label.created_at, Label.pair_id, Label.label, Decision.chosen)
        .join(Decision, col(Decision.pair_id) == col(Label.pair_id))
        .where(Label.project_id == project_id, Label.source == "audit", Decision.route == "review")
        .order_by(col(Label.created_at), col(Label.id))
    )
    if since is not None:
        query = query.where(col(Label.created_at) >= since)
    seen: set[int] = set()
    out = []
    for created, pair_id, label, chosen in session.exec(query):
        if pair_id in seen or chosen is None:
            continue
        seen.add(pair_id)
        out.append((created, pair_id, int(to_side(label, strict=False) == chosen)))
    return out


def closing_version(
    current: CalibrationVersion, trigger: str, reason: str, report: dict[str, Any]
) -> CalibrationVersion:
    """The version that closes ``current``'s gate (kill-switch, shift detector): same model
    and threshold, kept for the record; nothing is accepted under it."""
    return CalibrationVersion(
        project_id=current.project_id,
        version=current.version + 1,
        trigger=trigger,
        open=False,
        reason=reason,
        threshold=current.threshold,
        guaranteed_agreement=None,
        expected_coverage=0.0,
        n_labels=current.n_labels,
        label_sources=current.label_sources,
        model=current.model,
        report=report,
    )


def check_drift(engine: Engine, project: Project) -> CalibrationVersion | None:
    """Close the gate (a new version, trigger "drift") when audits show agreement below target."""
    routing = project.routing_settings()
    with Session(engine, expire_on_commit=False) as session:
        current = latest_version(session, project.id)
        if current is None or not current.open:
            return None
        outcomes = audit_outcomes(session, project.id, since=current.created_at)
    if not outcomes:
        return None
    result = drift_alarm(
        [agree for _, _, agree in outcomes], target=routing.target_agreement, delta=routing.delta
    )
    if not result.alarm:
        return None
    with Session(engine, expire_on_commit=False) as session:
        latest = latest_version_to_follow(session, project.id)
        if latest is None or latest.version != current.version:
            # A refit landed while the audits were tested: its own audits are checked next pass.
            return None
        closed = closing_version(
            current,
            "drift",
            f"kill-switch: audited agreement {result.estimate:.3f} over the last {result.n} audits "
            f"is below the target {routing.target_agreement:.2f} with confidence {1 - routing.delta:.2f} "
            f"(alarm at audit {result.at_index})",
            {"drift": {"estimate": result.estimate, "bound": result.bound, "audits": len(outcomes)}},
        )
        session.add(closed)
        audit.record_version(session, closed, was_open=True, kill_switch=True)
        session.commit()
    reroute(engine, project, closed)
    log.warning("project %s: gate closed by the drift kill-switch", project.id)
    return closed
