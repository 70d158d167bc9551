"""Gold from several reviewers (api.review.consensus, api.review.human_labels.aggregate):
Dawid-Skene on planted data, the five-point label of an aggregate, and the adjudicated label
that beats every other."""

from __future__ import annotations

import doctest
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from api.review import consensus
from api.review.consensus import fit_consensus, vote_table
from api.review.human_labels import aggregate, five_point_for
from calibration.aggregation import majority_vote
from judge.verdicts import SIDES, from_side


def _label(pair_id: int, annotator: str, label: str, source: str = "calibration", id_: int | None = None):
    return SimpleNamespace(id=id_, pair_id=pair_id, annotator=annotator, label=label, source=source)


def _planted(seed: int = 3, n: int = 300) -> tuple[list[SimpleNamespace], np.ndarray]:
    """One reliable reviewer (95% right) and two noisy ones (55% right, errors at random)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=[0.45, 0.1, 0.45])
    labels = []
    for annotator, accuracy in [("reliable", 0.95), ("noisy1", 0.55), ("noisy2", 0.55)]:
        right = rng.uniform(size=n) < accuracy
        wrong = (truth + rng.integers(1, 3, size=n)) % 3  # any other side
        given = np.where(right, truth, wrong)
        labels += [_label(i, annotator, from_side(SIDES[g])) for i, g in enumerate(given)]
    return labels, truth


def test_docstring_examples_run() -> None:
    assert doctest.testmod(consensus).failed == 0


def test_a_reliable_reviewer_outweighs_two_noisy_ones() -> None:
    labels, truth = _planted()
    answers = aggregate(labels)
    truth_side = {i: SIDES[t] for i, t in enumerate(truth)}
    votes = vote_table(labels).pivot(index="item", columns="annotator", values="label")
    # Where the two noisy reviewers agree with each other against the reliable one, Dawid-Skene
    # sides with the reliable one (majority vote would side with the noisy pair every time).
    outvoted = votes[(votes["noisy1"] == votes["noisy2"]) & (votes["noisy1"] != votes["reliable"])]
    assert len(outvoted) >= 20
    with_reliable = np.mean([answers[i].side == votes.loc[i, "reliable"] for i in outvoted.index])
    assert with_reliable >= 0.8
    ds_accuracy = np.mean([answers[i].side == truth_side[i] for i in answers])
    long = vote_table(labels)
    mv = majority_vote(long, on_tie="label").labels
    mv_accuracy = np.mean([mv[i] == truth_side[i] for i in mv.index])
    assert ds_accuracy > mv_accuracy + 0.1 and ds_accuracy > 0.9
    assert all(a.method == "dawid_skene" and a.posterior is not None for a in answers.values())
    fit = {r.annotator: r for r in fit_consensus(labels).reviewers}
    assert fit["reliable"].ds_accuracy > 0.9 > 0.6 > max(fit["noisy1"].ds_accuracy, fit["noisy2"].ds_accuracy)
    assert fit["reliable"].n == 300
    # Confusion rows (true side) are probability distributions over the given side.
    for row in fit["noisy1"].confusion.values():
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-3)


def test_adjudicated_beats_everyone() -> None:
    labels, _ = _planted()
    pair = 5
    majority_side = aggregate(labels)[pair].side
    other = "B>>A" if majority_side != "B" else "A>>B"
    labels.append(_label(pair, "senior", other, source="adjudicated", id_=9001))
    labels.append(_label(pair, "reliable", from_side(majority_side)))  # later votes don't undo it
    answer = aggregate(labels)[pair]
    assert (answer.label, answer.method, answer.label_ids, answer.sources) == (
        other,
        "adjudicated",
        (9001,),
        ("adjudicated",),
    )
    # The adjudication is not a vote: the other pairs' answers are unchanged by it.
    before = {p: a.side for p, a in aggregate(labels[:-2]).items()}
    after = {p: a.side for p, a in aggregate(labels).items() if p != pair}
    assert after == {p: s for p, s in before.items() if p != pair}


def test_single_split_and_five_point_label() -> None:
    labels = [
        _label(1, "x", "A>>B", id_=1),  # one label: itself
        _label(2, "x", "A>B", id_=2),
        _label(2, "y", "A>>B", id_=3),  # agreeing: the strongest of the agreeing labels
        _label(3, "x", "A>B", id_=4),
        _label(3, "y", "B>A", id_=5),  # equally reliable (by symmetry with 6 and 7), split: a tie
        _label(6, "x", "B>A", id_=9),
        _label(6, "y", "A>B", id_=10),
        _label(7, "x", "B>A", id_=11),
        _label(7, "y", "B>>A", id_=12),
        _label(4, "x", "tie", id_=6),
        _label(4, "x", "B>A", id_=7),  # the same annotator again: their latest label is their vote
        _label(5, "z", "A>B", source="honeypot", id_=8),  # grades z, never the pair's label
    ]
    answers = aggregate(labels)
    assert (answers[1].label, answers[1].method, answers[1].posterior, answers[1].label_ids) == (
        "A>>B",
        "single",
        None,
        (1,),
    )
    assert (answers[2].label, answers[2].side, answers[2].method) == ("A>>B", "A", "dawid_skene")
    assert answers[2].label_ids == (2, 3) and answers[2].posterior > 0.5
    assert (answers[3].label, answers[3].side) == (answers[6].label, answers[6].side) == ("tie", "tie")
    assert (answers[4].label, answers[4].method, answers[4].label_ids) == ("B>A", "single", (7,))
    assert 5 not in answers
    assert five_point_for("B", labels[:2]) == "B>A"  # nobody said B: the weak label
    assert five_point_for("A", [_label(1, "x", "A")]) == "A>B"  # a side shorthand reads as weak


def test_three_good_annotators_agree_with_the_majority_almost_everywhere() -> None:
    """Three reliable annotators (as in PandaLM): Dawid-Skene rarely departs from the majority,
    and where it does (it learns their systematic confusions) it is right at least as often."""
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 3, size=400)
    rows = []
    for annotator in ("a1", "a2", "a3"):
        right = rng.uniform(size=400) < 0.9
        given = np.where(right, truth, (truth + 1) % 3)
        rows += [_label(i, annotator, SIDES[g]) for i, g in enumerate(given)]
    answers = aggregate(rows)
    mv = majority_vote(vote_table(rows)).labels.dropna()
    ds = pd.Series({i: answers[i].side for i in mv.index})
    assert (ds == mv).mean() > 0.97
    truth_side = pd.Series([SIDES[t] for t in truth])[mv.index]
    assert (ds == truth_side).mean() >= (mv == truth_side).mean()


def test_reviewers_do_not_outvote_two_gold_labels() -> None:
    """Only gold votes on a gold pair, also when two gold annotators make it a Dawid--Skene
    pair: three reviewers DS trusts (they agree everywhere else) used to flip it to their side."""
    labels = [
        _label(p, reviewer, "A>B" if p % 2 else "B>A")
        for p in range(40)
        for reviewer in ("r1", "r2", "r3")
    ]
    labels += [_label(100, "g1", "A>B", source="gold"), _label(100, "g2", "A>>B", source="gold")]
    labels += [_label(100, reviewer, "B>A") for reviewer in ("r1", "r2", "r3")]
    answer = aggregate(labels)[100]
    assert (answer.side, answer.label, answer.sources) == ("A", "A>>B", ("gold", "gold"))
    # The reviewers' other pairs are theirs as before.
    assert aggregate(labels)[1].side == "A" and aggregate(labels)[2].side == "B"
