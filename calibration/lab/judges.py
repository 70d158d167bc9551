"""Simulated LLM judges that report confidences, and recorded-judgment files made from them.

Why: the threshold procedure must be measured on score shapes nobody tuned it on, and the
guarantee must be checked where the truth is known. Real files give one shape each; this
module draws as many as wanted: 1-5 judges, one order or both, continuous or coarse
(rounded, hence tied) confidences, well- or mis-calibrated, with or without human ties.

Model (one pair): a latent ease ``z ~ N(0, 1)`` shared by the judges (hard pairs are hard for
everyone, so judges' errors correlate as real ones do). Judge j is right with probability
``p = 0.5 + 0.5 * sigmoid(bias_j + skill_j * z + noise)`` (so between 0.5 and 1), drawn
independently per order it is asked in. The confidence it *states* is
``0.5 + 0.5 * sigmoid(temper_j * logit(2p - 1) + offset_j)`` plus a little noise, rounded to
``decimals`` when given: ``temper > 1`` or ``offset > 0`` is overconfident, ``< 1`` /
``< 0`` underconfident; 1 / 0 is calibrated. The human label is the truth; with
``tie_rate`` it is "tie" instead (then every judge is wrong whatever it says, as a human tie
makes a side verdict disagree). A verdict's side is the truth when right, the other side
otherwise.

:func:`draw_pairs` returns records in the recorded-judgments format
(:mod:`judge.recorded`: ``id, prompt, response_a, response_b, gold, judgments``), so
``prelabel bench replay`` and ``bench simulate`` read them like any file; :func:`write_jsonl`
writes them. :func:`toe_shaped` is the Trust-or-Escalate shape (3 judges, one order each,
a confidence per verdict, 500 pairs) with its calibration quality varied by seed.
:func:`scores` draws (score, correct) arrays for threshold-only simulations, with the true
agreement above any threshold known in closed form.

Example
-------
>>> recs = draw_pairs(toe_shaped(seed=3).judges, n_pairs=200, seed=3)
>>> len(recs), sorted(recs[0])
(200, ['gold', 'id', 'judgments', 'prompt', 'response_a', 'response_b'])
>>> sorted({(j["judge"], j["order"]) for r in recs for j in r["judgments"]})[:2]
[('j1', 'ab'), ('j2', 'ba')]
>>> all(0.5 <= j["confidence"] <= 1.0 for r in recs for j in r["judgments"])
True
>>> s, c, truth = scores(1000, seed=0)
>>> s.shape, bool(abs(c.mean() - truth(0.0)) < 0.05)
((1000,), True)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Panel",
    "SimJudge",
    "draw_pairs",
    "scores",
    "shapes",
    "toe_shaped",
    "write_jsonl",
]


@dataclass(frozen=True)
class SimJudge:
    """One simulated judge (module docstring). ``orders``: "ab", "ba", "both" or "random"
    (one order per pair, drawn)."""

    name: str
    bias: float = 1.0
    skill: float = 1.5
    noise: float = 0.5
    temper: float = 1.0
    offset: float = 0.0
    orders: str = "both"
    decimals: int | None = None


@dataclass(frozen=True)
class Panel:
    """A named panel shape: judges plus the human tie rate."""

    name: str
    judges: tuple[SimJudge, ...]
    tie_rate: float = 0.0
    human: tuple[float, float] | None = None

    def draw(self, n_pairs: int, seed: int = 0) -> list[dict[str, Any]]:
        return draw_pairs(self.judges, n_pairs, seed, tie_rate=self.tie_rate, human=self.human)


def _sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _logit(p: NDArray[Any]) -> NDArray[Any]:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def draw_pairs(
    judges: Sequence[SimJudge],
    n_pairs: int,
    seed: int = 0,
    tie_rate: float = 0.0,
    human: tuple[float, float] | None = None,
    prefix: str = "s",
) -> list[dict[str, Any]]:
    """``n_pairs`` recorded-format records judged by ``judges`` (module docstring).

    ``human`` = (bias, skill): the human label is itself right (matches the latent truth the
    judges aim at) with probability ``0.5 + 0.5 * sigmoid(bias + skill * z)`` -- noisy human
    labels, more so on hard pairs, which caps the agreement any judge can reach."""
    rng = np.random.default_rng(seed)
    truth = np.where(rng.uniform(size=n_pairs) < 0.5, "A", "B")
    ease = rng.normal(size=n_pairs)
    label = truth
    if human is not None:
        p_human = 0.5 + 0.5 * _sigmoid(human[0] + human[1] * ease)
        label = np.where(rng.uniform(size=n_pairs) < p_human, truth, np.where(truth == "A", "B", "A"))
    gold = np.where(rng.uniform(size=n_pairs) < tie_rate, "tie", label)
    judgments: list[list[dict[str, Any]]] = [[] for _ in range(n_pairs)]
    for j in judges:
        p = 0.5 + 0.5 * _sigmoid(j.bias + j.skill * ease + j.noise * rng.normal(size=n_pairs))
        if j.orders == "both":
            per_pair: list[tuple[str, ...]] = [("ab", "ba")] * n_pairs
        elif j.orders == "random":
            per_pair = [("ab",) if u < 0.5 else ("ba",) for u in rng.uniform(size=n_pairs)]
        else:
            per_pair = [(j.orders,)] * n_pairs
        for order in ("ab", "ba"):
            asked = np.array([order in o for o in per_pair])
            right = rng.uniform(size=n_pairs) < p
            stated = _sigmoid(j.temper * _logit(2 * p - 1) + j.offset + 0.3 * rng.normal(size=n_pairs))
            conf = 0.5 + 0.5 * stated
            if j.decimals is not None:
                conf = np.round(conf, j.decimals)
            for i in np.flatnonzero(asked):
                side = truth[i] if right[i] else ("B" if truth[i] == "A" else "A")
                judgments[i].append(
                    {"judge": j.name, "order": order, "verdict": str(side), "confidence": float(conf[i])}
                )
    return [
        {
            "id": f"{prefix}{seed}-{i}",
            "prompt": f"simulated prompt {prefix}{seed}-{i}",
            "response_a": f"response a of {prefix}{seed}-{i}",
            "response_b": f"response b of {prefix}{seed}-{i}",
            "gold": str(gold[i]),
            "judgments": judgments[i],
        }
        for i in range(n_pairs)
    ]


def write_jsonl(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write records as a recorded-judgments JSONL file; returns the path."""
    path = Path(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def toe_shaped(seed: int = 0) -> Panel:
    """The Trust-or-Escalate shape: 3 judges of rising strength, ONE order each (j1 "ab",
    j2 "ba", j3 "ab" or a random order per pair, by seed), a continuous confidence per
    verdict; calibration quality (temper/offset) and strength varied with the seed so that a
    procedure is built for the shape, not for one draw."""
    rng = np.random.default_rng(10_000 + seed)
    temper = rng.uniform(0.6, 1.6, size=3)
    offset = rng.uniform(-0.5, 0.8, size=3)
    bias = np.array([0.2, 0.5, 0.9]) + rng.uniform(-0.3, 0.3, size=3)
    third = "ab" if seed % 2 == 0 else "random"
    judges = tuple(
        SimJudge(
            f"j{k + 1}",
            bias=float(bias[k]),
            skill=1.6,
            noise=0.6,
            temper=float(temper[k]),
            offset=float(offset[k]),
            orders=order,
        )
        for k, order in enumerate(("ab", "ba", third))
    )
    # Noisy humans (crowd preference votes): agreement at the very top stays near 0.92-0.95.
    human = (float(rng.uniform(1.4, 2.0)), float(rng.uniform(0.3, 0.5)))
    return Panel(f"toe-shaped-{seed}", judges, human=human)


def shapes() -> list[Panel]:
    """The simulation grid of the measurements: judges 1-5, one order or two, continuous or
    coarse confidences, calibrated or not, with and without human ties."""
    base = SimJudge("j1")
    return [
        Panel("1 judge, one order, calibrated", (replace(base, orders="ab"),)),
        Panel("1 judge, both orders, overconfident", (replace(base, temper=1.6, offset=0.6),)),
        Panel(
            "2 judges, one order, underconfident",
            (
                replace(base, orders="ab", temper=0.6),
                replace(base, name="j2", orders="ba", bias=0.5, temper=0.7),
            ),
        ),
        toe_shaped(0),
        toe_shaped(1),
        Panel(
            "3 judges, both orders, coarse (1 decimal), 10% ties",
            tuple(replace(base, name=f"j{k}", bias=0.3 * k, decimals=1) for k in range(1, 4)),
            tie_rate=0.1,
        ),
        Panel(
            "5 judges, both orders, mixed calibration",
            tuple(
                replace(base, name=f"j{k}", bias=0.2 * k, temper=(0.7, 1.0, 1.4, 1.2, 0.8)[k - 1])
                for k in range(1, 6)
            ),
        ),
    ]


def scores(
    n: int,
    seed: int = 0,
    slope: float = 3.0,
    base: float = 0.55,
    top: float = 0.97,
    decimals: int | None = None,
) -> tuple[NDArray[Any], NDArray[Any], Callable[[float], float]]:
    """(score, correct, truth) for threshold-only simulations: scores uniform on [0, 1]
    (rounded to ``decimals`` for ties), P(correct | s) = base + (top - base) * s**slope, and
    ``truth(t)`` the exact agreement of the population above threshold t (s >= t)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(size=n)
    if decimals is not None:
        s = np.round(s, decimals)
    correct = (rng.uniform(size=n) < base + (top - base) * s**slope).astype(int)

    def truth(t: float) -> float:
        if decimals is not None:  # the discrete grid: average over the grid points >= t
            grid = np.round(np.linspace(0, 1, 10**decimals + 1), decimals)
            w = np.where(np.isin(grid, [0.0, 1.0]), 0.5, 1.0)
            keep = grid >= t - 1e-12
            p = base + (top - base) * grid[keep] ** slope
            return float((w[keep] * p).sum() / w[keep].sum())
        t = min(max(t, 0.0), 1.0)
        if t >= 1.0:
            return top
        return float(base + (top - base) * (1 - t ** (slope + 1)) / ((slope + 1) * (1 - t)))

    return s, correct, truth
