"""Coverage of the power-chosen start against the fixed start, per simulated judge shape.

Each shape of :func:`calibration.lab.judges.shapes` is drawn once (``n_pairs`` pairs), then
:func:`calibration.lab.simulate.simulate` runs the gate on repeated calibration/test splits with
the start chosen by power (the default) and with today's fixed start
(:func:`calibration.threshold.default_min_accept`). The table reports test coverage and the
share of splits whose test agreement reached the target, for both.

Command line (what the README's simulation table was made with)::

    python -m calibration.lab.gain [--pairs 500] [--splits 10] [--targets 0.85,0.9]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from calibration.lab.judges import Panel, shapes, write_jsonl
from calibration.lab.simulate import load_recorded, simulate
from calibration.settings import GateSettings
from calibration.threshold import default_min_accept

__all__ = ["coverage_gain"]


def coverage_gain(
    panels: list[Panel], n_pairs: int = 500, targets: tuple[float, ...] = (0.85, 0.9), splits: int = 10
) -> list[dict[str, Any]]:
    """One row per (shape, target): coverage and held for the power and the fixed start."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, panel in enumerate(panels):
            path = write_jsonl(panel.draw(n_pairs, seed=k), Path(tmp) / f"shape{k}.jsonl")
            judgments, gold = load_recorded(str(path))
            for target in targets:
                power_start = GateSettings(alpha=1 - target, delta=0.1, n_min=50)
                fixed_start = replace(power_start, min_accept=default_min_accept(1 - target, 0.1))
                fixed = simulate(judgments, gold, fixed_start, splits=splits, seed=7).summary
                power = simulate(judgments, gold, power_start, splits=splits, seed=7).summary
                rows.append(
                    {
                        "shape": panel.name,
                        "target": target,
                        "coverage_fixed": round(fixed["coverage_mean"], 3),
                        "coverage_power": round(power["coverage_mean"], 3),
                        "gain": round(power["coverage_mean"] - fixed["coverage_mean"], 3),
                        "held_fixed": round(fixed["guarantee_held_fraction"], 2),
                        "held_power": round(power["guarantee_held_fraction"], 2),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--targets", default="0.85,0.9")
    args = parser.parse_args()
    targets = tuple(float(t) for t in args.targets.split(","))
    rows = coverage_gain(shapes(), args.pairs, targets, args.splits)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
