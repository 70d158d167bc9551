"""Gold from several reviewers: Dawid--Skene over a project's human labels (no database).

Input is label rows (``api.models.Label`` or anything with ``pair_id``, ``annotator``,
``label`` and optionally ``source``), oldest first. Each annotator's latest label on a pair is
their vote; a label without a side is no vote; adjudicated labels are no vote either (they
settle a dispute, they are not one more rater -- :mod:`api.review.human_labels` lets them
win outright), nor are answers on honeypots (they grade the reviewer, not the pair).
Dawid--Skene (:func:`calibration.aggregation.dawid_skene`) is fitted on the
pairs with votes from two or more annotators: a pair labelled once says nothing about who is
reliable, and would only pull every annotator's estimate towards "always right".

Why not crowd-kit's ``DawidSkene``: crowd-kit 1.4.2 installs (it requires ``nltk`` and
``transformers``), but importing ``crowdkit.aggregation`` pulls in nltk (7.5 s here), too heavy
for the service's calibration path; and its EM has no pseudo-count, so on small data its
posteriors come out 0 or 1 (three items, A/A/B on one: 1.0), not the posterior this module
reports. :mod:`calibration.aggregation` is the same EM with a pseudo-count; on PandaLM the two
give the same label on all 999 items.

>>> from types import SimpleNamespace as L
>>> votes = {1: "AAB", 2: "BBA", 3: "AAB", 4: "BBA", 5: "AAA", 6: "BBB", 7: "ABA", 8: "BAB"}
>>> rows = [L(pair_id=p, annotator=w, label=v) for p, s in votes.items() for w, v in zip("xyz", s)]
>>> fit = fit_consensus(rows)
>>> fit.sides[7], fit.sides[8], round(fit.posterior[5], 3)
('B', 'A', 0.994)
>>> [(r.annotator, round(r.ds_accuracy, 2)) for r in fit.reviewers]
[('x', 0.75), ('y', 0.99), ('z', 0.25)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from api.vocab import LabelSource
from calibration.aggregation import dawid_skene
from judge.verdicts import SIDES, to_five_point, to_side

__all__ = ["Consensus", "ReviewerFit", "fit_consensus", "vote_table"]

# Settling a dispute is not one more rater; a honeypot answer grades its reviewer only.
NOT_VOTES: tuple[str, ...] = (LabelSource.ADJUDICATED, LabelSource.HONEYPOT)

# Two sides whose posteriors differ by less than this are a split: the answer is "tie", as in
# the majority rule, rather than whichever side comes first in SIDES.
SPLIT_TOLERANCE = 1e-6


def vote_table(labels: Iterable[Any], scale: str = "side") -> pd.DataFrame:
    """The long table (``item``, ``annotator``, ``label``) of the annotators' votes.

    One row per (pair, annotator): their latest label, as a side (``scale="side"``) or as a
    five-point verdict (``scale="five"``). Labels of ``NOT_VOTES`` sources and labels without a
    side are left out. Rows come in the order of each pair's first vote.
    """
    if scale not in ("side", "five"):
        raise ValueError("scale must be 'side' or 'five'")
    latest: dict[tuple[int, str], str] = {}
    for label in labels:
        if getattr(label, "source", None) in NOT_VOTES:
            continue
        side = to_side(label.label, strict=False)
        if side is None:
            continue
        key = (label.pair_id, label.annotator)
        latest.pop(key, None)  # a later label replaces the vote but not the pair's first place
        latest[key] = side if scale == "side" else to_five_point(label.label)
    rows = sorted(((p, a, v) for (p, a), v in latest.items()), key=_first_place(latest))
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


def _first_place(latest: dict[tuple[int, str], str]) -> Any:
    order: dict[int, int] = {}
    for pair_id, _ in latest:
        order.setdefault(pair_id, len(order))
    return lambda row: order[row[0]]


def overlapped(long: pd.DataFrame) -> pd.DataFrame:
    """The rows of items with votes from two or more annotators."""
    n = long.groupby("item")["annotator"].transform("nunique")
    return long[n >= 2]


@dataclass(frozen=True)
class ReviewerFit:
    """One annotator as Dawid--Skene sees them."""

    annotator: str
    n: int  # overlapped pairs they voted on
    ds_accuracy: float  # probability their vote is the true side (prior-weighted diagonal)
    confusion: dict[str, dict[str, float]]  # true side -> given side -> probability


@dataclass(frozen=True)
class Consensus:
    """Dawid--Skene's side and its posterior per overlapped pair, and the annotators' fits."""

    sides: dict[int, str] = field(default_factory=dict)
    posterior: dict[int, float] = field(default_factory=dict)
    reviewers: list[ReviewerFit] = field(default_factory=list)


def fit_consensus(labels: Sequence[Any]) -> Consensus:
    """Fit Dawid--Skene on the pairs voted on by two or more annotators (see module doc).

    A pair where two sides come out equally likely (two equally reliable annotators split A/B)
    gets "tie", with the posterior of "tie".
    """
    long = overlapped(vote_table(labels))
    if long.empty:
        return Consensus()
    ds = dawid_skene(long, categories=list(SIDES))
    post = ds.posterior.to_numpy()
    top = post.max(axis=1, keepdims=True)
    split = (post >= top - SPLIT_TOLERANCE).sum(axis=1) > 1
    best = np.where(split, SIDES.index("tie"), post.argmax(axis=1))
    items = ds.posterior.index.tolist()
    sides = {item: SIDES[k] for item, k in zip(items, best, strict=True)}
    posterior = {item: float(post[i, k]) for i, (item, k) in enumerate(zip(items, best, strict=True))}
    priors = ds.priors.to_numpy() if ds.priors is not None else np.full(len(SIDES), 1 / len(SIDES))
    n_items = long.groupby("annotator")["item"].nunique()
    reviewers = [
        ReviewerFit(
            annotator=str(name),
            n=int(n_items[name]),
            ds_accuracy=float((priors * np.diag(matrix.to_numpy())).sum()),
            confusion={
                true: {given: round(float(p), 4) for given, p in row.items()}
                for true, row in matrix.iterrows()
            },
        )
        for name, matrix in sorted(ds.confusions.items(), key=lambda kv: str(kv[0]))
    ]
    return Consensus(sides=sides, posterior=posterior, reviewers=reviewers)
