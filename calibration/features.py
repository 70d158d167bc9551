"""Per-pair features from a long table of judge verdicts, for the calibrator.

Input is a long table, one row per (pair, judge, display order), columns
:data:`JUDGMENT_COLUMNS`::

    pair_id | judge | order ("ab"/"ba") | verdict | confidence (float or NaN) | failed (bool)

``verdict`` is a five-point verdict ("A>>B", "A>B", "tie", "B>A", "B>>A"), a three-way side
("A", "B", "tie" -- recorded-judgment files use these; mapped with
:func:`judge.verdicts.to_five_point`) or "invalid", always about the ORIGINAL response A/B.
``confidence`` and ``failed`` are optional. :func:`judgments_table` builds the table from rows
in hand (the service's judgments, from memory or from the database).

Output is a :class:`FeatureSet`: one row per pair, columns fixed by the judge list. Pass the
``judges`` of a fitted FeatureSet back in at predict time so the same columns come out; judges
missing for a pair (or absent from the table altogether) give zeros plus "present" indicators,
so one-order-only and partial panels are handled without imputation.

Features are either *signed* (flip sign when A and B are swapped: strengths, signed
confidences, net votes) or *unsigned* (invariant: counts, consistency, agreement). The mask
``FeatureSet.signed`` lets the calibrator exploit that A/B symmetry (which response is called
"A" is arbitrary, so nothing should prefer A for its own sake).

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({
...     "pair_id": [1, 1, 1, 2],
...     "judge": ["g4", "g4", "g35", "g4"],
...     "order": ["ab", "ba", "ab", "ab"],
...     "verdict": ["A>B", "A>>B", "B", "invalid"],
... })
>>> fs = build_features(df)
>>> fs.judges
['g35', 'g4']
>>> row = dict(zip(fs.feature_names, fs.X[0].tolist()))
>>> row["g4|ab|strength"], row["g4|ba|strength"], row["g35|ba|present"]
(1.0, 2.0, 0.0)
>>> row["g4|swap_consistent"], row["panel|n_valid"], row["panel|net_votes"]
(1.0, 3.0, 1.0)
>>> build_features(df[df.pair_id == 2], judges=fs.judges).X.shape == (1, fs.X.shape[1])
True
>>> order_sensitive(df).tolist()
[False, False]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judge.verdicts import INVALID, ORDERS, STRENGTH, to_five_point

__all__ = [
    "JUDGMENT_COLUMNS",
    "FeatureSet",
    "build_features",
    "judgments_table",
    "normalize_judgments",
    "order_sensitive",
    "order_sensitive_flags",
    "judge_flip_flags",
    "panel_order_flags",
    "judges_in",
    "calls_per_pair",
]

JUDGMENT_COLUMNS: list[str] = ["pair_id", "judge", "order", "verdict", "confidence", "failed"]


def judgments_table(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    """The long table from rows of (pair_id, judge, order, verdict, confidence, failed)."""
    return pd.DataFrame(list(rows), columns=JUDGMENT_COLUMNS)


@dataclass
class FeatureSet:
    """Feature matrix for pairs; ``X[i]`` describes ``pair_ids[i]``.

    ``signed[k]`` is True when feature k changes sign under swapping A and B.
    """

    pair_ids: NDArray[Any]
    X: NDArray[Any]
    feature_names: list[str]
    judges: list[str]
    signed: NDArray[Any] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def frame(self) -> pd.DataFrame:
        """The features as a DataFrame indexed by pair_id (for inspection)."""
        return pd.DataFrame(self.X, index=pd.Index(self.pair_ids, name="pair_id"), columns=self.feature_names)


@dataclass
class _Columns:
    """A judgments table as typed column arrays, one row per (pair, judge, order)."""

    pair_id: NDArray[Any]
    judge: NDArray[Any]
    order: NDArray[Any]
    verdict: NDArray[Any]
    confidence: NDArray[Any]
    failed: NDArray[Any]
    strength: NDArray[Any]  # NaN for invalid
    rows: NDArray[Any]  # positions of these rows in the input table

    @property
    def valid(self) -> NDArray[Any]:
        return np.asarray(~np.isnan(self.strength))


def _columns(judgments: pd.DataFrame) -> _Columns:
    """The normalisation :func:`normalize_judgments` documents, on numpy arrays.

    Plain arrays rather than DataFrame operations: the worker builds features for one pair at
    a time, where pandas' per-operation overhead was most of the cost.
    """
    required = {"pair_id", "judge", "order", "verdict"}
    missing = required - set(judgments.columns)
    if missing:
        raise ValueError(f"judgments lacks columns {sorted(missing)}")
    n = len(judgments)
    order = judgments["order"].to_numpy(dtype=object)
    bad_order = ~np.isin(order, ORDERS)
    if bad_order.any():
        raise ValueError(
            f"order must be one of {ORDERS}; got {sorted(set(order[bad_order].tolist()), key=str)}"
        )
    failed = (
        judgments["failed"].fillna(False).to_numpy(dtype=bool)
        if "failed" in judgments
        else np.zeros(n, dtype=bool)
    )
    confidence = (
        pd.to_numeric(judgments["confidence"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if "confidence" in judgments
        else np.full(n, np.nan)
    )
    # Map each distinct spelling once (tables can have millions of rows, few distinct verdicts).
    codes, uniques = pd.factorize(judgments["verdict"].to_numpy(dtype=object), use_na_sentinel=True)
    lookup = np.array([to_five_point(u) for u in uniques] + [INVALID], dtype=object)
    verdict = np.where(failed, INVALID, lookup[codes])
    strength_of = np.array([float(STRENGTH.get(v, np.nan)) for v in lookup] + [np.nan])
    strength = np.where(failed, np.nan, strength_of[codes])
    pair_id = judgments["pair_id"].to_numpy()
    judge = judgments["judge"].to_numpy(dtype=object)
    # Duplicate (pair, judge, order) rows keep the last one: a retry supersedes the failed attempt.
    pair_codes, _ = pd.factorize(pair_id)
    judge_codes, judge_uniques = pd.factorize(judge)
    key = (pair_codes.astype(np.int64) * max(len(judge_uniques), 1) + judge_codes) * 2 + (order == ORDERS[1])
    _, last_from_end = np.unique(key[::-1], return_index=True)
    keep = np.sort(n - 1 - last_from_end)
    return _Columns(
        pair_id=pair_id[keep],
        judge=judge[keep],
        order=order[keep],
        verdict=verdict[keep],
        confidence=confidence[keep],
        failed=failed[keep],
        strength=strength[keep],
        rows=keep,
    )


def normalize_judgments(judgments: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with all columns present and typed: verdict five-point, strength, confidence, failed.

    Failed calls count as failed whatever their verdict says; a verdict of a failed call is
    treated as missing. Duplicate (pair, judge, order) rows keep the last one (a retry
    supersedes the failed attempt).
    """
    cols = _columns(judgments)
    df = pd.DataFrame(
        {
            "pair_id": cols.pair_id,
            "judge": cols.judge,
            "order": cols.order,
            "verdict": cols.verdict,
            "confidence": cols.confidence,
            "failed": cols.failed,
        }
    )
    for c in judgments.columns:  # other columns ride along, aligned on the kept rows
        if c not in df:
            df[c] = judgments[c].to_numpy()[cols.rows]
    df["strength"] = cols.strength
    df["valid"] = cols.valid
    return df


def judges_in(judgments: pd.DataFrame) -> list[str]:
    """Sorted judge names in a table; the default panel when none is given."""
    return sorted(str(j) for j in pd.unique(judgments["judge"]))


def build_features(judgments: pd.DataFrame, judges: Sequence[str] | None = None) -> FeatureSet:
    """One feature row per pair from a long judgments table.

    Per judge j and order o: ``j|o|strength`` (signed, -2..2, 0 if missing), ``j|o|present``,
    ``j|o|sconf`` (signed confidence, 0 if none) and ``j|o|has_conf``. Per judge:
    ``j|mean_strength`` (signed), ``j|swap_consistent`` (both orders valid, same side),
    ``j|order_sensitive`` (:func:`judge.verdicts.order_flip`), ``j|n_invalid``, ``j|n_failed``.
    Panel: signed net strength / net votes / mean confidence-weighted vote, and unsigned
    counts (valid, invalid, failed, ties, judges present, consistent, order-sensitive),
    the absolute net vote and the share of valid verdicts on the majority side.

    Pairs appear in order of first appearance in the table. Judges not in ``judges`` are ignored.
    """
    cols = _columns(judgments)
    judges = sorted({str(j) for j in cols.judge}) if judges is None else [str(j) for j in judges]
    pair_ids, grid = _verdict_grid(cols, judges)
    columns = _judge_columns(grid, judges) + _panel_columns(grid)
    return FeatureSet(
        pair_ids=np.asarray(pair_ids),
        X=np.column_stack([np.asarray(values, dtype=float) for _, values, _ in columns]),
        feature_names=[name for name, _, _ in columns],
        judges=list(judges),
        signed=np.asarray([is_signed for _, _, is_signed in columns], dtype=bool),
    )


@dataclass
class _VerdictGrid:
    """The verdicts of a panel as (pair, judge, order) arrays; zeros where a verdict is missing.

    ``strength``: signed, -2..2; ``present``: a valid verdict; ``sconf``: the judge's
    probability for its verdict, pointing where the verdict points; ``has_conf``; ``invalid``
    (not counting failed calls); ``failed``. Per (pair, judge): ``consistent`` / ``sensitive``:
    both orders valid, same / different side; ``n_present``: valid orders. Per pair:
    ``mean_conf``: mean confidence of the valid verdicts that carry one, ties included.
    """

    strength: NDArray[Any]
    present: NDArray[Any]
    sconf: NDArray[Any]
    has_conf: NDArray[Any]
    invalid: NDArray[Any]
    failed: NDArray[Any]
    consistent: NDArray[Any]
    sensitive: NDArray[Any]
    n_present: NDArray[Any]
    mean_conf: NDArray[Any]

    @property
    def side(self) -> NDArray[Any]:
        """+1 (A), -1 (B), 0 for a tie and for a missing verdict (``present`` tells them apart)."""
        return np.asarray(np.sign(self.strength))


# A feature: its name, one value per pair, and whether it changes sign when A and B are swapped.
_Column = tuple[str, NDArray[Any], bool]


def _verdict_grid(cols: _Columns, judges: list[str]) -> tuple[pd.Index, _VerdictGrid]:
    """Pair ids in order of first appearance, and the verdicts of ``judges`` on them."""
    pos, pair_ids = pd.factorize(cols.pair_id)  # pairs in order of first appearance
    n = len(pair_ids)
    judge_index = {j: k for k, j in enumerate(judges)}
    jpos = np.fromiter(
        (judge_index.get(str(j), -1) for j in cols.judge), dtype=np.int64, count=len(cols.judge)
    )
    keep = jpos >= 0
    pos, jpos = pos[keep], jpos[keep]
    opos = (cols.order[keep] == ORDERS[1]).astype(np.int64)

    nj = len(judges)
    strength = np.zeros((n, nj, 2))
    present = np.zeros((n, nj, 2))
    sconf = np.zeros((n, nj, 2))
    has_conf = np.zeros((n, nj, 2))
    invalid = np.zeros((n, nj, 2))
    failed = np.zeros((n, nj, 2))
    valid = cols.valid[keep]
    s = np.nan_to_num(cols.strength[keep])
    c = cols.confidence[keep]
    row_failed = cols.failed[keep]
    cvalid = valid & np.isfinite(c)
    strength[pos, jpos, opos] = s
    present[pos, jpos, opos] = valid
    # Signed confidence: a judge's probability for its verdict, pointing where the verdict points.
    # A tie carries no direction, so its confidence only enters the unsigned panel mean below.
    sconf[pos, jpos, opos] = np.where(cvalid, np.sign(s) * np.nan_to_num(c), 0.0)
    has_conf[pos, jpos, opos] = cvalid
    failed[pos, jpos, opos] = row_failed
    invalid[pos, jpos, opos] = ~valid & ~row_failed
    # Tie confidences were zeroed in sconf; recover the raw mean from the table for the panel.
    conf_sum = np.bincount(pos, weights=np.where(cvalid, np.nan_to_num(c), 0.0), minlength=n)
    conf_count = np.bincount(pos, weights=cvalid.astype(float), minlength=n)

    side = np.sign(strength)
    both = present.all(axis=2)
    grid = _VerdictGrid(
        strength=strength,
        present=present,
        sconf=sconf,
        has_conf=has_conf,
        invalid=invalid,
        failed=failed,
        # judge.verdicts.order_flip, vectorised (tests/test_definitions.py checks they agree).
        consistent=both & (side[..., 0] == side[..., 1]),
        sensitive=both & (side[..., 0] != side[..., 1]),
        n_present=present.sum(axis=2),
        mean_conf=np.divide(conf_sum, conf_count, out=np.zeros(n), where=conf_count > 0),
    )
    return pair_ids, grid


def _judge_columns(grid: _VerdictGrid, judges: list[str]) -> list[_Column]:
    """Per judge: its verdict in each order, then its summaries over both orders."""
    n_present = grid.n_present
    mean_strength = np.divide(
        grid.strength.sum(axis=2), n_present, out=np.zeros(n_present.shape), where=n_present > 0
    )
    columns: list[_Column] = []
    for k, j in enumerate(judges):
        for oi, o in enumerate(ORDERS):
            columns.append((f"{j}|{o}|strength", grid.strength[:, k, oi], True))
            columns.append((f"{j}|{o}|present", grid.present[:, k, oi], False))
            columns.append((f"{j}|{o}|sconf", grid.sconf[:, k, oi], True))
            columns.append((f"{j}|{o}|has_conf", grid.has_conf[:, k, oi], False))
        columns.append((f"{j}|mean_strength", mean_strength[:, k], True))
        columns.append((f"{j}|swap_consistent", grid.consistent[:, k], False))
        columns.append((f"{j}|order_sensitive", grid.sensitive[:, k], False))
        columns.append((f"{j}|n_invalid", grid.invalid[:, k].sum(axis=1), False))
        columns.append((f"{j}|n_failed", grid.failed[:, k].sum(axis=1), False))
    return columns


def _panel_columns(grid: _VerdictGrid) -> list[_Column]:
    """The whole panel's votes, strengths and counts per pair."""
    n = grid.strength.shape[0]
    side, present = grid.side, grid.present
    n_valid = present.sum(axis=(1, 2))
    votes_a = ((side > 0) & (present > 0)).sum(axis=(1, 2))
    votes_b = ((side < 0) & (present > 0)).sum(axis=(1, 2))
    ties = ((side == 0) & (present > 0)).sum(axis=(1, 2))
    majority = np.maximum(np.maximum(votes_a, votes_b), ties)
    net_strength = grid.strength.sum(axis=(1, 2))
    return [
        ("panel|net_strength", net_strength, True),
        ("panel|mean_strength", np.divide(net_strength, n_valid, out=np.zeros(n), where=n_valid > 0), True),
        ("panel|net_votes", votes_a - votes_b, True),
        ("panel|net_sconf", grid.sconf.sum(axis=(1, 2)), True),
        ("panel|abs_net_votes", np.abs(votes_a - votes_b), False),
        ("panel|agree_frac", np.divide(majority, n_valid, out=np.zeros(n), where=n_valid > 0), False),
        ("panel|n_valid", n_valid, False),
        ("panel|n_ties", ties, False),
        ("panel|n_invalid", grid.invalid.sum(axis=(1, 2)), False),
        ("panel|n_failed", grid.failed.sum(axis=(1, 2)), False),
        ("panel|n_judges_present", (grid.n_present > 0).sum(axis=1), False),
        ("panel|n_swap_consistent", grid.consistent.sum(axis=1), False),
        ("panel|n_order_sensitive", grid.sensitive.sum(axis=1), False),
        ("panel|n_conf", grid.has_conf.sum(axis=(1, 2)), False),
        ("panel|mean_conf", grid.mean_conf, False),
    ]


def order_sensitive(judgments: pd.DataFrame, judges: Sequence[str] | None = None) -> pd.Series:
    """Per pair: is the panel (of ``judges``; default all) order-sensitive on it?

    Order sensitivity as :func:`judge.verdicts.panel_order_flip` defines it (the service's
    hard flag), read from the feature matrix (:func:`order_sensitive_flags`). Indexed by
    pair_id in order of first appearance.
    """
    fs = build_features(judgments, judges=judges)
    return pd.Series(
        order_sensitive_flags(fs.X, fs.feature_names),
        index=pd.Index(fs.pair_ids, name="pair_id"),
        name="order_sensitive",
    )


def calls_per_pair(judgments: pd.DataFrame, judges: Sequence[str] | None = None) -> pd.Series:
    """Judge calls made per pair (one call = one judge in one order, failed calls included)."""
    pair_ids = pd.unique(judgments["pair_id"])
    df = judgments[["pair_id", "judge", "order"]]
    if judges is not None:
        df = df[df["judge"].astype(str).isin([str(j) for j in judges])]
    df = df.drop_duplicates()
    return df.groupby("pair_id").size().reindex(pair_ids, fill_value=0).astype(float)


def panel_order_flags(X: NDArray[Any], feature_names: Sequence[str]) -> NDArray[Any]:
    """:func:`judge.verdicts.panel_order_flip` per row of a feature matrix, vectorised.

    Read from the per-judge ``{j}|{order}|strength`` / ``{j}|{order}|present`` columns, so
    gates stored before this rule existed need no new feature (tests/test_definitions.py
    checks that the two agree).
    """
    X = np.asarray(X, dtype=float)
    names = list(feature_names)
    judges = [n.removesuffix(f"|{ORDERS[0]}|strength") for n in names if n.endswith(f"|{ORDERS[0]}|strength")]
    if not judges:
        return np.zeros(len(X), dtype=bool)

    def block(kind: str, order: str) -> NDArray[Any]:
        return X[:, [names.index(f"{j}|{order}|{kind}") for j in judges]]

    both = (block("present", ORDERS[0]) > 0) & (block("present", ORDERS[1]) > 0)
    majority = []
    for order in ORDERS:
        side = np.sign(block("strength", order))  # +1 A, -1 B, 0 tie
        votes = [((side == v) & both).sum(axis=1) for v in (1, -1, 0)]
        # A side wins only with strictly more votes than each other answer (a split is a tie).
        a_wins = (votes[0] > votes[1]) & (votes[0] > votes[2])
        b_wins = (votes[1] > votes[0]) & (votes[1] > votes[2])
        majority.append(np.where(a_wins, 1, np.where(b_wins, -1, 0)))
    return np.asarray(majority[0] * majority[1] < 0)


def order_sensitive_flags(
    X: NDArray[Any], feature_names: Sequence[str], judges: Sequence[str] | None = None
) -> NDArray[Any]:
    """The hard order-sensitivity flag per row of a feature matrix: the panel reverses
    (:func:`panel_order_flags`), or one of the named ``judges`` flips on its own
    (:func:`judge.verdicts.order_flip`; judges not in the feature set are ignored).
    """
    return np.asarray(panel_order_flags(X, feature_names) | judge_flip_flags(X, feature_names, judges or ()))


def judge_flip_flags(X: NDArray[Any], feature_names: Sequence[str], judges: Sequence[str]) -> NDArray[Any]:
    """Per row: does any of ``judges`` flip on its own (:func:`judge.verdicts.order_flip`)?"""
    X = np.asarray(X, dtype=float)
    names = list(feature_names)
    cols = [names.index(f"{j}|order_sensitive") for j in judges if f"{j}|order_sensitive" in names]
    if not cols:
        return np.zeros(len(X), dtype=bool)
    return np.asarray((X[:, cols] > 0).any(axis=1))
