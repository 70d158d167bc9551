"""Agreement between annotators, and between LLM judges and humans.

Two input shapes, both plain data:

* arrays of labels (``cohen_kappa``, ``confusion``), scikit-learn style;
* a *long table*: a DataFrame with one row per (item, annotator, label) -- the crowd-kit
  layout -- for the multi-rater statistics (``fleiss_kappa``, ``krippendorff_alpha``,
  ``pairwise_cohen_kappa``). Items may have different numbers of ratings; rows whose label is
  missing are dropped.

Labels are three-way sides ("A", "tie", "B"); the five-point verdicts of
:mod:`judge.verdicts` ("A>>B", ..., "B>>A") are also accepted and reduced to their side
(:func:`judge.verdicts.to_side`) where a function compares with human gold labels.

Example
-------
>>> import pandas as pd
>>> long = pd.DataFrame({
...     "item":      [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4],
...     "annotator": ["x", "y", "z"] * 4,
...     "label":     ["A", "A", "A", "B", "B", "A", "tie", "B", "B", "A", "A", "B"],
... })
>>> round(fleiss_kappa(long), 3)
0.122
>>> round(krippendorff_alpha(long), 3)
0.195
>>> judgments = pd.DataFrame({
...     "pair_id": [1, 1, 2, 2],
...     "judge": ["j"] * 4,
...     "order": ["ab", "ba"] * 2,
...     "verdict": ["A>B", "A>>B", "B>A", "A>B"],
... })
>>> judge_vs_human(judgments, {1: "A", 2: "B"})[["judge", "accuracy", "swap_consistency"]]
  judge  accuracy  swap_consistency
0     j      0.75               0.5
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any, Literal

import krippendorff as _krippendorff
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from judge.verdicts import SIDES, VERDICTS, to_side

__all__ = [
    "cohen_kappa",
    "confusion",
    "fleiss_kappa",
    "judge_vs_human",
    "krippendorff_alpha",
    "krippendorff_alpha_upper",
    "pairwise_agreement",
    "pairwise_cohen_kappa",
]

# krippendorff.alpha's levels of measurement.
KrippendorffLevel = Literal["nominal", "ordinal", "interval", "ratio"]

LONG_COLUMNS = ("item", "annotator", "label")


def label_categories(values: Sequence[Any], categories: Sequence[Any] | None) -> list[Any]:
    """Category order. Matters for ordinal alpha and for readable matrices."""
    if categories is not None:
        return list(categories)
    present = set(values)
    if present <= set(SIDES):
        return [c for c in SIDES if c in present]
    if present <= set(VERDICTS):
        return [c for c in VERDICTS if c in present]
    return sorted(present, key=str)


def checked_long_table(long_table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in LONG_COLUMNS if c not in long_table.columns]
    if missing:
        raise ValueError(f"long table needs columns {LONG_COLUMNS}, missing {missing}")
    table = long_table.loc[:, list(LONG_COLUMNS)]
    return table[table["label"].notna()]


def _count_matrix(
    long_table: pd.DataFrame, categories: Sequence[Any] | None
) -> tuple[npt.NDArray[Any], list[Any]]:
    """Items x categories matrix of how many annotators gave each label."""
    table = checked_long_table(long_table)
    cats = label_categories(table["label"].tolist(), categories)
    if table.empty:
        return np.zeros((0, len(cats))), cats
    counts = pd.crosstab(table["item"], table["label"]).reindex(columns=cats, fill_value=0)
    return counts.to_numpy(dtype=float), cats


def cohen_kappa(
    y1: npt.ArrayLike, y2: npt.ArrayLike, labels: Sequence[Any] | None = None, weights: str | None = None
) -> float:
    """Cohen's kappa between two raters (sklearn), skipping positions where either is missing.

    Returns ``nan`` when there is nothing to compare or when kappa is undefined (both raters
    used a single identical label, so chance agreement is 1).
    """
    a = pd.Series(np.asarray(y1, dtype=object).ravel())
    b = pd.Series(np.asarray(y2, dtype=object).ravel())
    if len(a) != len(b):
        raise ValueError(f"y1 and y2 differ in length: {len(a)} != {len(b)}")
    keep = a.notna() & b.notna()
    a, b = a[keep].astype(str), b[keep].astype(str)
    if a.empty or len(set(a) | set(b)) < 2:
        return float("nan")  # one label overall: chance agreement is 1, kappa undefined
    with warnings.catch_warnings():
        # sklearn warns and returns nan for other degenerate cases; nan is the answer we want.
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(
            a, b, labels=None if labels is None else [str(x) for x in labels], weights=weights
        )
    return float(value)


def fleiss_kappa(long_table: pd.DataFrame, categories: Sequence[Any] | None = None) -> float:
    """Fleiss' kappa for any number of raters per item (items with < 2 ratings are skipped).

    With the same number of ratings on every item this is exactly Fleiss (1971), and equals
    ``statsmodels.stats.inter_rater.fleiss_kappa``. With varying numbers, per-item agreement is
    averaged over items and category shares are pooled over all ratings (the usual extension).
    """
    counts, _ = _count_matrix(long_table, categories)
    n_i = counts.sum(axis=1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if counts.shape[0] == 0:
        return float("nan")
    p_item = ((counts * (counts - 1)).sum(axis=1) / (n_i * (n_i - 1))).mean()
    p_cat = counts.sum(axis=0) / n_i.sum()
    p_chance = float((p_cat**2).sum())
    if np.isclose(p_chance, 1.0):
        return float("nan")  # everyone used one label: agreement beyond chance is undefined
    return float((p_item - p_chance) / (1 - p_chance))


def krippendorff_alpha(
    long_table: pd.DataFrame, level: KrippendorffLevel = "nominal", categories: Sequence[Any] | None = None
) -> float:
    """Krippendorff's alpha (``krippendorff`` package) from a long table.

    ``level`` is "nominal" or "ordinal" ("interval"/"ratio" treat category positions as numbers).
    For ordinal alpha the category order matters: sides default to A < tie < B and five-point
    verdicts to A>>B < ... < B>>A, which puts "tie" between the two preferences.
    Returns ``nan`` when fewer than two distinct labels or no item with two ratings exist.
    """
    counts, cats = _count_matrix(long_table, categories)
    if counts.shape[0] == 0 or (counts.sum(axis=0) > 0).sum() < 2 or (counts.sum(axis=1) >= 2).sum() == 0:
        return float("nan")
    return float(
        _krippendorff.alpha(
            value_counts=counts, value_domain=list(range(len(cats))), level_of_measurement=level
        )
    )


def krippendorff_alpha_upper(
    long_table: pd.DataFrame,
    level: KrippendorffLevel = "nominal",
    categories: Sequence[Any] | None = None,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> float:
    """One-sided ``confidence`` upper bound on Krippendorff's alpha: the percentile bootstrap
    over items (items drawn with replacement, each keeping all its ratings).

    Resamples where alpha is undefined (one label used throughout) are left out; ``nan`` when
    alpha itself is, or when no resample defines it. The items are the unit of sampling
    because they are what a batch draws from a stream of pairs (Hayes & Krippendorff 2007
    bootstrap the pairable values; items are the cruder, more conservative unit).

    >>> import pandas as pd
    >>> agree = pd.DataFrame({"item": [i for i in range(30) for _ in "xy"], "annotator": list("xy") * 30,
    ...                       "label": [["A", "B", "tie"][i % 3] for i in range(30) for _ in "xy"]})
    >>> krippendorff_alpha_upper(agree)  # perfect agreement: every resample says 1
    1.0
    >>> noise = agree.assign(label=np.random.default_rng(1).choice(["A", "B", "tie"], size=60))
    >>> round(krippendorff_alpha(noise), 2), round(krippendorff_alpha_upper(noise), 2)  # random labels
    (0.15, 0.35)
    """
    counts, cats = _count_matrix(long_table, categories)
    counts = counts[counts.sum(axis=1) >= 2]
    if counts.shape[0] == 0 or (counts.sum(axis=0) > 0).sum() < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    domain = list(range(len(cats)))
    values = []
    for _ in range(n_boot):
        sample = counts[rng.integers(0, counts.shape[0], counts.shape[0])]
        if (sample.sum(axis=0) > 0).sum() < 2:
            continue  # one label throughout: alpha undefined for this draw
        values.append(
            _krippendorff.alpha(value_counts=sample, value_domain=domain, level_of_measurement=level)
        )
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.quantile(finite, confidence)) if finite.size else float("nan")


def pairwise_agreement(long_table: pd.DataFrame) -> tuple[float, int]:
    """Raw agreement between annotators: the share of (item, two of its annotators)
    comparisons where both gave the same label, and the number of comparisons (``nan``, 0
    without an item rated twice). What one human's label can be expected to agree with
    another's -- the ceiling for any target of agreement with a single human label.

    >>> long = pd.DataFrame({"item": [1, 1, 1, 2, 2], "annotator": ["x", "y", "z", "x", "y"],
    ...                      "label": ["A", "A", "B", "B", "B"]})
    >>> pairwise_agreement(long)  # item 1: 1 of 3 comparisons agree, item 2: 1 of 1
    (0.5, 4)
    """
    counts, _ = _count_matrix(long_table, None)
    n_i = counts.sum(axis=1)
    pairs = (n_i * (n_i - 1) / 2).sum()
    if pairs == 0:
        return float("nan"), 0
    agreeing = (counts * (counts - 1) / 2).sum()
    return float(agreeing / pairs), int(pairs)


def pairwise_cohen_kappa(long_table: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa and raw agreement for every pair of annotators on the items both labelled."""
    table = checked_long_table(long_table)
    wide = table.pivot_table(index="item", columns="annotator", values="label", aggfunc="first")
    rows = []
    for a, b in combinations(sorted(wide.columns, key=str), 2):
        both = wide[[a, b]].dropna()
        rows.append(
            {
                "annotator_1": a,
                "annotator_2": b,
                "n": len(both),
                "agreement": float((both[a] == both[b]).mean()) if len(both) else float("nan"),
                "kappa": cohen_kappa(both[a], both[b]),
            }
        )
    return pd.DataFrame(rows, columns=["annotator_1", "annotator_2", "n", "agreement", "kappa"])


def confusion(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: Sequence[Any] = SIDES
) -> npt.NDArray[Any]:
    """Confusion counts: rows = ``y_true`` label, columns = ``y_pred`` label, in ``labels`` order.

    Positions whose true or predicted value is not in ``labels`` are left out (add "invalid" to
    ``labels`` to see unreadable judge answers as their own column).
    """
    t = np.asarray(y_true, dtype=object).ravel()
    p = np.asarray(y_pred, dtype=object).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} != {p.size}")
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for a, b in zip(t, p, strict=True):
        if a in index and b in index:
            matrix[index[a], index[b]] += 1
    return matrix


_JUDGE_COLUMNS = [
    "judge",
    "n_pairs",
    "n_verdicts",
    "accuracy",
    "swap_consistency",
    "consistent_accuracy",
    "kappa",
    "invalid_rate",
]


def judge_vs_human(judgments: pd.DataFrame, gold: Mapping[Any, Any] | pd.Series) -> pd.DataFrame:
    """Per-judge agreement with human gold labels, one row per judge.

    ``judgments`` has columns pair_id, judge, order ("ab"/"ba"), verdict (five-point or side, in
    terms of the ORIGINAL A/B, or "invalid"); ``gold`` maps pair_id to "A"/"tie"/"B". Only pairs
    with a gold label count.

    Columns:

    * ``n_pairs`` / ``n_verdicts``: gold pairs the judge saw / verdicts it gave on them;
    * ``accuracy``: share of verdicts (both orders) whose side equals gold. An invalid verdict
      counts as wrong, because the pipeline could not use it either;
    * ``swap_consistency``: share of pairs judged in both orders whose two sides agree (both
      valid and no :func:`~judge.verdicts.order_flip`; a pair with an invalid order counts as
      seen but not consistent). ``nan`` if the judge never saw a pair in both orders;
    * ``consistent_accuracy``: accuracy of the agreed side on the swap-consistent pairs -- the
      precision of "accept only when both orders agree";
    * ``kappa``: Cohen's kappa between valid verdict sides and gold (agreement beyond chance, which
      a judge that always says "B" on a B-heavy set does not earn);
    * ``invalid_rate``: share of verdicts that were "invalid".
    """
    need = {"pair_id", "judge", "order", "verdict"}
    if not need <= set(judgments.columns):
        raise ValueError(
            f"judgments needs columns {sorted(need)}, missing {sorted(need - set(judgments.columns))}"
        )
    gold_side = {k: to_side(v) for k, v in dict(gold).items()}
    gold_side = {k: v for k, v in gold_side.items() if v is not None}
    df = judgments.loc[judgments["pair_id"].isin(list(gold_side)), ["pair_id", "judge", "order", "verdict"]]
    if df.duplicated(["pair_id", "judge", "order"]).any():
        # Two verdicts for the same (pair, judge, order) make swap consistency ambiguous.
        raise ValueError("judgments has more than one verdict for some (pair_id, judge, order)")
    df = df.assign(
        side=[to_side(v) for v in df["verdict"]],
        gold=df["pair_id"].map(gold_side),
    )
    rows = []
    for judge, g in df.groupby("judge", sort=True):
        valid = g[g["side"].notna()]
        wide = g.pivot(index="pair_id", columns="order", values="side")
        seen = g.pivot(index="pair_id", columns="order", values="verdict")
        if {"ab", "ba"} <= set(wide.columns):
            # Denominator: pairs with a verdict in both orders (an invalid one counts as seen
            # and inconsistent); pairs judged in one order only say nothing about position bias.
            both = wide.loc[seen[["ab", "ba"]].notna().all(axis=1), ["ab", "ba"]]
            consistent = both["ab"].notna() & (both["ab"] == both["ba"])
            swap = float(consistent.mean()) if len(both) else float("nan")
            agreed = both.loc[consistent, "ab"]
            cons_acc = float((agreed == agreed.index.map(gold_side)).mean()) if len(agreed) else float("nan")
        else:
            swap = cons_acc = float("nan")
        rows.append(
            {
                "judge": judge,
                "n_pairs": int(g["pair_id"].nunique()),
                "n_verdicts": len(g),
                "accuracy": float((g["side"] == g["gold"]).mean()),
                "swap_consistency": swap,
                "consistent_accuracy": cons_acc,
                "kappa": cohen_kappa(valid["side"], valid["gold"]),
                "invalid_rate": float(g["side"].isna().mean()),
            }
        )
    return pd.DataFrame(rows, columns=_JUDGE_COLUMNS)
