"""Reviewer quality: honeypot grading, the auto-pause, the speed filter, the quality table.

A reviewer's answer is *graded* when a reference answer exists for its pair: the known answer
of a honeypot (``honeypot`` table, gold labels imported with ``honeypot: true``), the gold
label of a gold-labelled pair (a reviewer who disagrees with gold is graded by it; the gold
label keeps its pair, :mod:`api.review.human_labels`), or the
majority side of at least two other reviewers on an overlapped pair (reviewers paused on the
project and quarantined labels excluded). Grades compare sides (A / B / tie). A single peer
is no reference: with two reviewers per pair an honest one paired with a spammer would be
graded against noise.

The graded answers since the reviewer's last checkpoint feed :func:`calibration.sequential.monitor`
(Wald's SPRT, restarted after each pass). A pass moves the checkpoint (the *last good
check*) forward; a rejection pauses the reviewer on the project and quarantines their labels
since that checkpoint (kept, never counted: :mod:`api.review.human_labels`) until an admin
resumes them and, if they choose, releases the labels.

This module is the thin layer over the pure test: it reads rows, calls the maths, writes the
pause. The caller commits.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, select

from api import audit
from api.db import chunks, insert_ignore
from api.models import Honeypot, Label, Project, Reviewer, ReviewerProject, ReviewerStatus, table_of, utcnow
from api.schemas import RoutingSettings
from api.vocab import LabelSource
from calibration.metrics import clopper_pearson_interval
from calibration.sequential import SPRT, Monitoring, monitor
from judge.verdicts import to_side

# Labels a reviewer gives through the queue (imports and gold are not theirs to answer for).
REVIEWER_SOURCES: tuple[str, ...] = (
    LabelSource.REVIEW,
    LabelSource.AUDIT,
    LabelSource.CALIBRATION,
    LabelSource.HONEYPOT,
)
_PEER_SOURCES = tuple(s for s in REVIEWER_SOURCES if s != LabelSource.HONEYPOT)
# Grades against a known answer (a honeypot's, or a gold label's): the "honeypots" figures.
KNOWN_ANSWER: tuple[str, ...] = ("honeypot", "gold")


def min_reading_seconds(routing: RoutingSettings, n_chars: int) -> float:
    """The least time a pair of ``n_chars`` characters (prompt and both responses) takes to read."""
    return routing.min_seconds_base + routing.min_seconds_per_1k_chars * n_chars / 1000.0


def quality_test(routing: RoutingSettings) -> SPRT:
    """The project's sequential test on "agreed with the reference"."""
    return SPRT(
        good=routing.quality_good_accuracy,
        bad=routing.honeypot_min_accuracy,
        alpha=routing.quality_alpha,
        beta=routing.quality_beta,
    )


@dataclass(frozen=True)
class Graded:
    """One of a reviewer's answers with a reference: ``kind`` honeypot | gold | peer."""

    label_id: int
    pair_id: int
    kind: str
    agreed: bool


# --- reading -------------------------------------------------------------------------------


def status_of(session: Session, project_id: int, reviewer_id: int) -> ReviewerStatus | None:
    return session.get(ReviewerStatus, (reviewer_id, project_id))


def paused_names(session: Session, project_id: int) -> set[str]:
    """Names of the reviewers paused on the project (their answers are no reference)."""
    return set(
        session.exec(
            select(Reviewer.name)
            .join(ReviewerStatus, col(ReviewerStatus.reviewer_id) == col(Reviewer.id))
            .where(ReviewerStatus.project_id == project_id, ReviewerStatus.paused)
        )
    )


def pause_detail(status: ReviewerStatus) -> dict[str, str]:
    """The body of a 423 for a paused reviewer: what happened and what to do."""
    return {
        "code": "reviewer_paused",
        "message": f"You are paused on this project. {status.paused_reason or ''} "
        "Ask the project admin to look at your answers and resume you.".replace("  ", " "),
    }


def reviewer_labels(session: Session, project_id: int, name: str, after_id: int = 0) -> list[Label]:
    """The reviewer's current labels given through the queue (quarantined ones too), id order."""
    return list(
        session.exec(
            select(Label)
            .where(
                Label.project_id == project_id,
                Label.annotator == name,
                col(Label.source).in_(REVIEWER_SOURCES),
                col(Label.superseded_by_id).is_(None),
                col(Label.id) > after_id,
            )
            .order_by(col(Label.id))
        )
    )


def reference_side(sides: Iterable[str | None]) -> str | None:
    """The side more than half of at least two answers agree on, else None.

    >>> reference_side(["A", "A", "B"]), reference_side(["A", "B"]), reference_side(["A"])
    ('A', None, None)
    """
    known = [s for s in sides if s is not None]
    if len(known) < 2:
        return None
    side, n = Counter(known).most_common(1)[0]
    return side if 2 * n > len(known) else None


def grade(session: Session, project_id: int, name: str, labels: Sequence[Label]) -> list[Graded]:
    """The answers among ``labels`` (one reviewer's, id order) that have a reference, graded."""
    pair_ids = list(dict.fromkeys(label.pair_id for label in labels))
    known: dict[int, str] = {}
    gold: dict[int, list[str | None]] = {}
    peers: dict[int, list[str | None]] = {}
    excluded = paused_names(session, project_id) | {name}
    for part in chunks(pair_ids):
        known.update(
            session.exec(
                select(Honeypot.pair_id, Honeypot.label).where(
                    Honeypot.project_id == project_id,
                    col(Honeypot.pair_id).in_(part),
                )
            ).all()
        )
        for pair_id, annotator, value, source in session.exec(
            select(Label.pair_id, Label.annotator, Label.label, Label.source).where(
                Label.project_id == project_id,
                col(Label.pair_id).in_(part),
                col(Label.source).in_((*_PEER_SOURCES, LabelSource.GOLD)),
                col(Label.superseded_by_id).is_(None),
                Label.quarantined == false(),
            )
        ):
            if source == LabelSource.GOLD:
                gold.setdefault(pair_id, []).append(to_side(value, strict=False))
            elif annotator not in excluded:
                peers.setdefault(pair_id, []).append(to_side(value, strict=False))
    graded = []
    for label in labels:
        side = to_side(label.label, strict=False)
        reference: str | None
        if label.pair_id in known:
            kind, reference = "honeypot", to_side(known[label.pair_id], strict=False)
        elif label.pair_id in gold:
            # One gold label is the answer; several (a crowd imported as gold) need a majority.
            votes = gold[label.pair_id]
            kind, reference = "gold", votes[0] if len(votes) == 1 else reference_side(votes)
        else:
            kind, reference = "peer", reference_side(peers.get(label.pair_id, []))
        if side is not None and reference is not None:
            graded.append(Graded(label.id, label.pair_id, kind, side == reference))
    return graded


# --- writing: checks, pauses, resumes ------------------------------------------------------


def _ensure_status(session: Session, project_id: int, reviewer_id: int) -> None:
    now = utcnow()
    insert_ignore(
        session,
        table_of(ReviewerStatus),
        [
            {
                "reviewer_id": reviewer_id,
                "project_id": project_id,
                "paused": False,
                "checked_after_label_id": 0,
                "updated_at": now,
            }
        ],
        ["reviewer_id", "project_id"],
    )


def _reason(watch: Monitoring, graded: Sequence[Graded], test: SPRT, held: int, checkpoint: int) -> str:
    start = 0 if watch.last_good_check is None else watch.last_good_check + 1
    tested = graded[start : (watch.stopped_at or 0) + 1]
    honeypots = [g for g in tested if g.kind in KNOWN_ANSWER]
    peers = [g for g in tested if g.kind == "peer"]
    since = "you started (or were resumed)" if checkpoint == 0 and start == 0 else "your last good check"
    return (
        f"On the {len(tested)} answers checked since {since} you agreed with the reference "
        f"{sum(g.agreed for g in tested)} times ({sum(g.agreed for g in honeypots)} of "
        f"{len(honeypots)} honeypots or gold labels with a known answer, {sum(g.agreed for g in peers)} of "
        f"{len(peers)} pairs where other reviewers agreed): the sequential test finds your "
        f"accuracy at or below {test.bad:.0%} rather than {test.good:.0%} or more "
        f"(alpha {test.alpha}, beta {test.beta}). {held} label(s) since then are held back."
    )


def check_reviewer(session: Session, project: Project, reviewer: Reviewer) -> bool:
    """Run the quality test on the reviewer's answers since their checkpoint; pause on a
    rejection. Returns True when this call paused them. Call inside the writer's transaction."""
    _ensure_status(session, project.id, reviewer.id)
    status = status_of(session, project.id, reviewer.id)
    if status is None or status.paused:
        return False
    routing = project.routing_settings()
    test = quality_test(routing)
    labels = reviewer_labels(session, project.id, reviewer.name, status.checked_after_label_id)
    graded = grade(session, project.id, reviewer.name, labels)
    watch = monitor([g.agreed for g in graded], test)
    checkpoint = status.checked_after_label_id
    if watch.last_good_check is not None:
        # A passed test settles everything up to it: later checks start from there.
        checkpoint = graded[watch.last_good_check].label_id
    if watch.decision != "reject":
        if checkpoint != status.checked_after_label_id:
            session.execute(
                sa_update(ReviewerStatus)
                .where(
                    col(ReviewerStatus.reviewer_id) == reviewer.id,
                    col(ReviewerStatus.project_id) == project.id,
                    col(ReviewerStatus.paused) == false(),
                )
                .values(checked_after_label_id=checkpoint, updated_at=utcnow())
            )
        return False
    held = [label.id for label in labels if label.id > checkpoint]
    reason = _reason(watch, graded, test, len(held), checkpoint)
    now = utcnow()
    won = session.execute(
        sa_update(ReviewerStatus)
        .where(
            col(ReviewerStatus.reviewer_id) == reviewer.id,
            col(ReviewerStatus.project_id) == project.id,
            col(ReviewerStatus.paused) == false(),
        )
        .values(
            paused=True,
            paused_at=now,
            paused_reason=reason,
            checked_after_label_id=checkpoint,
            updated_at=now,
        )
        .returning(col(ReviewerStatus.reviewer_id))
    ).first()
    if won is None:  # a concurrent check paused them first
        return False
    for part in chunks(held):
        session.execute(sa_update(Label).where(col(Label.id).in_(part)).values(quarantined=True))
    audit.record_event(
        session,
        audit.AuditKind.REVIEWER_PAUSED,
        project_id=project.id,
        subject=f"reviewer:{reviewer.id}",
        payload={"reason": reason, "quarantined_label_ids": held, "checked_after_label_id": checkpoint},
    )
    return True


def check_after_label(session: Session, project: Project, label: Label) -> None:
    """After a reviewer's label on a pair: test them, and the reviewers whose answers on the
    same pair it may just have made gradeable."""
    names = {label.annotator}
    if label.source != LabelSource.HONEYPOT:
        names |= set(
            session.exec(
                select(Label.annotator).where(
                    Label.project_id == project.id,
                    Label.pair_id == label.pair_id,
                    col(Label.source).in_(_PEER_SOURCES),
                    col(Label.superseded_by_id).is_(None),
                )
            )
        )
    for reviewer in session.exec(select(Reviewer).where(col(Reviewer.name).in_(sorted(names)))):
        check_reviewer(session, project, reviewer)


class NotPaused(Exception):
    pass


def resume(session: Session, project_id: int, reviewer: Reviewer, release: bool) -> dict[str, Any]:
    """Lift the reviewer's pause on the project; the test starts over from their next label.
    ``release`` also un-quarantines their held labels. Raises :class:`NotPaused`. The caller commits."""
    status = status_of(session, project_id, reviewer.id)
    if status is None or not status.paused:
        raise NotPaused(f"reviewer {reviewer.id} is not paused on project {project_id}")
    last = session.exec(
        select(Label.id)
        .where(Label.project_id == project_id, Label.annotator == reviewer.name)
        .order_by(col(Label.id).desc())
        .limit(1)
    ).first()
    now = utcnow()
    status.paused, status.resumed_at, status.updated_at = False, now, now
    status.checked_after_label_id = max(status.checked_after_label_id, last or 0)
    session.add(status)
    released: list[int] = []
    if release:
        released = list(
            session.exec(
                select(Label.id).where(
                    Label.project_id == project_id,
                    Label.annotator == reviewer.name,
                    col(Label.source).in_(REVIEWER_SOURCES),
                    Label.quarantined,
                )
            )
        )
        for part in chunks(released):
            session.execute(sa_update(Label).where(col(Label.id).in_(part)).values(quarantined=False))
    audit.record_event(
        session,
        audit.AuditKind.REVIEWER_RESUMED,
        project_id=project_id,
        subject=f"reviewer:{reviewer.id}",
        payload={"release": release, "released_label_ids": released, "paused_reason": status.paused_reason},
    )
    return {
        "reviewer_id": reviewer.id,
        "project_id": project_id,
        "paused": False,
        "released_labels": len(released),
    }


# --- the quality table ---------------------------------------------------------------------


def reviewers_of(session: Session, project_id: int) -> list[Reviewer]:
    """The project's reviewers: assigned to it, or with a label in it."""
    assigned = select(ReviewerProject.reviewer_id).where(ReviewerProject.project_id == project_id)
    labelled = select(Label.annotator).where(
        Label.project_id == project_id,
        col(Label.source).in_(REVIEWER_SOURCES),
    )
    return list(
        session.exec(
            select(Reviewer)
            .where(col(Reviewer.id).in_(assigned) | col(Reviewer.name).in_(labelled))
            .order_by(col(Reviewer.id))
        )
    )


def _share(graded: Sequence[Graded]) -> float | None:
    return sum(g.agreed for g in graded) / len(graded) if graded else None


def quality_table(session: Session, project_id: int) -> list[dict[str, Any]]:
    """One row per reviewer of the project: volume, speed, honeypot accuracy (95 % exact
    interval), agreement with peers, flags, and whether they are paused and why."""
    rows = []
    for reviewer in reviewers_of(session, project_id):
        labels = reviewer_labels(session, project_id, reviewer.name)
        graded = grade(session, project_id, reviewer.name, labels)
        honeypots = [g for g in graded if g.kind in KNOWN_ANSWER]
        peers = [g for g in graded if g.kind == "peer"]
        lo, hi = (
            clopper_pearson_interval(sum(g.agreed for g in honeypots), len(honeypots))
            if honeypots
            else (None, None)
        )
        seconds = [label.time_on_task_s for label in labels if label.time_on_task_s is not None]
        status = status_of(session, project_id, reviewer.id)
        rows.append(
            {
                "reviewer_id": reviewer.id,
                "name": reviewer.name,
                "labels": len(labels),
                "median_seconds_per_label": statistics.median(seconds) if seconds else None,
                "honeypots_seen": len(honeypots),
                "honeypot_accuracy": _share(honeypots),
                "honeypot_ci": [lo, hi],
                "peer_checked": len(peers),
                "peer_agreement": _share(peers),
                "speed_flags": sum(label.speed_flagged for label in labels),
                "quarantined_labels": sum(label.quarantined for label in labels),
                "paused": bool(status and status.paused),
                "paused_at": status.paused_at if status and status.paused else None,
                "paused_reason": status.paused_reason if status and status.paused else None,
            }
        )
    return rows
