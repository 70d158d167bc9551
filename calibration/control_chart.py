"""p-charts: is a share of agreements drifting, subgroup after subgroup?

A statistical process control chart for a proportion (Shewhart's p-chart, Montgomery,
*Introduction to Statistical Quality Control*, ch. 7). Input is a long table (crowd-kit
layout): a DataFrame with columns ``unit``, ``subgroup``, ``agreed``, one row per comparison
-- a reviewer's answer checked against a reference, say. ``unit`` names the chart (a reviewer,
or one chart for all batches), ``subgroup`` the point on it (a window of labels, a batch);
``agreed`` is True / False, or missing where the row had nothing to compare with (the row keeps
its subgroup on the axis but adds no comparison). Output is one :class:`PChart` per unit.

Per unit, the centre line is the pooled share ``p̄ = agreements / comparisons`` over its
subgroups (not the mean of the subgroups' shares: a subgroup of 5 weighs less than one of 50),
and subgroup ``i`` of ``n_i`` comparisons gets its own limits (variable subgroup size)::

    p̄ ± sigma · sqrt(p̄ (1 - p̄) / n_i), clipped to [0, 1]

A point is flagged with the name of each rule it breaks (:func:`rules`):

* ``outside_limits``: its share is outside its limits (Western Electric rule 1 at sigma 3);
* ``run_of_8`` (``run_length`` 8): it is the 8th or later of consecutive points on the same side
  of the centre line (Western Electric rule 4) -- a small steady shift the limits miss. A point
  exactly on the centre line ends a run.

Subgroups with no comparison are skipped (:attr:`PChart.skipped`). A unit whose every
comparison agreed (or none did) has ``p̄`` 1 (or 0): its limits collapse onto the centre line
and nothing can be flagged (:attr:`PChart.degenerate`). The limits rest on the normal
approximation to the binomial, which needs ``n_i p̄`` and ``n_i (1 - p̄)`` of about 5 or more
(Montgomery's rule of thumb); a smaller subgroup is marked ``wide``: its limits are wide and
approximate, and a point inside them is weak evidence that nothing changed.

Example
-------
Two reviewers, four subgroups each; ``x`` agrees 9 times in 10 until the last subgroup:

>>> import pandas as pd
>>> shares = {("x", 1): 9, ("x", 2): 10, ("x", 3): 9, ("x", 4): 2, ("y", 1): 8, ("y", 2): 8}
>>> long = pd.DataFrame([{"unit": u, "subgroup": s, "agreed": i < k}
...                      for (u, s), k in shares.items() for i in range(10)])
>>> charts = p_charts(long)
>>> x = charts["x"]
>>> round(x.center, 3), [(p.subgroup, p.p, round(p.lcl, 3), p.rules) for p in x.flagged]
(0.75, [(4, 0.2, 0.339, ('outside_limits',))])
>>> charts["y"].flagged, charts["y"].points[0].wide
((), True)
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

__all__ = ["RULES", "ChartPoint", "PChart", "p_charts", "rules"]

COLUMNS = ("unit", "subgroup", "agreed")

OUTSIDE_LIMITS = "outside_limits"
# Western Electric's rule 4 is 8 in a row; Nelson's rule 2 is the same with 9.
RUN_RULE = "run_of_{n}"


def rules(run_length: int | None = 8) -> dict[str, str]:
    """The rules a chart with this ``run_length`` applies: name -> what a flagged point did."""
    named = {OUTSIDE_LIMITS: "the share is outside the control limits (Western Electric rule 1)"}
    if run_length is not None:
        rule_4 = " (Western Electric rule 4)" if run_length == 8 else ""
        named[RUN_RULE.format(n=run_length)] = (
            f"the point ends a run of {run_length} or more points in a row on one side of the "
            f"centre line{rule_4}"
        )
    return named


RULES = rules()
# Shares closer than this to the centre line are on it (float noise from the pooled division).
_ON_CENTRE = 1e-12


@dataclass(frozen=True)
class ChartPoint:
    """One subgroup on a p-chart: ``agreed`` of ``n`` comparisons, share ``p``, its limits,
    ``wide`` when ``n`` is too small for the limits' normal approximation, and the names of the
    rules it breaks (empty: in control)."""

    subgroup: Hashable
    n: int
    agreed: int
    p: float
    lcl: float
    ucl: float
    wide: bool
    rules: tuple[str, ...] = ()

    @property
    def out_of_control(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True)
class PChart:
    """The p-chart of one unit: centre line (None without any comparison), the points in
    subgroup order, and the subgroups skipped for having no comparison."""

    unit: Hashable
    center: float | None
    sigma: float
    points: tuple[ChartPoint, ...]
    skipped: tuple[Hashable, ...] = ()

    @property
    def flagged(self) -> tuple[ChartPoint, ...]:
        """The out-of-control points."""
        return tuple(point for point in self.points if point.out_of_control)

    @property
    def degenerate(self) -> bool:
        """Every comparison agreed, or none did: the limits are the centre line itself."""
        return self.center is not None and self.center in (0.0, 1.0)


def _check_parameters(
    sigma: float, run_length: int | None, min_expected: float, center: float | None
) -> None:
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
    if run_length is not None and (isinstance(run_length, bool) or run_length < 2):
        raise ValueError(f"run_length must be an integer >= 2 or None, got {run_length}")
    if not (math.isfinite(min_expected) and min_expected >= 0):
        raise ValueError(f"min_expected must be a finite number >= 0, got {min_expected}")
    if center is not None and not 0.0 <= center <= 1.0:
        raise ValueError(f"center must be in [0, 1] or None, got {center}")


def _checked_table(data: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"the table needs columns {COLUMNS}, missing {missing}")
    table = data.loc[data["unit"].notna() & data["subgroup"].notna(), list(COLUMNS)]
    known = table["agreed"].dropna()
    # 1 and 0 are accepted (a boolean column with a missing value comes back as floats).
    wrong = sorted({repr(v) for v in known if isinstance(v, str) or v not in (0, 1)})
    if wrong:
        raise ValueError(f"agreed must be True, False or missing, got {', '.join(wrong[:5])}")
    return table.assign(agreed=table["agreed"].map(lambda v: None if pd.isna(v) else int(v)))


def _limits(center: float, n: int, sigma: float) -> tuple[float, float]:
    half = sigma * math.sqrt(center * (1.0 - center) / n)
    return max(0.0, center - half), min(1.0, center + half)


def _flag_runs(points: list[ChartPoint], center: float, run_length: int | None) -> list[ChartPoint]:
    if run_length is None:
        return points
    flagged, run, previous = [], 0, 0
    for point in points:
        side = 0 if abs(point.p - center) <= _ON_CENTRE else (1 if point.p > center else -1)
        run = run + 1 if side != 0 and side == previous else int(side != 0)
        previous = side
        if run >= run_length:
            point = replace(point, rules=(*point.rules, RUN_RULE.format(n=run_length)))
        flagged.append(point)
    return flagged


def _chart(
    unit: Hashable,
    rows: pd.DataFrame,
    sigma: float,
    run_length: int | None,
    min_expected: float,
    center: float | None,
) -> PChart:
    known = rows[rows["agreed"].notna()]
    counts = known.groupby("subgroup", sort=True)["agreed"].agg(["size", "sum"])
    subgroups = sorted(rows["subgroup"].unique().tolist())
    skipped = tuple(s for s in subgroups if s not in counts.index)
    total = int(counts["size"].sum())
    if total == 0:
        return PChart(unit, None, sigma, (), skipped)
    p_bar = float(counts["sum"].sum()) / total if center is None else center
    degenerate = p_bar in (0.0, 1.0)
    points = []
    for subgroup, n, agreed in counts.itertuples():
        n, agreed = int(n), int(agreed)
        p = agreed / n
        lcl, ucl = _limits(p_bar, n, sigma)
        wide = not degenerate and min(n * p_bar, n * (1.0 - p_bar)) < min_expected
        outside = p < lcl - _ON_CENTRE or p > ucl + _ON_CENTRE
        broken = (OUTSIDE_LIMITS,) if outside else ()
        points.append(ChartPoint(subgroup, n, agreed, p, lcl, ucl, wide, broken))
    return PChart(unit, p_bar, sigma, tuple(_flag_runs(points, p_bar, run_length)), skipped)


def p_charts(
    data: pd.DataFrame,
    *,
    sigma: float = 3.0,
    run_length: int | None = 8,
    min_expected: float = 5.0,
    center: float | None = None,
) -> dict[Any, PChart]:
    """One p-chart per unit of the long table ``data`` (columns ``unit``, ``subgroup``,
    ``agreed``), units in order of first appearance, points in sorted subgroup order (the
    subgroups are the time axis: use numbers or timestamps).

    Parameters
    ----------
    sigma : the limits' width in standard errors (3: Shewhart's limits, a false alarm about
        once in 370 in-control points under the normal approximation).
    run_length : the run rule's length (8: Western Electric rule 4); None turns it off.
    min_expected : below this many expected agreements or disagreements (``n_i p̄`` or
        ``n_i (1 - p̄)``) a point is marked ``wide``.
    center : a standard centre line instead of the pooled share (Montgomery's "standard
        given" chart); None: each unit's own ``p̄``.

    Raises ``ValueError`` on a parameter outside its range, a missing column, or an ``agreed``
    value other than True, False (1, 0) or missing.
    """
    _check_parameters(sigma, run_length, min_expected, center)
    table = _checked_table(data)
    return {
        unit: _chart(unit, rows, sigma, run_length, min_expected, center)
        for unit, rows in table.groupby("unit", sort=False)
    }
