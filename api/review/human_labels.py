"""Which human labels count, and what they say per pair: one definition for calibration,
results and export.

Labels are append-only (an edit supersedes, ``Label.superseded_by_id``); a quarantined label
(a paused reviewer's) or a speed-flagged one (given faster than the minimum reading time) is
kept but never counts until released.

One answer per pair (:func:`aggregate`, behind :func:`human_label_per_pair` and the gate's
``human_sides``): an adjudicated label wins; several annotators are combined by Dawid--Skene
(:mod:`api.review.consensus`); one label is itself.

Calibration also drops whole batches (a batch = the job its pairs came in) whose annotators
agree too little (:func:`batch_agreement`, Krippendorff's alpha on the five-point ordinal
scale below the project's ``agreement_threshold``): :func:`calibration_pairs`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import false
from sqlmodel import Session, select

from api.db import chunks
from api.models import Label, Pair, Project
from api.review.consensus import Consensus, fit_consensus, overlapped, vote_table
from api.vocab import LabelSource
from calibration.agreement import krippendorff_alpha
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
        Label.superseded_by_id.is_(None),  # type: ignore[union-attr]
        Label.quarantined == false(),
        Label.speed_flagged == false(),
        Label.source != LabelSource.HONEYPOT,
    )
    return list(session.exec(query.order_by(Label.id)))  # type: ignore[arg-type]


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
    * votes (latest sided label per annotator) from two or more annotators: Dawid--Skene's
      side as a five-point label (:func:`five_point_for`), method "dawid_skene";
    * otherwise the latest label (a sided one if there is one), method "single".

    Answers on honeypots are left out: they grade their reviewer, not the pair.
    """
    labels = [label for label in labels if getattr(label, "source", None) != LabelSource.HONEYPOT]
    by_pair: dict[int, list[Any]] = {}
    for label in labels:
        by_pair.setdefault(label.pair_id, []).append(label)
    fit = consensus if consensus is not None else fit_consensus(labels)
    result: dict[int, HumanLabel] = {}
    for pair_id, group in by_pair.items():
        adjudicated = [lab for lab in group if getattr(lab, "source", None) == LabelSource.ADJUDICATED]
        if adjudicated:
            result[pair_id] = _one(adjudicated[-1], "adjudicated")
            continue
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


@dataclass(frozen=True)
class BatchAgreement:
    """Agreement on one batch's overlapped pairs (pairs with votes from two or more annotators)."""

    job_id: int
    n_items: int
    krippendorff_alpha_ordinal: float | None  # None: no overlapped pair, or one label used by all
    disputed: tuple[int, ...]  # overlapped pairs whose votes name different sides

    def calibrates(self, threshold: float) -> bool:
        """Too little agreement to trust the batch's labels? Unmeasurable agreement is no
        evidence against them."""
        alpha = self.krippendorff_alpha_ordinal
        return alpha is None or alpha >= threshold


def batch_agreement(labels: Sequence[Any], job_of: Mapping[int, int]) -> dict[int, BatchAgreement]:
    """Per batch (``job_of``: pair id -> job id): overlapped pairs, Krippendorff's alpha on the
    five-point ordinal scale, disputed pairs. Batches without labels are absent."""
    five = overlapped(vote_table(labels, scale="five"))
    sides = overlapped(vote_table(labels, scale="side"))
    n_sides = sides.groupby("item")["label"].nunique()
    result = {}
    for job_id in sorted({job_of[label.pair_id] for label in labels if label.pair_id in job_of}):
        rows = five[five["item"].map(job_of) == job_id]
        alpha = krippendorff_alpha(rows, "ordinal", categories=VERDICTS) if len(rows) else math.nan
        items = rows["item"].unique().tolist()
        result[job_id] = BatchAgreement(
            job_id=job_id,
            n_items=len(items),
            krippendorff_alpha_ordinal=None if math.isnan(alpha) else float(alpha),
            disputed=tuple(pid for pid in items if n_sides.get(pid, 0) > 1),
        )
    return result


def job_of_pairs(session: Session, pair_ids: Sequence[int]) -> dict[int, int]:
    """Pair id -> the job (batch) it came in."""
    found: dict[int, int] = {}
    for part in chunks(sorted(set(pair_ids))):
        found.update(session.exec(select(Pair.id, Pair.job_id).where(Pair.id.in_(part))).all())  # type: ignore[union-attr,arg-type]
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
    return batch_agreement(labels, job_of), job_of, threshold


def calibration_pairs(session: Session, project_id: int, labels: Sequence[Label] | None = None) -> set[int]:
    """Pairs of the project's counting labels (or of ``labels``, which should be all of them:
    a batch's agreement is measured on all its labels) whose batch calibrates (its alpha is not
    below the project's ``agreement_threshold``)."""
    labels = counting_labels(session, project_id) if labels is None else labels
    batches, job_of, threshold = project_batches(session, project_id, labels)
    blocked = {job for job, batch in batches.items() if not batch.calibrates(threshold)}
    return {label.pair_id for label in labels if job_of.get(label.pair_id) not in blocked}


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
