"""Which human labels count, and what they say per pair: one definition for calibration,
results and export.

Labels are append-only (an edit supersedes, ``Label.superseded_by_id``); a quarantined label
(a paused reviewer's) or a speed-flagged one (given faster than the minimum reading time) is
kept but never counts until released.

One answer per pair (:func:`aggregate`, behind :func:`human_label_per_pair` and the gate's
``human_sides``): an adjudicated label wins; several annotators are combined by Dawid--Skene
(:mod:`api.review.consensus`); one label is itself.

Calibration also drops the reviewers' labels of a batch (a batch = the job its pairs came in)
whose annotators agree too little *with confidence*: Krippendorff's alpha on the five-point
ordinal scale over at least :data:`MIN_OVERLAP_ITEMS` overlapped pairs, with the upper end of a
bootstrap interval over those pairs below the project's ``agreement_threshold``
(:func:`batch_agreement`, :func:`calibration_pairs`). Two overlapped pairs are no evidence: the
alpha of a handful of pairs swings from -1 to 1 on one answer. Gold labels are
never dropped: a reviewer who disagrees with gold is graded by it
(:mod:`api.review.quality`), the gold label does not lose its vote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import false
from sqlmodel import Session, col, select

from api.db import chunks
from api.models import Label, Pair, Project
from api.review.consensus import Consensus, fit_consensus, overlapped, vote_table
from api.vocab import IMPORT_SOURCES, LabelSource
from calibration.agreement import krippendorff_alpha, krippendorff_alpha_upper
from judge.verdicts import VERDICTS, from_side, strength, to_five_point, to_side


def counts(label: Label) -> bool:
    """Is this label current and trusted enough to calibrate and to be exported?"""
    # A reviewer's answer on a honeypot grades the reviewer (api/review/quality.py), not the pair.
    return (
        label.superseded_by_id is None
        and not label.quarantined
        and not label.speed_flagged
        and label.source != LabelSource.HONEYPOT
    )


def counting_labels(session: Session, project_id: int) -> list[Label]:
    """The project's labels that count (:func:`counts`), oldest first."""
    query = select(Label).where(
        Label.project_id == project_id,
        col(Label.superseded_by_id).is_(None),
        Label.quarantined == false(),
        Label.speed_flagged == false(),
        Label.source != LabelSource.HONEYPOT,
    )
    return list(session.exec(query.order_by(col(Label.id))))


@dataclass(frozen=True)
class HumanLabel:
    """The human answer for one pair, and how it was reached from its labels."""

    pair_id: int
    label: str  # five-point, in the pair's original A/B terms
    side: str | None  # A | B | tie, None when the label has no side
    posterior: float | None  # the aggregate's probability of ``side``; None for one label
    method: str  # single | majority | dawid_skene | adjudicated
    label_ids: tuple[int, ...]
    sources: tuple[str, ...]


def _ids(labels: Sequence[Any]) -> tuple[int, ...]:
    return tuple(label.id for label in labels if getattr(label, "id", None) is not None)


def _sources(labels: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(getattr(label, "source", "")) for label in labels)


def _one(label: Any, method: str) -> HumanLabel:
    """A pair's answer that is one label as it is."""
    side = to_side(label.label, strict=False)
    return HumanLabel(label.pair_id, label.label, side, None, method, _ids([label]), _sources([label]))


def five_point_for(side: str, labels: Sequence[Any]) -> str:
    """The five-point label of an aggregated side: the strongest label among those that agree
    with it ("A>>B" if anyone said so), the weak one if none does, "tie" for a tie."""
    agreeing = [to_five_point(label.label) for label in labels if to_side(label.label, strict=False) == side]
    if side == "tie" or not agreeing:
        return from_side(side)
    return max(agreeing, key=lambda verdict: abs(strength(verdict) or 0))


def aggregate(labels: Sequence[Any], consensus: Consensus | None = None) -> dict[int, HumanLabel]:
    """One :class:`HumanLabel` per pair from these labels (oldest first), in order of each
    pair's first label. ``consensus`` defaults to Dawid--Skene fitted on the same labels.

    * an adjudicated label: the latest adjudicated label, method "adjudicated";
    * gold labels (imported as the truth): only they vote on their pair -- a reviewer who
      disagrees with gold is graded by it (:mod:`api.review.quality`), never outvotes it;
    * votes (latest sided label per annotator) from two or more annotators: Dawid--Skene's
      side as a five-point label (:func:`five_point_for`), method "dawid_skene";
    * otherwise the latest label (a sided one if there is one), method "single".

    Answers on honeypots are left out: they grade their reviewer, not the pair.
    """
    labels = [label for label in labels if getattr(label, "source", None) != LabelSource.HONEYPOT]
    by_pair: dict[int, list[Any]] = {}
    for label in labels:
        by_pair.setdefault(label.pair_id, []).append(label)
    # Fitted without the other labels of gold pairs: the side of a pair with two gold votes is
    # this fit's, and the reviewers' votes on it would otherwise outvote the gold labels there.
    gold_pairs = {label.pair_id for label in labels if getattr(label, "source", None) == LabelSource.GOLD}
    fit = (
        consensus
        if consensus is not None
        else fit_consensus(
            [
                label
                for label in labels
                if label.pair_id not in gold_pairs or getattr(label, "source", None) == LabelSource.GOLD
            ]
        )
    )
    result: dict[int, HumanLabel] = {}
    for pair_id, group in by_pair.items():
        adjudicated = [lab for lab in group if getattr(lab, "source", None) == LabelSource.ADJUDICATED]
        if adjudicated:
            result[pair_id] = _one(adjudicated[-1], "adjudicated")
            continue
        gold = [lab for lab in group if getattr(lab, "source", None) == LabelSource.GOLD]
        # With two annotators on a pair, Dawid--Skene cannot tell who is right where they differ;
        # a reviewer's answer on a gold pair would otherwise flip the gold label half the time.
        group = gold or group
        votes = {lab.annotator: lab for lab in group if to_side(lab.label, strict=False) is not None}
        if len(votes) >= 2 and pair_id in fit.sides:
            side = fit.sides[pair_id]
            used = list(votes.values())
            result[pair_id] = HumanLabel(
                pair_id,
                five_point_for(side, used),
                side,
                fit.posterior[pair_id],
                "dawid_skene",
                _ids(used),
                _sources(used),
            )
            continue
        last = list(votes.values())[-1] if votes else group[-1]
        result[pair_id] = _one(last, "single")
    return result


def human_label_per_pair(
    session: Session, project_id: int, pair_ids: Sequence[int] | None = None
) -> dict[int, HumanLabel]:
    """One human label per labelled pair, from the labels that count (:func:`aggregate`).

    Dawid--Skene is fitted on all the project's counting labels (every overlapped pair tells
    it how reliable each reviewer is), whichever pairs are asked for.
    """
    answers = aggregate(counting_labels(session, project_id))
    if pair_ids is None:
        return answers
    return {pid: answers[pid] for pid in dict.fromkeys(pair_ids) if pid in answers}


# --- the batch gate ------------------------------------------------------------------------

# Fewer overlapped pairs than this never exclude a batch, whatever their alpha: with two pairs
# one answer moves alpha from 1 to below 0 (the demo's ten review labels did exactly that).
MIN_OVERLAP_ITEMS = 10
# One-sided level of the bootstrap upper bound on a batch's alpha: a batch is excluded only
# when alpha is below the threshold with this confidence.
ALPHA_CONFIDENCE = 0.95


@dataclass(frozen=True)
class BatchAgreement:
    """Agreement on one batch's overlapped pairs (pairs with votes from two or more annotators).

    ``alpha_upper``: the :data:`ALPHA_CONFIDENCE` bootstrap upper bound of alpha over the
    overlapped pairs, computed only where it decides (enough pairs, alpha below the threshold
    :func:`batch_agreement` was given); None otherwise.
    """

    job_id: int
    n_items: int
    krippendorff_alpha_ordinal: float | None  # None: no overlapped pair, or one label used by all
    disputed: tuple[int, ...]  # overlapped pairs whose votes name different sides
    alpha_upper: float | None = None

    def below(self, threshold: float) -> bool:
        """Is the measured alpha below the threshold (however few pairs it rests on)? Its
        disputed pairs are worth a senior's look (:mod:`api.review.adjudication`)."""
        alpha = self.krippendorff_alpha_ordinal
        return alpha is not None and alpha < threshold

    def calibrates(self, threshold: float) -> bool:
        """False only with evidence of too little agreement: at least :data:`MIN_OVERLAP_ITEMS`
        overlapped pairs and even the upper bound of alpha below ``threshold``. Unmeasurable or
        barely measured agreement is no evidence against the labels."""
        if not self.below(threshold) or self.n_items < MIN_OVERLAP_ITEMS:
            return True
        return self.alpha_upper is None or self.alpha_upper >= threshold

    def why_excluded(self, threshold: float) -> str:
        """The batch's exclusion in words (for a closed gate's reason)."""
        alpha = self.krippendorff_alpha_ordinal
        words = (
            f"job {self.job_id}: alpha {'n/a' if alpha is None else f'{alpha:.2f}'} over {self.n_items} pairs"
        )
        if self.alpha_upper is None:
            return f"{words} labelled twice or more, threshold {threshold:g}"
        return (
            f"{words} labelled twice or more, its {ALPHA_CONFIDENCE:.0%} upper bound "
            f"{self.alpha_upper:.2f} < {threshold:g}"
        )


def batch_agreement(
    labels: Sequence[Any], job_of: Mapping[int, int], threshold: float | None = None
) -> dict[int, BatchAgreement]:
    """Per batch (``job_of``: pair id -> job id): overlapped pairs, Krippendorff's alpha on the
    five-point ordinal scale, disputed pairs, and (for batches with reviewers' labels and at
    least :data:`MIN_OVERLAP_ITEMS` overlapped pairs whose alpha is below ``threshold``) the
    bootstrap upper bound on alpha. Batches without labels are absent."""
    five = overlapped(vote_table(labels, scale="five"))
    sides = overlapped(vote_table(labels, scale="side"))
    n_sides = sides.groupby("item")["label"].nunique()
    # A batch of gold and imported labels only has nothing the gate could drop: no bootstrap.
    droppable = {
        job_of[label.pair_id]
        for label in labels
        if label.pair_id in job_of and getattr(label, "source", None) not in IMPORT_SOURCES
    }
    result = {}
    for job_id in sorted({job_of[label.pair_id] for label in labels if label.pair_id in job_of}):
        rows = five[five["item"].map(job_of) == job_id]
        alpha = krippendorff_alpha(rows, "ordinal", categories=VERDICTS) if len(rows) else math.nan
        items = rows["item"].unique().tolist()
        upper = None
        if (
            threshold is not None
            and job_id in droppable
            and len(items) >= MIN_OVERLAP_ITEMS
            and alpha < threshold
        ):
            # Seeded by the batch: the same labels give the same bound, refit after refit.
            bound = krippendorff_alpha_upper(
                rows, "ordinal", categories=VERDICTS, confidence=ALPHA_CONFIDENCE, seed=job_id
            )
            upper = None if math.isnan(bound) else bound
        result[job_id] = BatchAgreement(
            job_id=job_id,
            n_items=len(items),
            krippendorff_alpha_ordinal=None if math.isnan(alpha) else float(alpha),
            disputed=tuple(pid for pid in items if n_sides.get(pid, 0) > 1),
            alpha_upper=upper,
        )
    return result


def job_of_pairs(session: Session, pair_ids: Sequence[int]) -> dict[int, int]:
    """Pair id -> the job (batch) it came in."""
    found: dict[int, int] = {}
    for part in chunks(sorted(set(pair_ids))):
        found.update(session.exec(select(Pair.id, Pair.job_id).where(col(Pair.id).in_(part))).all())
    return found


def project_batches(
    session: Session, project_id: int, labels: Sequence[Label] | None = None
) -> tuple[dict[int, BatchAgreement], dict[int, int], float]:
    """The project's batches (:func:`batch_agreement` over its counting labels), the pair ->
    job map, and the project's ``agreement_threshold``."""
    labels = counting_labels(session, project_id) if labels is None else labels
    job_of = job_of_pairs(session, [label.pair_id for label in labels])
    project = session.get(Project, project_id)
    threshold = project.routing_settings().agreement_threshold if project is not None else 0.0
    return batch_agreement(labels, job_of, threshold), job_of, threshold


@dataclass(frozen=True)
class BatchGate:
    """What the batch gate leaves to calibration: the pairs, and what it excluded."""

    pairs: set[int]
    excluded: tuple[BatchAgreement, ...]  # batches excluded with confidence
    threshold: float

    def words(self, n_pairs: int) -> str:
        """The exclusion in one clause ("" when nothing was excluded); ``n_pairs``: how many
        labelled pairs it cost the caller."""
        if not self.excluded:
            return ""
        batches = "; ".join(batch.why_excluded(self.threshold) for batch in self.excluded)
        many = "es" if len(self.excluded) > 1 else ""
        return (
            f"the agreement gate excluded the labels of {n_pairs} pairs in {len(self.excluded)} "
            f"batch{many} whose reviewers agree too little ({batches})"
        )


def batch_gate(session: Session, project_id: int, labels: Sequence[Label] | None = None) -> BatchGate:
    """:func:`calibration_pairs` with what it excluded (for the gate's reason)."""
    labels = counting_labels(session, project_id) if labels is None else labels
    batches, job_of, threshold = project_batches(session, project_id, labels)
    excluded = tuple(batch for batch in batches.values() if not batch.calibrates(threshold))
    blocked = {batch.job_id for batch in excluded}
    # Gold labels keep their pair whatever its batch: the batch gate weighs the reviewers of a
    # batch, and a reviewer disagreeing with gold is graded, not believed (only gold votes on a
    # gold pair, :func:`aggregate`). Not "import": on such a pair the excluded reviewers' labels
    # still vote (Dawid--Skene) and would calibrate through the back door.
    trusted = {label.pair_id for label in labels if label.source == LabelSource.GOLD}
    kept = {
        label.pair_id
        for label in labels
        if label.pair_id in trusted or job_of.get(label.pair_id) not in blocked
    }
    return BatchGate(kept, excluded, threshold)


def calibration_pairs(session: Session, project_id: int, labels: Sequence[Label] | None = None) -> set[int]:
    """Pairs of the project's counting labels (or of ``labels``, which should be all of them:
    a batch's agreement is measured on all its labels) that the batch gate keeps: pairs with a
    gold label, and pairs of batches not excluded (:meth:`BatchAgreement.calibrates`)."""
    return batch_gate(session, project_id, labels).pairs


def human_sides(labels: list[Label]) -> pd.Series:
    """One side per pair: the human answer of :func:`api.review.human_labels.aggregate`
    (adjudicated label, else Dawid--Skene over several annotators, else the one label) --
    the same rule results and export read. A pair whose answer has no side is left out.
    Pairs come in the order of their first vote, which becomes the row order of the fit, so a
    refit on the same labels is the same fit.
    """
    answers = aggregate(labels)
    first_vote = dict.fromkeys(label.pair_id for label in labels if to_side(label.label, strict=False))
    return pd.Series(
        {pid: answers[pid].side for pid in first_vote if answers[pid].side is not None}, dtype=object
    )


@dataclass(frozen=True)
class AspectLabel:
    """One human label's answer on one aspect, shaped like a Label for the aggregation and
    agreement code (:func:`aggregate`, :func:`api.review.consensus.vote_table`)."""

    id: int
    pair_id: int
    annotator: str
    source: str
    label: str  # five-point, original A/B terms


def aspect_labels(labels: Sequence[Label], aspect: str) -> list[AspectLabel]:
    """The labels that answer ``aspect`` (issue 23), as that answer: the same aggregation
    (adjudication, gold, Dawid--Skene, one label) and agreement then run per aspect."""
    return [
        AspectLabel(label.id, label.pair_id, label.annotator, label.source, label.aspects[aspect])
        for label in labels
        if label.aspects and aspect in label.aspects
    ]


def aspect_alpha(labels: Sequence[Any]) -> tuple[float | None, int]:
    """Krippendorff's alpha (ordinal, five-point) over the pairs two or more annotators
    labelled, and how many such pairs; None when there are none (or one label used by all)."""
    five = overlapped(vote_table(labels, scale="five"))
    if five.empty:
        return None, 0
    alpha = krippendorff_alpha(five, "ordinal", categories=VERDICTS)
    return (None if math.isnan(alpha) else float(alpha)), int(five["item"].nunique())


def aspect_answers(
    session: Session, project_id: int, names: Sequence[str]
) -> dict[str, dict[int, HumanLabel]]:
    """Per aspect, one human answer per pair that has labels on it (:func:`aggregate` over
    :func:`aspect_labels`: Dawid--Skene per aspect where two or more annotators answered)."""
    labels = counting_labels(session, project_id)
    return {name: aggregate(aspect_labels(labels, name)) for name in names}
