"""Agreement between a project's reviewers: per project, per pair of reviewers, per batch.

Thin over :mod:`calibration.agreement` and :mod:`api.review.human_labels`. The data are the
project's counting labels as votes (:func:`api.review.consensus.vote_table`: each annotator's
latest label per pair) on the pairs voted on by two or more annotators. Nominal statistics
(Cohen's and Fleiss' kappa, nominal alpha) compare sides (A / tie / B); the ordinal alpha
compares five-point labels (A>>B < A>B < tie < B>A < B>>A). A batch is the job its pairs came
in; the batch gate itself is :func:`api.review.human_labels.calibration_pairs` (a batch stops
calibrating only when its alpha is low with confidence).
"""

from __future__ import annotations

import math
from typing import Any

from sqlmodel import Session, col, select

from api.db import chunks
from api.models import Job, Label, Project
from api.review.consensus import fit_consensus, overlapped, vote_table
from api.review.human_labels import aspect_alpha, aspect_labels, counting_labels, project_batches
from calibration.agreement import fleiss_kappa, krippendorff_alpha, pairwise_cohen_kappa
from judge.verdicts import SIDES, VERDICTS


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def project_agreement(session: Session, project_id: int) -> float | None:
    """Krippendorff's alpha (nominal, on sides) over the project's overlapped pairs; None when
    it is undefined (no overlapped pair, or everyone used one side)."""
    sides = overlapped(vote_table(counting_labels(session, project_id)))
    return _number(krippendorff_alpha(sides, "nominal", categories=SIDES))


def agreement_report(session: Session, project_id: int) -> dict[str, Any]:
    """Everything ``GET /v1/projects/{id}/agreement`` shows (statistics that are undefined on
    the data are None)."""
    labels = counting_labels(session, project_id)
    sides = overlapped(vote_table(labels))
    five = overlapped(vote_table(labels, scale="five"))
    pairs = pairwise_cohen_kappa(sides)
    pairs = pairs[pairs["n"] > 0]
    kappas = [k for k in pairs["kappa"] if not math.isnan(k)]
    batches, _, threshold = project_batches(session, project_id, labels)
    created: dict[int, Any] = {}
    for part in chunks(sorted(batches)):
        created.update(session.exec(select(Job.id, Job.created_at).where(col(Job.id).in_(part))).all())
    return {
        "project": {
            "n_items": int(sides["item"].nunique()),
            "cohen_kappa_mean": sum(kappas) / len(kappas) if kappas else None,
            "fleiss_kappa": _number(fleiss_kappa(sides, categories=SIDES)),
            "krippendorff_alpha_ordinal": _number(krippendorff_alpha(five, "ordinal", categories=VERDICTS)),
            "krippendorff_alpha_nominal": _number(krippendorff_alpha(sides, "nominal", categories=SIDES)),
        },
        "pairs_of_reviewers": [
            {"a": row.annotator_1, "b": row.annotator_2, "n": int(row.n), "cohen_kappa": _number(row.kappa)}
            for row in pairs.itertuples()
        ],
        "batches": [
            {
                "job_id": job_id,
                "created_at": created.get(job_id),
                "n_items": batch.n_items,
                "krippendorff_alpha_ordinal": batch.krippendorff_alpha_ordinal,
                # The bootstrap upper bound, where it decides (enough pairs, alpha below threshold).
                "alpha_upper": batch.alpha_upper,
                "below_threshold": batch.below(threshold),
                "calibrates": batch.calibrates(threshold),
                "disputed": len(batch.disputed),
            }
            for job_id, batch in sorted(batches.items())
        ],
        "reviewers": [
            {"reviewer": r.annotator, "n": r.n, "ds_accuracy": r.ds_accuracy, "confusion": r.confusion}
            for r in fit_consensus(labels).reviewers
        ],
        "threshold": threshold,
        "aspects": aspect_agreement(labels, _aspect_names(session, project_id)),
    }


def _aspect_names(session: Session, project_id: int) -> list[str]:
    project = session.get(Project, project_id)
    return project.aspect_settings().names if project is not None else []


def aspect_agreement(labels: list[Label], names: list[str]) -> list[dict[str, Any]]:
    """Per aspect (issue 23): Krippendorff's alpha (ordinal) between the humans' labels on it,
    and each reviewer's Dawid--Skene accuracy and confusion fitted on that aspect alone."""
    out = []
    for name in names:
        answers = aspect_labels(labels, name)
        alpha, n_items = aspect_alpha(answers)
        out.append(
            {
                "aspect": name,
                "n_items": n_items,
                "krippendorff_alpha_ordinal": alpha,
                "reviewers": [
                    {
                        "reviewer": fit.annotator,
                        "n": fit.n,
                        "ds_accuracy": fit.ds_accuracy,
                        "confusion": fit.confusion,
                    }
                    for fit in fit_consensus(answers).reviewers
                ],
            }
        )
    return out
