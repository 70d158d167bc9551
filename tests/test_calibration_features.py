import numpy as np
import pandas as pd
import pytest

from calibration.calibrator import PairCalibrator
from calibration.features import (
    build_features,
    calls_per_pair,
    normalize_judgments,
    order_sensitive,
    order_sensitive_flags,
)


def _df(rows: list[tuple]) -> pd.DataFrame:
    cols = ["pair_id", "judge", "order", "verdict", "confidence", "failed"]
    return pd.DataFrame([r + (np.nan, False)[len(r) - 4 :] if len(r) < 6 else r for r in rows], columns=cols)


def _row(fs, pid):
    i = list(fs.pair_ids).index(pid)
    return dict(zip(fs.feature_names, fs.X[i].tolist(), strict=True))


def test_three_way_and_five_point_verdicts_agree():
    a = build_features(_df([(1, "j", "ab", "A"), (1, "j", "ba", "B")]))
    b = build_features(_df([(1, "j", "ab", "A>B"), (1, "j", "ba", "B>A")]))
    np.testing.assert_array_equal(a.X, b.X)
    r = _row(a, 1)
    assert r["j|ab|strength"] == 1.0 and r["j|ba|strength"] == -1.0
    assert r["j|order_sensitive"] == 1.0 and r["j|swap_consistent"] == 0.0


def test_missing_judge_and_single_order_give_zeros_and_indicators():
    df = _df(
        [
            (1, "g4", "ab", "A>>B"),
            (1, "g4", "ba", "A>B"),
            (1, "g35", "ab", "A>B"),
            (1, "g35", "ba", "A>B"),
            (2, "g4", "ab", "B>A"),  # one order only, other judge missing
        ]
    )
    fs = build_features(df)
    assert fs.judges == ["g35", "g4"]
    r2 = _row(fs, 2)
    assert r2["g4|ab|present"] == 1 and r2["g4|ba|present"] == 0
    assert r2["g35|ab|present"] == 0 and r2["g35|ab|strength"] == 0
    assert r2["g4|swap_consistent"] == 0 and r2["g4|order_sensitive"] == 0
    assert r2["panel|n_valid"] == 1 and r2["panel|net_votes"] == -1 and r2["panel|n_judges_present"] == 1
    r1 = _row(fs, 1)
    assert (
        r1["panel|net_strength"] == 5 and r1["panel|n_swap_consistent"] == 2 and r1["panel|agree_frac"] == 1
    )


def test_invalid_failed_and_confidence():
    df = pd.DataFrame(
        {
            "pair_id": [1, 1, 1, 1],
            "judge": ["a", "a", "b", "b"],
            "order": ["ab", "ba", "ab", "ba"],
            "verdict": ["A>B", "invalid", "B>A", "A>B"],
            "confidence": [0.8, np.nan, 0.6, np.nan],
            "failed": [False, False, False, True],
        }
    )
    r = _row(build_features(df), 1)
    assert r["a|ab|sconf"] == pytest.approx(0.8) and r["a|ab|has_conf"] == 1
    assert r["b|ab|sconf"] == pytest.approx(-0.6)
    assert r["a|n_invalid"] == 1 and r["b|n_failed"] == 1 and r["b|n_invalid"] == 0
    assert r["b|ba|present"] == 0, "a failed call's verdict must not count"
    assert r["panel|n_failed"] == 1 and r["panel|n_invalid"] == 1 and r["panel|n_valid"] == 2
    assert r["panel|mean_conf"] == pytest.approx(0.7)


def test_optional_columns_may_be_absent():
    df = pd.DataFrame({"pair_id": [1], "judge": ["x"], "order": ["ab"], "verdict": ["tie"]})
    norm = normalize_judgments(df)
    assert bool(norm.loc[0, "valid"]) and not bool(norm.loc[0, "failed"])
    r = _row(build_features(df), 1)
    assert r["panel|n_ties"] == 1 and r["x|ab|has_conf"] == 0


def test_fixed_judge_list_gives_same_columns():
    train = _df([(1, "a", "ab", "A"), (1, "b", "ab", "B"), (1, "c", "ba", "A")])
    fs = build_features(train)
    new = _df([(9, "b", "ab", "A"), (9, "zzz", "ab", "B")])  # judge c missing, zzz unknown
    fs2 = build_features(new, judges=fs.judges)
    assert fs2.feature_names == fs.feature_names and fs2.X.shape == (1, fs.X.shape[1])
    r = _row(fs2, 9)
    assert r["panel|n_valid"] == 1, "unknown judges are ignored"


def test_bad_order_rejected():
    with pytest.raises(ValueError):
        build_features(_df([(1, "a", "xy", "A")]))


def test_signed_mask_flips_under_swap():
    rng = np.random.default_rng(0)
    verdicts = ["A>>B", "A>B", "tie", "B>A", "B>>A", "invalid"]
    mirror = {"A>>B": "B>>A", "A>B": "B>A", "tie": "tie", "B>A": "A>B", "B>>A": "A>>B", "invalid": "invalid"}
    rows = [(p, j, o, verdicts[rng.integers(6)]) for p in range(30) for j in "xyz" for o in ("ab", "ba")]
    df = _df(rows)
    swapped = df.assign(verdict=df["verdict"].map(mirror))
    a, b = build_features(df), build_features(swapped)
    np.testing.assert_allclose(a.X[:, a.signed], -b.X[:, b.signed])
    np.testing.assert_allclose(a.X[:, ~a.signed], b.X[:, ~b.signed])
    # ...and the side model is antisymmetric because of it.
    y = np.where(a.X[:, a.feature_names.index("panel|net_strength")] + rng.normal(size=30) > 0, "A", "B")
    cal = PairCalibrator(signed=a.signed, random_state=0).fit(a.X, y)
    flip = {"A": "B", "B": "A", "tie": "tie"}
    assert [flip[s] for s in cal.predict_side(a.X)] == list(cal.predict_side(b.X))
    np.testing.assert_allclose(cal.confidence(a.X), cal.confidence(b.X))


def test_order_sensitive_matches_service_definition():
    df = _df(
        [
            (1, "a", "ab", "A>B"),
            (1, "a", "ba", "B>A"),  # flip
            (2, "a", "ab", "A>B"),
            (2, "a", "ba", "tie"),  # side differs: counts (as in api/routing.py)
            (3, "a", "ab", "A>B"),
            (3, "a", "ba", "A>>B"),  # consistent
            (4, "a", "ab", "A>B"),
            (4, "a", "ba", "invalid"),  # one valid order only
        ]
    )
    # One judge is the panel: a reversal is A in one order and B in the other; "tie" in one
    # order weakens the panel's answer without reversing it.
    assert order_sensitive(df).tolist() == [True, False, False, False]
    fs = build_features(df)
    assert order_sensitive_flags(fs.X, fs.feature_names).tolist() == [True, False, False, False]
    # A named judge's own flip (judge.verdicts.order_flip) counts, ties included.
    assert order_sensitive_flags(fs.X, fs.feature_names, judges=["a"]).tolist() == [True, True, False, False]
    assert order_sensitive_flags(fs.X, fs.feature_names, judges=["other"]).tolist() == [
        True,
        False,
        False,
        False,
    ]


def test_one_judge_flipping_does_not_make_the_panel_order_sensitive():
    rows = []
    for judge, ab, ba in [("a", "A>B", "B>A"), ("b", "A>B", "A>B"), ("c", "A>>B", "A>B")]:
        rows += [(1, judge, "ab", ab), (1, judge, "ba", ba)]
    for judge, ab, ba in [("a", "A>B", "B>A"), ("b", "A>B", "B>A"), ("c", "B>A", "B>A")]:
        rows += [(2, judge, "ab", ab), (2, judge, "ba", ba)]
    fs = build_features(_df(rows))
    assert order_sensitive_flags(fs.X, fs.feature_names).tolist() == [False, True]
    assert order_sensitive_flags(fs.X, fs.feature_names, judges=["a"]).tolist() == [True, True]


def test_calls_per_pair_counts_failed_calls():
    df = _df([(1, "a", "ab", "A", np.nan, True), (1, "a", "ba", "A"), (2, "b", "ab", "B")])
    assert calls_per_pair(df).tolist() == [2.0, 1.0]
    assert calls_per_pair(df, judges=["b"]).tolist() == [0.0, 1.0]
