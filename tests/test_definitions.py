"""One definition per idea: the places that compute the same thing agree with that definition.

Side normalisation, order sensitivity, the exact binomial bounds, the human-label answer
and the long judgments table each have one home; vectorised or aggregated forms elsewhere are
checked against it here.
"""

from __future__ import annotations

import doctest
import random
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from api.review.human_labels import aggregate, human_sides
from api.routing.route import JudgmentView, hard_reasons, summarize, views_frame
from api.vocab import Reason
from calibration.features import (
    JUDGMENT_COLUMNS,
    build_features,
    judgments_table,
    order_sensitive,
    order_sensitive_flags,
    panel_order_flags,
)
from calibration.metrics import clopper_pearson_interval, clopper_pearson_lower, clopper_pearson_upper
from judge import verdicts as verdicts_module
from judge.recorded import RECORDED_VERDICTS, recorded_to_five_point
from judge.verdicts import (
    INVALID,
    SIDES,
    VERDICTS,
    from_side,
    order_flip,
    order_sensitivity,
    side,
    to_five_point,
    to_side,
)

SPELLINGS = [*VERDICTS, *SIDES, INVALID]


def test_verdicts_doctests() -> None:
    result = doctest.testmod(verdicts_module)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------ side normalisation


def test_side_spellings_agree() -> None:
    for v in VERDICTS:
        assert to_side(v) == side(v)
    for s in SIDES:
        assert to_side(s) == s and side(from_side(s)) == s and side(from_side(s, strong=True)) == s
    assert [from_side(s, strong=True) for s in SIDES] == ["A>>B", "tie", "B>>A"]
    for v in SPELLINGS:
        # Normalising to five points first never changes the side.
        assert to_side(to_five_point(v)) == to_side(v)
    assert [to_side(v) for v in (INVALID, None, float("nan"))] == [None, None, None]


def test_unknown_labels_raise_unless_lenient() -> None:
    with pytest.raises(ValueError):
        to_side("a")
    assert to_side("a", strict=False) is None and to_side("", strict=False) is None
    assert side("A") is None, "a judge answers in five points: a bare side from a judge is unreadable"
    assert [to_five_point(v) for v in ("junk", None, float("nan"), 3)] == [INVALID] * 4


def test_recorded_verdicts_normalise_like_every_other_spelling() -> None:
    for v in RECORDED_VERDICTS:
        assert recorded_to_five_point(v) == to_five_point(v)


# ------------------------------------------------------------------------ order sensitivity


def test_order_flip_definition() -> None:
    assert order_flip("A", "B") and order_flip("A", "tie") and order_flip("tie", "B")
    assert not order_flip("A", "A") and not order_flip("tie", "tie")
    assert not order_flip("A", None) and not order_flip(None, "B") and not order_flip(None, None)


def _random_judgments(seed: int) -> list[tuple[int, str, str, str | None, bool]]:
    """(pair, judge, order, verdict, failed) with invalid, failed and missing orders mixed in."""
    rng = random.Random(seed)
    rows = []
    for pair in range(60):
        for judge in ("x", "y", "z"):
            for order in ("ab", "ba"):
                draw = rng.random()
                if draw < 0.08:
                    continue  # never asked in this order
                if draw < 0.15:
                    rows.append((pair, judge, order, None, True))
                elif draw < 0.22:
                    rows.append((pair, judge, order, INVALID, False))
                else:
                    rows.append((pair, judge, order, rng.choice(VERDICTS), False))
    return rows


def _expected_flips(rows: list[tuple[int, str, str, str | None, bool]]) -> dict[tuple[int, str], bool]:
    sides: dict[tuple[int, str], dict[str, str | None]] = {}
    for pair, judge, order, verdict, failed in rows:
        sides.setdefault((pair, judge), {})[order] = None if failed else to_side(verdict)
    return {key: order_flip(s.get("ab"), s.get("ba")) for key, s in sides.items()}


def _expected_reversal(rows: list[tuple], pair: int) -> bool:
    """The panel's reversal, spelled out: per order, the strict majority of the sides named
    by judges valid in both orders; A in one order and B in the other."""
    sides: dict[str, dict[str, str | None]] = {}
    for p, judge, order, verdict, failed in rows:
        if p == pair:
            sides.setdefault(judge, {})[order] = None if failed else to_side(verdict)
    both = [s for s in sides.values() if s.get("ab") is not None and s.get("ba") is not None]
    majority = []
    for order in ("ab", "ba"):
        counts = sorted((sum(s[order] == side for s in both), side) for side in ("A", "B", "tie"))
        (n2, _), (n1, top) = counts[-2], counts[-1]
        majority.append(top if n1 > n2 else "tie")
    return set(majority) == {"A", "B"}


def any_flip_of(expected: dict, judges: list[str]):  # type: ignore[no-untyped-def]
    return lambda p: any(expected.get((int(p), j), False) for j in judges)


@pytest.mark.parametrize("seed", range(5))
def test_every_order_sensitivity_computes_order_flip(seed: int) -> None:
    rows = _random_judgments(seed)
    expected = _expected_flips(rows)
    assert any(expected.values()) and not all(expected.values())
    df = judgments_table((p, j, o, v, np.nan, f) for p, j, o, v, f in rows)

    # The vectorised features (what the gate's and the cascade's hard rule read).
    fs = build_features(df)
    for i, pair in enumerate(fs.pair_ids):
        for judge in fs.judges:
            got = fs.X[i, fs.feature_names.index(f"{judge}|order_sensitive")] > 0
            assert got == expected.get((int(pair), judge), False), (pair, judge)
    # The panel's reversal (judge.verdicts.panel_order_flip), vectorised, plus named judges.
    reversal = [_expected_reversal(rows, int(p)) for p in fs.pair_ids]
    assert any(reversal) and sum(reversal) < sum(map(any_flip_of(expected, fs.judges), fs.pair_ids))
    assert panel_order_flags(fs.X, fs.feature_names).tolist() == reversal
    assert order_sensitive_flags(fs.X, fs.feature_names).tolist() == reversal
    assert order_sensitive(df).tolist() == reversal
    with_x = [r or expected.get((int(p), "x"), False) for r, p in zip(reversal, fs.pair_ids, strict=True)]
    assert order_sensitive_flags(fs.X, fs.feature_names, judges=["x"]).tolist() == with_x
    # judges= of order_sensitive picks the panel: x alone reverses only from A to B or back.
    x_rows = [r for r in rows if r[1] == "x"]
    assert order_sensitive(df, judges=["x"]).tolist() == [
        _expected_reversal(x_rows, int(p)) for p in fs.pair_ids
    ]

    # The service's hard flag.
    by_pair: dict[int, list[JudgmentView]] = {}
    for pair, judge, order, verdict, failed in rows:
        view = JudgmentView(judge, order, verdict, error="Timeout" if failed else None)
        by_pair.setdefault(pair, []).append(view)
    for pair, views in by_pair.items():
        flipped = [j for j in ("x", "y", "z") if expected.get((pair, j), False)]
        summary = summarize(views)
        assert summary.order_sensitive_judges == flipped, pair
        assert summary.panel_order_sensitive == _expected_reversal(rows, pair), pair
        hard = hard_reasons(summary, order_sensitive_judges=["x"])
        assert (Reason.ORDER_SENSITIVE in hard) == (summary.panel_order_sensitive or "x" in flipped)

    # The per-judge rates of the demo and the replay tests.
    rates = order_sensitivity((j, p, o, v) for p, j, o, v, _ in rows)
    for judge in ("x", "y", "z"):
        assert rates[judge]["order_sensitive"] == sum(v for (_, j), v in expected.items() if j == judge)


# ------------------------------------------------------------------ Clopper-Pearson bounds


def test_two_sided_interval_is_the_two_one_sided_bounds() -> None:
    k = np.array([0, 1, 5, 37, 50, 0])
    n = np.array([10, 10, 40, 50, 50, 0])
    lower, upper = clopper_pearson_interval(k, n, alpha=0.1)
    filled = n > 0
    np.testing.assert_array_equal(lower[filled], clopper_pearson_lower(k, n, 0.05)[filled])
    np.testing.assert_array_equal(upper[filled], clopper_pearson_upper(k, n, 0.05)[filled])
    assert np.isnan(lower[~filled]).all() and np.isnan(upper[~filled]).all()
    for kk, nn in [(0, 10), (3, 40), (37, 50), (50, 50)]:
        exact = binomtest(kk, nn).proportion_ci(confidence_level=0.8, method="exact")
        assert clopper_pearson_lower(kk, nn, 0.1) == pytest.approx(exact.low, abs=1e-9)
        assert clopper_pearson_upper(kk, nn, 0.1) == pytest.approx(exact.high, abs=1e-9)
        # Successes bounded from below = failures bounded from above.
        assert clopper_pearson_lower(kk, nn, 0.1) == pytest.approx(
            1 - clopper_pearson_upper(nn - kk, nn, 0.1)
        )


# ------------------------------------------------------------------------ human majority


@dataclass
class _Label:
    pair_id: int
    label: str
    annotator: str = "r"


def test_human_sides_is_the_one_human_answer() -> None:
    """Calibration reads the same per-pair answer as results and export
    (api.review.human_labels.aggregate: Dawid-Skene over several annotators)."""
    labels = [
        _Label(7, "A>B"),
        _Label(3, "B>A"),
        _Label(7, "A>>B", "s"),
        _Label(3, "A>B", "s"),  # split A/B: Dawid-Skene sides with the more reliable annotator
        _Label(5, "invalid"),  # no side, no vote
        _Label(9, "tie"),
        _Label(9, "B>A", "s"),
        _Label(9, "tie", "t"),
        _Label(4, "B", "s"),  # shorthand reads as its side
    ]
    sides = human_sides(labels)  # type: ignore[arg-type]
    answers = aggregate(labels)
    assert sides.to_dict() == {p: answers[p].side for p in (7, 3, 9, 4)}
    assert {7: "A", 9: "tie", 4: "B"}.items() <= sides.to_dict().items()
    assert sides.index.tolist() == [7, 3, 9, 4], "pairs in order of their first vote"
    assert answers[4].method == "single" and answers[7].method == "dawid_skene"
    # Two annotators who only ever split, equally reliable: a split is a tie, as in majority vote.
    split = [_Label(1, "A>B"), _Label(1, "B>A", "s"), _Label(2, "B>A"), _Label(2, "A>B", "s")]
    assert human_sides(split).to_dict() == {1: "tie", 2: "tie"}  # type: ignore[arg-type]
    assert human_sides([]).empty


# ------------------------------------------------------------------------ the long table


def test_service_frame_is_the_long_table() -> None:
    views = {
        1: [JudgmentView("x", "ab", "A>B", confidence=0.8), JudgmentView("x", "ba", None, error="Timeout")],
        2: [JudgmentView("y", "ab", "tie")],
    }
    frame = views_frame(views)
    assert list(frame.columns) == JUDGMENT_COLUMNS
    expected = judgments_table(
        [
            (1, "x", "ab", "A>B", 0.8, False),
            (1, "x", "ba", None, None, True),
            (2, "y", "ab", "tie", None, False),
        ]
    )
    pd.testing.assert_frame_equal(frame, expected)
