"""The p-chart of :mod:`calibration.control_chart`: textbook values, variable subgroup sizes,
the run rule, the edge cases (p̄ 0 or 1, empty subgroups, tiny subgroups) and its parameters."""

from __future__ import annotations

import doctest
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest

from calibration import control_chart
from calibration.control_chart import OUTSIDE_LIMITS, RULES, p_charts

# Montgomery, Introduction to Statistical Quality Control, Example 7.1 (Table 7.1): 30 samples
# of 50 orange juice cans, nonconforming cans per sample. p̄ = 347/1500 = 0.2313, UCL 0.4102,
# LCL 0.0524; samples 15 and 23 are above the UCL. Here a conforming can "agreed", so the
# chart is the mirror image: p̄ 0.7687, limits 0.5898 and 0.9476, samples 15 and 23 below.
ORANGE_JUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22]
ORANGE_JUICE += [8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]


def long_table(counts: Mapping[Any, tuple[int, int]], unit: str = "u") -> pd.DataFrame:
    """subgroup -> (agreed, n) as one row per comparison."""
    rows = [
        {"unit": unit, "subgroup": subgroup, "agreed": i < agreed}
        for subgroup, (agreed, n) in counts.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=["unit", "subgroup", "agreed"])


def orange_juice(skip: tuple[int, ...] = ()) -> pd.DataFrame:
    return long_table({i + 1: (50 - bad, 50) for i, bad in enumerate(ORANGE_JUICE) if i + 1 not in skip})


def test_the_doctest_runs() -> None:
    assert doctest.testmod(control_chart).failed == 0


def test_montgomery_example_7_1_centre_limits_and_flagged_samples() -> None:
    chart = p_charts(orange_juice())["u"]
    assert chart.center == pytest.approx(1 - 0.2313, abs=1e-4)
    assert {round(p.lcl, 4) for p in chart.points} == {round(1 - 0.4102, 4)}
    assert {round(p.ucl, 4) for p in chart.points} == {round(1 - 0.0524, 4)}
    assert [(p.subgroup, p.rules) for p in chart.flagged] == [
        (15, (OUTSIDE_LIMITS,)),
        (23, (OUTSIDE_LIMITS,)),
    ]
    assert [p.p for p in chart.flagged] == [0.56, 0.52]
    assert not any(p.wide for p in chart.points)  # n p̄ = 38, n (1 - p̄) = 11.6


def test_montgomery_revised_limits_flag_sample_21() -> None:
    """With samples 15 and 23 removed (assignable causes found): p̄ = 301/1400 = 0.2150, UCL
    0.3893, LCL 0.0407, and sample 21 (0.40) is now above the UCL."""
    chart = p_charts(orange_juice(skip=(15, 23)))["u"]
    assert chart.center == pytest.approx(1 - 0.2150, abs=1e-4)
    assert chart.points[0].lcl == pytest.approx(1 - 0.3893, abs=1e-4)
    assert chart.points[0].ucl == pytest.approx(1 - 0.0407, abs=1e-4)
    assert [p.subgroup for p in chart.flagged] == [21]


def test_a_standard_centre_line_is_used_as_given() -> None:
    """Montgomery's "standard given" chart: the limits come from the standard, not the data."""
    chart = p_charts(orange_juice(), center=0.8)["u"]
    assert chart.center == 0.8
    assert chart.points[0].lcl == pytest.approx(0.8 - 3 * math.sqrt(0.8 * 0.2 / 50))
    assert 21 in [p.subgroup for p in chart.flagged]


def test_variable_subgroup_sizes_pool_the_centre_and_get_their_own_limits() -> None:
    counts = {1: (18, 20), 2: (80, 100), 3: (2, 5), 4: (50, 100)}
    chart = p_charts(long_table(counts))["u"]
    p_bar = (18 + 80 + 2 + 50) / 225  # pooled, not the mean of the four shares (0.65)
    assert chart.center == pytest.approx(p_bar)
    for point, (agreed, n) in zip(chart.points, counts.values(), strict=True):
        half = 3 * math.sqrt(p_bar * (1 - p_bar) / n)
        assert (point.n, point.agreed, point.p) == (n, agreed, agreed / n)
        assert point.lcl == pytest.approx(max(0.0, p_bar - half))
        assert point.ucl == pytest.approx(min(1.0, p_bar + half))
    # n = 5: the upper limit is clipped at 1 and the point is marked wide; n = 100: not.
    small, big = chart.points[2], chart.points[1]
    assert small.ucl == 1.0 and small.wide and not big.wide
    # 0.4 of 5 is inside its wide limits (0.03 to 1); 0.5 of 100 is below its narrow ones (0.53).
    assert [p.subgroup for p in chart.flagged] == [4]


def test_sigma_sets_the_width() -> None:
    counts = {1: (40, 50), 2: (30, 50), 3: (45, 50)}
    wide, narrow = p_charts(long_table(counts))["u"], p_charts(long_table(counts), sigma=1.0)["u"]
    p_bar = 115 / 150
    assert narrow.points[0].lcl == pytest.approx(p_bar - math.sqrt(p_bar * (1 - p_bar) / 50))
    assert wide.flagged == ()
    assert [p.subgroup for p in narrow.flagged] == [2, 3]


def run_of(sides: str) -> pd.DataFrame:
    """One subgroup of 10 per letter: "+" 9 agreements, "-" 7, "=" 8 (on the centre of 0.8
    when the pluses and minuses balance)."""
    return long_table({i: ({"+": 9, "-": 7, "=": 8}[s], 10) for i, s in enumerate(sides)})


def test_eight_in_a_row_on_one_side_is_flagged_from_the_eighth_point() -> None:
    chart = p_charts(run_of("+" * 10 + "-" * 10))["u"]
    assert chart.center == pytest.approx(0.8)
    assert not any(OUTSIDE_LIMITS in p.rules for p in chart.points)  # 0.9 and 0.7 are inside
    flagged = [p.subgroup for p in chart.flagged]
    assert flagged == [7, 8, 9, 17, 18, 19]
    assert all(p.rules == ("run_of_8",) for p in chart.flagged)
    assert "run_of_8" in RULES


def test_seven_in_a_row_or_a_point_on_the_centre_line_is_no_run() -> None:
    assert p_charts(run_of("+-" + "+" * 7 + "-" * 7 + "+-"))["u"].flagged == ()
    balanced = run_of("+" * 4 + "=" + "+" * 4 + "-" * 4 + "=" + "-" * 4)
    chart = p_charts(balanced)["u"]
    assert chart.center == pytest.approx(0.8) and chart.flagged == ()


def test_the_run_length_is_a_parameter_and_none_turns_the_rule_off() -> None:
    data = run_of("+" * 9 + "-" * 9)
    assert [p.subgroup for p in p_charts(data, run_length=9)["u"].flagged] == [8, 17]
    assert p_charts(data, run_length=9)["u"].flagged[0].rules == ("run_of_9",)
    assert list(control_chart.rules(9)) == [OUTSIDE_LIMITS, "run_of_9"]
    assert "run of 9 or more" in control_chart.rules(9)["run_of_9"] and list(control_chart.rules(None)) == [
        OUTSIDE_LIMITS
    ]
    assert p_charts(data, run_length=None)["u"].flagged == ()


def test_a_point_can_break_both_rules() -> None:
    chart = p_charts(long_table({i: (10, 10) for i in range(8)} | {8: (0, 40)}))["u"]
    assert chart.points[7].rules == ("run_of_8",)
    assert chart.points[8].rules == (OUTSIDE_LIMITS,)  # below the centre: a new run of 1
    chart = p_charts(long_table({i: (45, 50) for i in range(8)} | {8: (50, 50)}), center=0.5)["u"]
    assert chart.points[8].rules == (OUTSIDE_LIMITS, "run_of_8")


@pytest.mark.parametrize("agreed", [True, False])
def test_all_or_nothing_agreement_is_degenerate_and_flags_nothing(agreed: bool) -> None:
    counts = {i: (10 if agreed else 0, 10) for i in range(12)}
    chart = p_charts(long_table(counts))["u"]
    assert chart.degenerate and chart.center == float(agreed)
    assert all(p.lcl == p.ucl == chart.center for p in chart.points)
    assert chart.flagged == ()  # twelve points on the centre line: no run, nothing outside
    assert not any(p.wide for p in chart.points)


def test_subgroups_without_a_comparison_are_skipped() -> None:
    data = pd.concat(
        [
            long_table({1: (8, 10), 3: (9, 10)}),
            pd.DataFrame({"unit": ["u", "u"], "subgroup": [2, 4], "agreed": [None, math.nan]}),
            pd.DataFrame({"unit": ["empty"], "subgroup": [1], "agreed": [None]}),
        ]
    )
    charts = p_charts(data)
    assert [p.subgroup for p in charts["u"].points] == [1, 3]
    assert charts["u"].skipped == (2, 4)
    assert charts["u"].center == pytest.approx(17 / 20)
    empty = charts["empty"]
    assert empty.center is None and empty.points == () and empty.skipped == (1,) and not empty.degenerate


def test_units_are_charted_apart_in_order_of_appearance() -> None:
    data = pd.concat([long_table({1: (1, 10)}, unit="z"), long_table({1: (9, 10), 2: (8, 10)}, unit="a")])
    charts = p_charts(data)
    assert list(charts) == ["z", "a"]
    assert charts["z"].center == pytest.approx(0.1) and charts["a"].center == pytest.approx(0.85)


def test_subgroups_are_in_sorted_order_whatever_the_row_order() -> None:
    data = long_table({3: (1, 10), 1: (9, 10), 2: (5, 10)}).sample(frac=1.0, random_state=0)
    assert [p.subgroup for p in p_charts(data)["u"].points] == [1, 2, 3]


def test_agreed_may_be_ones_and_zeros_or_floats_from_a_column_with_gaps() -> None:
    data = pd.DataFrame({"unit": "u", "subgroup": [1, 1, 1, 2], "agreed": [1.0, 0.0, math.nan, 1.0]})
    chart = p_charts(data)["u"]
    assert [(p.n, p.agreed) for p in chart.points] == [(2, 1), (1, 1)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": 0}, "sigma"),
        ({"sigma": -3}, "sigma"),
        ({"sigma": math.nan}, "sigma"),
        ({"sigma": math.inf}, "sigma"),
        ({"run_length": 1}, "run_length"),
        ({"run_length": True}, "run_length"),
        ({"min_expected": -1}, "min_expected"),
        ({"center": 1.5}, "center"),
        ({"center": -0.1}, "center"),
    ],
)
def test_parameters_outside_their_range_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        p_charts(long_table({1: (5, 10)}), **kwargs)  # type: ignore[arg-type]


def test_a_malformed_table_is_refused() -> None:
    with pytest.raises(ValueError, match="missing \\['agreed'\\]"):
        p_charts(pd.DataFrame({"unit": ["u"], "subgroup": [1]}))
    for bad in ("yes", 2, 0.5):
        with pytest.raises(ValueError, match="agreed must be"):
            p_charts(pd.DataFrame({"unit": ["u"], "subgroup": [1], "agreed": [bad]}))
