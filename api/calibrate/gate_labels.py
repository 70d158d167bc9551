"""The labels a refit may use, and what keeps a gate closed besides the fit itself.

:func:`usable_label_set` reads the project's counting labels, keeps those from
``CALIBRATION_SOURCES`` that the agreement gate keeps (:func:`api.review.human_labels.batch_gate`:
gold always, a batch's reviewers unless they agree too little with confidence), and measures
what a closed gate's reason must name: the labels the agreement gate excluded and the
annotators' own agreement (the ceiling of any target of agreement with one human label).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from api.models import Honeypot
from api.review.consensus import overlapped, vote_table
from api.review.human_labels import BatchGate, batch_gate, counting_labels, human_sides
from api.schemas import RoutingSettings
from api.vocab import CALIBRATION_SOURCES, SOURCE_WHY
from calibration.agreement import pairwise_agreement
from calibration.gate import one_sided_gold

# Fewer comparisons between two humans than this say nothing about their agreement ceiling.
MIN_CEILING_COMPARISONS = 20


@dataclass(frozen=True)
class UsableLabels:
    """The labels a refit may use, and what the reason of a closed gate needs to know."""

    sides: pd.Series  # pair id -> human side, the pairs that calibrate
    sources: dict[str, Any]  # per label source: n, used, why
    batches: BatchGate  # the agreement gate's verdict on the project's batches
    n_excluded: int  # random-sample pairs whose labels the agreement gate excluded
    human_agreement: float  # raw agreement between two humans on one pair (nan: never measured)
    n_comparisons: int  # (pair, two of its annotators) comparisons behind it

    def why_closed(self, routing: RoutingSettings) -> list[str]:
        """What keeps a gate closed besides the fit's own reason: labels the agreement gate
        excluded, and a human-human agreement below the target (the ceiling)."""
        out = []
        if self.n_excluded:
            out.append(self.batches.words(self.n_excluded))
        target = routing.target_agreement
        if self.n_comparisons >= MIN_CEILING_COMPARISONS and self.human_agreement < target:
            out.append(
                f"human-human agreement is below the target: your annotators agree with each other on "
                f"{self.human_agreement:.0%} of {self.n_comparisons} comparisons of two labels on one "
                f"pair; a target of {target:.0%} agreement with a human label cannot be guaranteed"
            )
        return out

    def warnings(self) -> list[str]:
        """Warnings about the labels that hold whether the gate opens or not."""
        warning = one_sided_gold(self.sides)
        return [warning] if warning else []


def usable_label_set(session: Session, project_id: int) -> UsableLabels:
    """Human sides of pairs with calibration-usable labels, what each source contributed, and
    what the agreement gate excluded.

    A pair calibrates when it has a counting label from a source in ``CALIBRATION_SOURCES``,
    is not a honeypot, and the agreement gate keeps it
    (:func:`api.review.human_labels.calibration_pairs`: gold always, a reviewer's label unless
    its batch agrees too little with confidence); its side is the answer from its counting
    labels (:func:`api.review.human_labels.aggregate`: an adjudication wins, then gold, else
    Dawid--Skene fitted on every counting label of the project).
    """
    labels = counting_labels(session, project_id)
    counts = Counter(label.source for label in labels)
    sources = {
        source: {"n": counts.get(source, 0), "used": source in CALIBRATION_SOURCES, "why": SOURCE_WHY[source]}
        for source in SOURCE_WHY
    }
    # Honeypots are picked because their answer is clear: a sample of easy pairs, not of the stream.
    honeypots = set(session.exec(select(Honeypot.pair_id).where(Honeypot.project_id == project_id)))
    sampled = {label.pair_id for label in labels if label.source in CALIBRATION_SOURCES} - honeypots
    batches = batch_gate(session, project_id, labels)
    usable = sampled & batches.pairs
    sides = human_sides(labels)
    agreement, comparisons = pairwise_agreement(overlapped(vote_table(labels)))
    return UsableLabels(
        sides=sides[sides.index.isin(list(usable))],
        sources=sources,
        batches=batches,
        n_excluded=len(sampled - usable),
        human_agreement=agreement,
        n_comparisons=comparisons,
    )


def usable_labels(session: Session, project_id: int) -> tuple[pd.Series, dict[str, Any]]:
    """:func:`usable_label_set`'s sides and sources."""
    found = usable_label_set(session, project_id)
    return found.sides, found.sources
