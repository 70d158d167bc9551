"""Promotion gate (api/export/promotion.py): the pure decision, and the state read from a database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import product

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.calibrate import kill_switch
from api.export import promotion
from api.export.promotion import (
    AUDITED_AGREEMENT,
    HUMAN_AGREEMENT,
    KILL_SWITCH,
    QUARANTINED_LABELS,
    PromotionState,
    decide,
    promotion_state,
    refusals,
)
from api.models import CalibrationVersion, Decision, Label, Pair, Project, Reviewer, ReviewerStatus, utcnow
from api.review.agreement_batches import project_agreement
from tests.helpers import seed_review_queue

# --- the pure decision --------------------------------------------------------------------

CLEAR = PromotionState(project_id=7, target_agreement=0.9, delta=0.1, agreement_threshold=0.667)
PROBLEMS = {
    KILL_SWITCH: {
        "kill_switch_version": "cal-3",
        "kill_switch_reason": "kill-switch: audited agreement 0.60",
    },
    AUDITED_AGREEMENT: {"audits": 40, "audits_agreed": 28},  # upper bound ~0.81 < 0.9
    HUMAN_AGREEMENT: {"human_agreement": 0.41},
    QUARANTINED_LABELS: {"quarantined": {"spammer": 12, "sleepy": 3}},
}
# What each message must point the user to.
HINTS = {
    KILL_SWITCH: ["cal-3", "kill-switch: audited agreement 0.60", "/v1/projects/7/calibration/refit"],
    AUDITED_AGREEMENT: ["28/40", "0.90", "/v1/projects/7/calibration/refit", "human labels only"],
    HUMAN_AGREEMENT: ["0.410", "0.667", "/v1/projects/7/agreement", "/v1/projects/7/adjudication/next"],
    QUARANTINED_LABELS: ["15 labels", "sleepy, spammer", "/resume", "release=true", "release=false"],
}


@pytest.mark.parametrize("present", list(product([False, True], repeat=len(PROBLEMS))))
def test_every_combination_of_problems_gives_exactly_its_refusals(present: tuple[bool, ...]) -> None:
    wanted = [code for code, on in zip(PROBLEMS, present, strict=True) if on]
    state = PromotionState(
        **{**CLEAR.__dict__, **{k: v for code in wanted for k, v in PROBLEMS[code].items()}}
    )
    found = decide(state)
    assert [r.code for r in found] == wanted
    for refusal in found:
        for hint in HINTS[refusal.code]:
            assert hint in refusal.message, (refusal.code, hint)


@pytest.mark.parametrize(
    ("audits", "agreed", "refused"),
    [
        (0, 0, False),  # no audits: nothing to hold against the gate
        (10, 8, False),  # 80 % of 10: the bound (~0.95) does not rule out 90 %
        (40, 36, False),
        (40, 30, True),  # upper bound ~0.84
        (200, 170, True),
        (3, 0, True),  # even three audits, all overturned, bound agreement below 0.9
    ],
)
def test_audited_agreement_refuses_only_when_below_target_with_confidence(
    audits: int, agreed: int, refused: bool
) -> None:
    state = PromotionState(**{**CLEAR.__dict__, "audits": audits, "audits_agreed": agreed})
    assert [r.code for r in decide(state)] == ([AUDITED_AGREEMENT] if refused else [])
    bound = promotion.audited_upper_bound(state)
    assert (bound is None) == (audits == 0)
    if bound is not None:
        assert agreed / audits <= bound <= 1.0


@pytest.mark.parametrize(
    ("alpha", "refused"), [(None, False), (0.667, False), (0.9, False), (0.6669, True), (-0.2, True)]
)
def test_human_agreement_refuses_below_the_threshold_only(alpha: float | None, refused: bool) -> None:
    state = PromotionState(**{**CLEAR.__dict__, "human_agreement": alpha})
    assert [r.code for r in decide(state)] == ([HUMAN_AGREEMENT] if refused else [])


# --- the state, read from a database (SQLite and PostgreSQL) ------------------------------


def _project(engine: Engine, pending: int = 400) -> Project:
    """A project whose pairs wait in review (decisions as the worker writes them, chosen "A")."""
    project_id = seed_review_queue(engine, pending)
    with Session(engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
    assert project is not None
    return project


def _version(engine: Engine, project: Project, number: int, open_: bool, trigger: str = "manual") -> None:
    with Session(engine) as session:
        session.add(
            CalibrationVersion(
                project_id=project.id,  # type: ignore[arg-type]
                version=number,
                trigger=trigger,
                open=open_,
                reason="opened for the test" if open_ else "closed for the test",
                created_at=utcnow(),
            )
        )
        session.commit()


def _review_pairs(engine: Engine, project: Project, n: int, offset: int = 0) -> list[int]:
    with Session(engine) as session:
        ids = session.exec(
            select(Pair.id)
            .join(Decision, Decision.id == Pair.decision_id)  # type: ignore[arg-type]
            .where(Pair.project_id == project.id, Decision.route == "review", Decision.chosen == "A")
            .order_by(Pair.id)  # type: ignore[arg-type]
        ).all()
    assert len(ids) >= offset + n
    return list(ids[offset : offset + n])  # type: ignore[arg-type]


def _labels(
    engine: Engine,
    project: Project,
    pair_ids: list[int],
    label: str,
    source: str,
    annotator: str = "auditor",
    quarantined: bool = False,
    age: timedelta = timedelta(0),
) -> list[int]:
    with Session(engine) as session:
        rows = [
            Label(
                project_id=project.id,  # type: ignore[arg-type]
                pair_id=pid,
                label=label,
                source=source,
                annotator=annotator,
                idempotency_key=uuid.uuid4().hex,
                quarantined=quarantined,
                created_at=utcnow() - age,
            )
            for pid in pair_ids
        ]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]  # type: ignore[misc]


def _codes(engine: Engine, project: Project) -> list[str]:
    with Session(engine) as session:
        return [r.code for r in refusals(session, project)]


def test_a_project_with_nothing_wrong_may_export(any_engine: Engine) -> None:
    project = _project(any_engine, pending=50)
    assert _codes(any_engine, project) == []
    _version(any_engine, project, 1, open_=True)
    assert _codes(any_engine, project) == []


def test_the_kill_switch_refuses_until_a_refit_opens_the_gate_again(any_engine: Engine) -> None:
    project = _project(any_engine)
    _version(any_engine, project, 1, open_=True)
    # Reviewers overturn every audited auto-label: the real drift test closes the gate.
    _labels(any_engine, project, _review_pairs(any_engine, project, 15), "B>A", "audit")
    closed = kill_switch.check_drift(any_engine, project)
    assert closed is not None and closed.trigger == "drift" and not closed.open
    with Session(any_engine) as session:
        state = promotion_state(session, project)
        found = refusals(session, project)
    assert state.kill_switch_version == "cal-2"
    assert state.audits == 15 and state.audits_agreed == 0
    assert [r.code for r in found] == [KILL_SWITCH, AUDITED_AGREEMENT]
    assert "kill-switch" in found[0].message
    # A refit that stays closed (too few labels, say) does not lift the kill-switch ...
    _version(any_engine, project, 3, open_=False)
    assert _codes(any_engine, project)[0] == KILL_SWITCH
    # ... one that opens the gate does; its own audits start from nothing.
    _version(any_engine, project, 4, open_=True)
    assert _codes(any_engine, project) == []


def test_audits_of_the_gate_in_force_are_bounded(any_engine: Engine) -> None:
    project = _project(any_engine, pending=1200)
    pairs = _review_pairs(any_engine, project, 60)
    # Overturned audits of an earlier gate do not count against the one now in force.
    _labels(any_engine, project, pairs[:20], "B", "audit", age=timedelta(hours=1))
    _version(any_engine, project, 1, open_=True)
    _labels(any_engine, project, pairs[20:48], "A>B", "audit")
    _labels(any_engine, project, pairs[48:], "B>>A", "audit")
    with Session(any_engine) as session:
        state = promotion_state(session, project)
    assert (state.audits, state.audits_agreed) == (40, 28)
    assert _codes(any_engine, project) == [AUDITED_AGREEMENT]


def test_quarantined_labels_of_paused_reviewers_refuse_until_resumed(any_engine: Engine) -> None:
    project = _project(any_engine, pending=50)
    pairs = _review_pairs(any_engine, project, 6)
    with Session(any_engine) as session:
        paused = Reviewer(name="spammer", token_hash="a" * 64)
        resumed = Reviewer(name="released-without-labels", token_hash="b" * 64)
        session.add_all([paused, resumed])
        session.flush()
        session.add_all(
            [
                ReviewerStatus(reviewer_id=paused.id, project_id=project.id, paused=True),  # type: ignore[arg-type]
                ReviewerStatus(reviewer_id=resumed.id, project_id=project.id, paused=False),  # type: ignore[arg-type]
            ]
        )
        session.commit()
        paused_id = paused.id
    held = _labels(any_engine, project, pairs[:3], "A", "review", annotator="spammer", quarantined=True)
    _labels(any_engine, project, pairs[3:5], "A", "review", annotator="spammer")  # before the bad streak
    # Resumed with release=false: the admin decided, those labels stay out and refuse nothing.
    _labels(
        any_engine, project, pairs[5:], "A", "review", annotator="released-without-labels", quarantined=True
    )
    with Session(any_engine) as session:
        # An edit of a quarantined label supersedes it: only the current one is counted.
        old = session.get(Label, held[0])
        old.superseded_by_id = held[1]  # type: ignore[union-attr]
        session.add(old)
        session.commit()
        state = promotion_state(session, project)
        found = refusals(session, project)
    assert state.quarantined == {"spammer": 2}
    assert [r.code for r in found] == [QUARANTINED_LABELS] and "2 labels" in found[0].message
    with Session(any_engine) as session:
        status = session.get(ReviewerStatus, (paused_id, project.id))
        status.paused = False  # type: ignore[union-attr]
        session.add(status)
        session.commit()
    assert _codes(any_engine, project) == []


def test_human_agreement_is_the_projects_alpha(any_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(any_engine, pending=60)
    pairs = _review_pairs(any_engine, project, 20)
    # Two reviewers on the same pairs who agree on half and contradict each other on the rest.
    _labels(any_engine, project, pairs, "A>B", "review", annotator="ann")
    _labels(any_engine, project, pairs[:10], "A", "review", annotator="bob")
    _labels(any_engine, project, pairs[10:], "B", "review", annotator="bob")
    with Session(any_engine) as session:
        alpha = project_agreement(session, project.id)  # type: ignore[arg-type]
        state = promotion_state(session, project)
    assert alpha is not None and alpha < 0.667
    assert state.human_agreement == alpha
    assert _codes(any_engine, project) == [HUMAN_AGREEMENT]
    # Not computable (no overlapped pairs) refuses nothing; the threshold is the project's.
    monkeypatch.setattr(promotion, "project_agreement", lambda session, project_id: None)
    assert _codes(any_engine, project) == []
    monkeypatch.setattr(promotion, "project_agreement", lambda session, project_id: 0.5)
    assert _codes(any_engine, project) == [HUMAN_AGREEMENT]
    with Session(any_engine) as session:
        stored = session.get(Project, project.id)
        stored.routing = {**stored.routing, "agreement_threshold": 0.4}  # type: ignore[union-attr]
        session.add(stored)
        session.commit()
        session.refresh(stored)
        assert refusals(session, stored) == []  # type: ignore[arg-type]
