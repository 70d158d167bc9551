"""The calibration report's figures, each returned as an ``<img>`` tag with a base64 PNG inside.

Drawing only: the numbers come from the report dict (:mod:`calibration.report`) and the page
around them from :mod:`api.calibrate.reports_html`. The object-oriented Figure API renders with the Agg
canvas without touching pyplot's global state, so reports can be rendered from worker threads
and no display backend is ever needed.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from calibration.metrics import clopper_pearson_interval, clopper_pearson_lower, reliability_curve
from calibration.report import finite_or_none

__all__ = [
    "audits_plot",
    "confusion_plot",
    "coverage_plot",
    "judges_plot",
    "reliability_plot",
    "shift_plot",
]

BLUE, ORANGE, GREEN, RED, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"


def _png(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}">'


def reliability_plot(conf: np.ndarray, ok: np.ndarray, n_bins: int) -> str:
    """Agreement with humans per confidence bin (with exact 95% intervals) over the bin counts."""
    mean_conf, accuracy, count = reliability_curve(conf, ok, n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    filled = count > 0
    # Exact 95% intervals per bin: a bin of 3 pairs at 33% is noise, and the plot should say so
    # rather than draw it as boldly as a bin of 200.
    lo, hi = clopper_pearson_interval(np.rint(accuracy[filled] * count[filled]), count[filled])
    yerr = np.vstack([accuracy[filled] - lo, hi - accuracy[filled]])
    fig = Figure(figsize=(6.4, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color=GREY, label="perfect calibration")
    top.errorbar(
        mean_conf[filled],
        accuracy[filled],
        yerr=yerr,
        fmt="o-",
        color=BLUE,
        ecolor="#9ecae1",
        elinewidth=3,
        capsize=0,
        label="observed agreement (95% interval)",
    )
    for x, y, n in zip(mean_conf[filled], accuracy[filled], count[filled], strict=True):
        top.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8, color=GREY)
    top.set_ylabel("agreement with humans")
    top.set_ylim(0, 1.02)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=9)
    top.set_title("Reliability diagram (out-of-sample)")
    bottom.bar(centers, count, width=width * 0.9, color=GREY)
    bottom.set_xlabel("stated confidence")
    bottom.set_ylabel("pairs")
    bottom.set_xlim(0, 1)
    return _png(fig, "Reliability diagram: agreement with humans per confidence bin, with bin counts")


def coverage_plot(
    curve: Mapping[str, Any], gate: Mapping[str, Any], point: tuple[float, float] | None
) -> str:
    """Coverage against agreement of "accept if confidence >= t", with the gate's lower bound per
    threshold, the target and the chosen threshold's ``point`` (coverage, agreement)."""
    coverage = np.asarray(curve.get("coverage") or [], dtype=float)
    agreement = np.asarray(curve.get("agreement") or [], dtype=float)
    threshold, target = finite_or_none(gate.get("threshold")), finite_or_none(gate.get("target_agreement"))
    fig = Figure(figsize=(7.2, 4.4))
    ax = fig.subplots()
    # Each point is one candidate threshold (an operating point), hence markers rather than steps.
    ax.plot(coverage, agreement, "o-", ms=3, color=BLUE, label="observed agreement of accepted pairs")
    delta = finite_or_none(gate.get("delta"))
    n_accepted = np.asarray(curve.get("n_accepted") or [], dtype=int)
    if delta is not None and n_accepted.size == coverage.size:
        # The quantity the gate actually tests: the one-sided (1 - delta) lower bound per threshold.
        k = np.rint(agreement * n_accepted).astype(int)
        bound = clopper_pearson_lower(k, n_accepted, delta)
        ax.plot(coverage, bound, "-", color=BLUE, alpha=0.5, lw=1, label=f"lower bound ({1 - delta:.0%})")
    if target is not None:
        ax.axhline(target, color=RED, ls="--", label=f"target {target:.0%}")
    lower = finite_or_none(gate.get("agreement_lower_bound"))
    if point is not None and threshold is not None:
        ax.axvline(point[0], color=GREEN, ls=":", lw=1)
        ax.plot([point[0]], [point[1]], "o", color=GREEN, ms=9, label=f"chosen threshold {threshold:.3g}")
        if lower is not None:
            ax.plot([point[0]], [lower], "v", color=GREEN, ms=8, label="guaranteed lower bound")
    ax.set_xlabel("coverage (share of pairs auto-accepted)")
    ax.set_ylabel("agreement with humans")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(max(0.0, min(float(np.nanmin(agreement)), target or 1.0) - 0.1), 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig, "Coverage versus agreement curve with the chosen threshold marked")


def judges_plot(judges: Sequence[Mapping[str, Any]]) -> str:
    """Per judge: accuracy, swap consistency and accuracy when consistent, as grouped bars."""
    names = [str(j.get("judge")) for j in judges]
    series = [
        ("accuracy", [finite_or_none(j.get("accuracy")) for j in judges], BLUE),
        ("swap consistency", [finite_or_none(j.get("swap_consistency")) for j in judges], ORANGE),
        ("accuracy when consistent", [finite_or_none(j.get("consistent_accuracy")) for j in judges], GREEN),
    ]
    fig = Figure(figsize=(7.6, 0.9 + 0.55 * len(names)))
    ax = fig.subplots()
    y = np.arange(len(names))
    height = 0.8 / len(series)
    for k, (label, values, color) in enumerate(series):
        vals = [np.nan if v is None else v for v in values]
        ax.barh(y + (k - 1) * height, vals, height=height, color=color, label=label)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of pairs")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(names)), ncol=3, fontsize=8, frameon=False
    )
    return _png(fig, "Per-judge accuracy and swap consistency against human labels")


def confusion_plot(matrix: np.ndarray, labels: list[str], compared: str) -> str:
    """The confusion matrix as a heat map with counts (rows human, columns judge)."""
    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            dark = matrix[i, j] > matrix.max() / 2
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("judge / auto-label")
    ax.set_ylabel("human label")
    ax.set_title(compared, fontsize=10)
    return _png(fig, "Confusion matrix of judge labels against human labels")


def audits_plot(x: Any, xlabel: str, agree: np.ndarray, band: np.ndarray, target: float | None) -> str:
    """Cumulative audit agreement with its 95% band (``band``: lower, upper per audit), the
    last 50 audits' rolling agreement and the target, against time or audit number ``x``."""
    n = np.arange(1, agree.size + 1)
    running = np.cumsum(agree) / n
    window = min(50, agree.size)
    rolling = pd.Series(agree.astype(float)).rolling(window, min_periods=window).mean().to_numpy()
    fig = Figure(figsize=(7.6, 4.0))
    ax = fig.subplots()
    ax.fill_between(x, band[:, 0], band[:, 1], color=BLUE, alpha=0.15, label="95% interval (cumulative)")
    ax.plot(x, running, color=BLUE, label="cumulative agreement")
    if agree.size > window:
        ax.plot(x, rolling, color=ORANGE, lw=1, label=f"last {window} audits")
    if target is not None:
        ax.axhline(target, color=RED, ls="--", label=f"target {target:.0%}")
    # Scale to the running agreement, not to the (very wide) interval of the first few audits.
    ax.set_ylim(max(0.0, min(float(running.min()), target or 1.0) - 0.15), 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("audit agreement with humans")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    return _png(fig, "Running audit agreement over time with the target line")


def shift_plot(history: list[list[Any]], threshold: float, alarm_at: int | None) -> str:
    """The shift detector's evidence over the stream against its alarm threshold."""
    x = np.array([float(h[0]) for h in history])
    y = np.array([float(h[1]) for h in history])
    fig = Figure(figsize=(7.6, 3.6))
    ax = fig.subplots()
    ax.plot(x, y, color=BLUE, label="evidence (largest statistic)")
    ax.axhline(threshold, color=RED, ls="--", label="alarm: log(K/δ)")
    if alarm_at is not None:
        ax.axvline(int(alarm_at) + 1, color=ORANGE, lw=1, label="alarm")
    ax.set_xlabel("stream pairs decided under the version")
    ax.set_ylabel("log evidence (nats)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig, "Shift detector evidence over the stream with the alarm threshold")
