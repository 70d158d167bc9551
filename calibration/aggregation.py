"""Aggregate several human labels per item into one label with a posterior, and rate reviewers.

Input is a long table (crowd-kit layout): a DataFrame with columns ``item``, ``annotator``,
``label``, one row per rating. Output is an :class:`AggregationResult`: the label per item
(``None`` where the method abstains) and a posterior (items x categories, rows sum to 1).

Dawid--Skene is implemented here (a short EM) instead of taken from crowd-kit: crowd-kit 1.4.2
requires ``transformers`` and ``nltk`` (importing ``crowdkit.aggregation`` loads nltk), far too
heavy for a core dependency of a service that needs forty lines of numpy; and its EM has no
pseudo-count, so on small data its posteriors come out as 0 or 1 (see ``smoothing`` below). On
PandaLM both give the same label on all 999 items.

Example
-------
>>> import pandas as pd
>>> votes = {1: "AAB", 2: "BBA", 3: "AAB", 4: "BBA", 5: "AAA", 6: "BBB", 7: "ABA", 8: "BAB", 9: "AB-"}
>>> long = pd.DataFrame([{"item": i, "annotator": w, "label": {"-": "tie"}.get(v, v)}
...                      for i, s in votes.items() for w, v in zip("xyz", s)])
>>> majority_vote(long).labels.to_dict()
{1: 'A', 2: 'B', 3: 'A', 4: 'B', 5: 'A', 6: 'B', 7: 'A', 8: 'B', 9: None}
>>> majority_vote(long, on_tie="label").labels[9]
'tie'

z contradicts x and y on items 1-4, so Dawid--Skene learns that z's vote is inverted and, where
x and y split (items 7, 8), sides with whichever of them z voted against:

>>> ds = dawid_skene(long[long["item"] != 9])
>>> ds.labels[[7, 8]].to_dict()
{7: 'B', 8: 'A'}
>>> reviewer_quality(long, ds.labels)[["annotator", "n", "accuracy"]].round(2)
  annotator  n  accuracy
0         x  8      0.75
1         y  8      1.00
2         z  8      0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from calibration.agreement import checked_long_table, cohen_kappa, confusion, label_categories

__all__ = ["AggregationResult", "dawid_skene", "majority_vote", "reviewer_confusion", "reviewer_quality"]


@dataclass
class AggregationResult:
    """Per-item label (``None`` = abstained) and posterior over ``categories``.

    For Dawid--Skene, ``confusions`` holds each annotator's estimated confusion matrix
    (annotator -> DataFrame, rows = true label, columns = given label) and ``priors`` the class
    prevalence; for majority vote they are empty.
    """

    labels: pd.Series
    posterior: pd.DataFrame
    categories: list[Any]
    confusions: dict[Any, pd.DataFrame] = field(default_factory=dict)
    priors: pd.Series | None = None
    n_iter: int = 0
    converged: bool = True


def _encode(long_table: pd.DataFrame, categories: Sequence[Any] | None) -> tuple[pd.DataFrame, list[Any]]:
    table = checked_long_table(long_table)
    cats = label_categories(table["label"].tolist(), categories)
    unknown = set(table["label"]) - set(cats)
    if unknown:
        raise ValueError(f"labels {sorted(map(str, unknown))} not in categories {cats}")
    return table, cats


def majority_vote(
    long_table: pd.DataFrame,
    on_tie: Literal["abstain", "label"] = "abstain",
    tie_label: Any = "tie",
    categories: Sequence[Any] | None = None,
) -> AggregationResult:
    """Most frequent label per item; the posterior is the vote share.

    A split vote (two or more labels share the top count, e.g. A/B/tie from three people) is not
    broken at random: a coin flip would hide a genuinely ambiguous pair inside the gold set.
    ``on_tie="abstain"`` returns ``None`` so the item can go to adjudication;
    ``on_tie="label"`` returns ``tie_label`` -- for preferences, annotators split between A and B
    is evidence that neither response is clearly better.
    """
    if on_tie not in ("abstain", "label"):
        raise ValueError("on_tie must be 'abstain' or 'label'")
    table, cats = _encode(long_table, categories)
    counts = pd.crosstab(table["item"], table["label"]).reindex(columns=cats, fill_value=0).astype(float)
    if counts.empty:
        return AggregationResult(pd.Series(dtype=object), counts, cats)
    posterior = counts.div(counts.sum(axis=1), axis=0)
    top = counts.to_numpy().max(axis=1, keepdims=True)
    n_top = (counts.to_numpy() == top).sum(axis=1)
    winners = counts.idxmax(axis=1).astype(object)
    split = None if on_tie == "abstain" else tie_label
    labels = winners.where(n_top == 1, split)
    return AggregationResult(labels.rename("label"), posterior, cats)


def dawid_skene(
    long_table: pd.DataFrame,
    categories: Sequence[Any] | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
) -> AggregationResult:
    """Dawid--Skene (1979): EM over per-annotator confusion matrices and class priors.

    Initialised from majority-vote shares (so EM starts at the obvious answer, and converges to
    the nearby optimum rather than a label-permuted one). ``smoothing`` is a pseudo-count added to
    every confusion cell, so an annotator never seen giving some label on some class does not get
    probability 0 for it -- with 3 annotators and rare ties that would make posteriors 0/1.
    Labels are the posterior argmax (first category wins an exact tie, which only happens when an
    item has no informative rating).
    """
    table, cats = _encode(long_table, categories)
    if table.empty:
        return AggregationResult(pd.Series(dtype=object), pd.DataFrame(columns=cats), cats)
    items, item_idx = np.unique(table["item"].to_numpy(), return_inverse=True)
    workers, worker_idx = np.unique(table["annotator"].astype(str).to_numpy(), return_inverse=True)
    worker_names: dict[int, Any] = {}
    for name, w in zip(table["annotator"], worker_idx, strict=True):
        worker_names.setdefault(int(w), name)
    label_idx = np.array([cats.index(v) for v in table["label"]])
    n_items, n_workers, k = len(items), len(workers), len(cats)

    # E-step seed: majority-vote shares.
    post = np.zeros((n_items, k))
    np.add.at(post, (item_idx, label_idx), 1.0)
    post /= post.sum(axis=1, keepdims=True)

    log_lik_prev = -np.inf
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 -- n_iter is reported after the loop
        # M-step: priors and confusion[w, true, given] from soft counts.
        priors = (post.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        conf = np.full((n_workers, k, k), smoothing)
        # numpy's stubs reject a slice inside ufunc.at's index tuple; numpy accepts it
        np.add.at(conf, (worker_idx, slice(None), label_idx), post[item_idx])  # type: ignore[arg-type]  # numpy's stubs reject a tuple index with a slice
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step: log posterior of each true class given all ratings of the item.
        log_post = np.tile(np.log(priors), (n_items, 1))
        np.add.at(log_post, item_idx, np.log(conf[worker_idx, :, label_idx]))
        norm = np.logaddexp.reduce(log_post, axis=1, keepdims=True)
        post = np.exp(log_post - norm)
        log_lik = float(norm.sum())
        if abs(log_lik - log_lik_prev) < tol * max(1.0, abs(log_lik)):
            converged = True
            break
        log_lik_prev = log_lik

    posterior = pd.DataFrame(post, index=pd.Index(items, name="item"), columns=cats)
    labels = pd.Series(
        [cats[i] for i in post.argmax(axis=1)], index=posterior.index, name="label", dtype=object
    )
    confusions = {
        worker_names[w]: pd.DataFrame(
            conf[w], index=pd.Index(cats, name="true"), columns=pd.Index(cats, name="given")
        )
        for w in range(n_workers)
    }
    return AggregationResult(
        labels=labels,
        posterior=posterior,
        categories=cats,
        confusions=confusions,
        priors=pd.Series(priors, index=cats, name="prior"),
        n_iter=n_iter,
        converged=converged,
    )


def _reference(long_table: pd.DataFrame, reference: pd.Series | None, annotator: Any) -> pd.Series:
    if reference is not None:
        return reference
    # Leave-one-out: the majority of the OTHER annotators. Comparing an annotator with an aggregate
    # that contains their own vote inflates their score (with 3 raters they are a third of it).
    others = long_table[long_table["annotator"] != annotator]
    return majority_vote(others).labels


def reviewer_quality(long_table: pd.DataFrame, reference: pd.Series | None = None) -> pd.DataFrame:
    """Per-annotator agreement with a reference label per item, one row per annotator.

    ``reference`` maps item -> label (e.g. ``dawid_skene(...).labels`` or gold labels). When it
    is ``None`` each annotator is compared with the majority of the others (leave-one-out), and
    items where the others split are skipped. Columns: annotator, n (items compared), accuracy,
    kappa (Cohen's, vs the reference), tie_rate (share of this annotator's labels that are "tie").
    """
    table = checked_long_table(long_table)
    rows = []
    for annotator, g in table.groupby("annotator", sort=True):
        ref = _reference(table, reference, annotator)
        given = g.set_index("item")["label"]
        truth = given.index.map(ref)
        keep = truth.notna()
        given, truth = given[keep], truth[keep]
        rows.append(
            {
                "annotator": annotator,
                "n": len(given),
                "accuracy": float((given.to_numpy() == truth.to_numpy()).mean())
                if len(given)
                else float("nan"),
                "kappa": cohen_kappa(truth, given),
                "tie_rate": float((g["label"] == "tie").mean()),
            }
        )
    return pd.DataFrame(rows, columns=["annotator", "n", "accuracy", "kappa", "tie_rate"])


def reviewer_confusion(
    long_table: pd.DataFrame,
    annotator: Any,
    reference: pd.Series | None = None,
    labels: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Confusion of one annotator against the reference: rows = reference, columns = annotator."""
    table = checked_long_table(long_table)
    g = table[table["annotator"] == annotator]
    ref = _reference(table, reference, annotator)
    truth = g["item"].map(ref)
    cats = label_categories(table["label"].tolist(), labels)
    matrix = confusion(truth.to_numpy(), g["label"].to_numpy(), labels=cats)
    return pd.DataFrame(
        matrix, index=pd.Index(cats, name="reference"), columns=pd.Index(cats, name=str(annotator))
    )
