"""The promotion gate: every reason a project's labels may not go out as a TRAIN export yet.

:func:`refusals` reads a :class:`PromotionState` from the database (:func:`promotion_state`)
and hands it to the pure :func:`decide`. A train export is refused, with one
:class:`Refusal` per reason, while

* the gate is closed by the kill-switch (the audit drift test or the shift detector) and no
  refit has opened it since (``kill_switch``);
* the audits of the gate in force show agreement below the target with confidence: the
  one-sided Clopper–Pearson upper bound on audited agreement, at the project's ``delta``, is
  below ``target_agreement`` (``audited_agreement``);
* reviewers agree less than the project's ``agreement_threshold`` (Krippendorff's alpha on
  sides over the overlapped pairs, :func:`api.review.agreement_batches.project_agreement`;
  no refusal while it cannot be computed) (``human_agreement``);
* labels of reviewers still paused on the project are quarantined, waiting for an admin to
  release or drop them (``quarantined_labels``).

A refusal's message says what to do about it. The export code decides what a refusal means
(409, or ``--force`` with a recorded reason).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from api.calibrate.kill_switch import audit_outcomes
from api.calibrate.versions import kill_switch_since, latest_version, version_name
from api.models import CalibrationVersion, Label, Project
from api.review.agreement_batches import project_agreement
from api.review.quality import paused_names
from calibration.metrics import clopper_pearson_upper

__all__ = ["PromotionState", "Refusal", "audited_upper_bound", "decide", "promotion_state", "refusals"]

KILL_SWITCH = "kill_switch"
AUDITED_AGREEMENT = "audited_agreement"
HUMAN_AGREEMENT = "human_agreement"
QUARANTINED_LABELS = "quarantined_labels"


@dataclass(frozen=True)
class Refusal:
    """One reason a train export is refused: a stable code and what to do about it."""

    code: str
    message: str


@dataclass(frozen=True)
class PromotionState:
    """What the promotion gate needs to know about a project."""

    project_id: int
    target_agreement: float
    delta: float
    agreement_threshold: float
    # The kill-switch version that closed the gate, when no version has opened it since.
    kill_switch_version: str | None = None
    kill_switch_reason: str | None = None
    # Audits of the gate in force (since the latest version that opened it).
    audits: int = 0
    audits_agreed: int = 0
    human_agreement: float | None = None  # None: not computed (no overlapped pairs)
    # Paused reviewer's name -> their current quarantined labels.
    quarantined: dict[str, int] = field(default_factory=dict)


def audited_upper_bound(state: PromotionState) -> float | None:
    """Upper confidence bound (level 1 - delta) on audited agreement; None without audits."""
    if state.audits == 0:
        return None
    return float(clopper_pearson_upper(state.audits_agreed, state.audits, state.delta))


def decide(state: PromotionState) -> list[Refusal]:
    """Every reason to refuse a train export of the project ``state`` describes (pure)."""
    pid = state.project_id
    out = []
    if state.kill_switch_version is not None:
        out.append(
            Refusal(
                KILL_SWITCH,
                f"the gate has been closed by the kill-switch since {state.kill_switch_version} "
                f"({state.kill_switch_reason}): auto-accepted labels are no longer trusted. Read the audits "
                f"and the calibration report (GET /v1/projects/{pid}/calibration), import fresh gold labels "
                f"and refit (POST /v1/projects/{pid}/calibration/refit); a train export is possible once "
                "a refit opens the gate again.",
            )
        )
    upper = audited_upper_bound(state)
    if upper is not None and upper < state.target_agreement:
        out.append(
            Refusal(
                AUDITED_AGREEMENT,
                f"audited agreement {state.audits_agreed}/{state.audits} "
                f"({state.audits_agreed / state.audits:.3f}) is below the target "
                f"{state.target_agreement:.2f} with confidence {1 - state.delta:.2f} (upper bound "
                f"{upper:.3f}): the gate accepts labels that reviewers overturn. Import more gold labels "
                f"and refit (POST /v1/projects/{pid}/calibration/refit) so the gate accepts only what it "
                "can back, or export human labels only.",
            )
        )
    if state.human_agreement is not None and state.human_agreement < state.agreement_threshold:
        out.append(
            Refusal(
                HUMAN_AGREEMENT,
                f"reviewers agree at Krippendorff's alpha {state.human_agreement:.3f} (sides, overlapped "
                f"pairs), below the project's agreement_threshold {state.agreement_threshold:.3f}: "
                f"see who disagrees (GET /v1/projects/{pid}/agreement), clarify the guidelines, and have "
                f"senior reviewers adjudicate disputed pairs (POST /v1/projects/{pid}/adjudication/next).",
            )
        )
    if state.quarantined:
        held = sum(state.quarantined.values())
        names = ", ".join(sorted(state.quarantined))
        out.append(
            Refusal(
                QUARANTINED_LABELS,
                f"{held} labels of reviewers paused on this project ({names}) are quarantined: check them "
                f"(GET /v1/projects/{pid}/review/quality), then an admin resumes each reviewer "
                "(POST /v1/reviewers/{reviewer_id}/resume with release=true to count their labels, "
                "release=false to leave them out).",
            )
        )
    return out


def promotion_state(session: Session, project: Project) -> PromotionState:
    """Read what :func:`decide` needs from the database."""
    pid: int = project.id
    routing = project.routing_settings()
    latest = latest_version(session, pid)
    last_open = session.exec(
        select(CalibrationVersion)
        .where(CalibrationVersion.project_id == pid, col(CalibrationVersion.open))
        .order_by(col(CalibrationVersion.version).desc())
        .limit(1)
    ).first()
    kill = kill_switch_since(session, pid, last_open) if latest is not None and not latest.open else None
    # The gate in force is the one the latest opening version fitted (a kill-switch keeps its
    # model): its audits are the ones since then, as the drift test reads them.
    audits = audit_outcomes(session, pid, since=last_open.created_at if last_open is not None else None)
    paused = paused_names(session, pid)
    quarantined: Counter[str] = Counter()
    if paused:
        rows = session.exec(
            select(Label.annotator).where(
                Label.project_id == pid,
                col(Label.quarantined),
                col(Label.superseded_by_id).is_(None),
                col(Label.annotator).in_(sorted(paused)),
            )
        )
        quarantined.update(rows)
    return PromotionState(
        project_id=pid,
        target_agreement=routing.target_agreement,
        delta=routing.delta,
        agreement_threshold=routing.agreement_threshold,
        kill_switch_version=version_name(kill) if kill is not None else None,
        kill_switch_reason=kill.reason if kill is not None else None,
        audits=len(audits),
        audits_agreed=sum(agree for _, _, agree in audits),
        human_agreement=project_agreement(session, pid),
        quarantined=dict(quarantined),
    )


def refusals(session: Session, project: Project) -> list[Refusal]:
    """Every reason a train export of ``project`` must be refused now (empty: it may go)."""
    return decide(promotion_state(session, project))
