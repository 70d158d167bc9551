"""In-memory evaluation of the gate (or cascade) on a recorded-judgments file.

Mirrors the benchmark: for each of ``splits`` random splits, a fraction ``cal_fraction`` of
the pairs with a gold label is the calibration set (their labels are the "usable gold
labels"), the rest is the test set. The gate is fitted on the calibration part only; on the
test part we measure coverage (share auto-accepted), agreement of the auto-accepted labels
with gold, and whether that agreement reached the target. The summary aggregates
``coverage_mean``, ``agreement_mean`` (over splits with at least one acceptance),
``guarantee_held_fraction`` (splits where test agreement >= target; a split accepting
nothing counts as held -- nothing wrong was accepted), ``gold_labels_used_mean`` and
``judge_calls_per_pair_mean`` (one call = one judge in one order).

What it measured on LLMBar (per gate setting: coverage, agreement, held, open, calls) is in
the README's measurements, with the command; figures in a docstring go stale as the code moves.

Note that the benchmark's "held" compares the *observed* test agreement with the target,
which is stricter than the guarantee (about the population rate): a gate whose true
agreement is exactly 0.9 "fails" half the time on a finite test set.

File format (recorded judgments, one JSON object per line): ``id``, ``gold`` ("A"/"B"/"tie",
optional), ``judgments``: list of {``judge``, ``order``, ``verdict``, optional
``confidence``, optional ``failed``/``error``}. Extra fields are ignored.

Example
-------
>>> import json, os, tempfile
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> path = os.path.join(tempfile.mkdtemp(), "toy.jsonl")
>>> with open(path, "w") as fh:
...     for i in range(200):
...         gold = str(rng.choice(["A", "B"]))
...         js = [{"judge": j, "order": o, "verdict": gold if rng.uniform() < acc else "AB".replace(gold, "")}
...               for j, acc in [("good", 0.95), ("ok", 0.8)] for o in ("ab", "ba")]
...         _ = fh.write(json.dumps({"id": f"p{i}", "gold": gold, "judgments": js}) + "\\n")
>>> judgments, gold = load_recorded(path)
>>> settings = GateSettings(alpha=1 - 0.9, delta=0.1, n_min=50)
>>> out = simulate(judgments, gold, settings, cal_fraction=0.5, splits=3, seed=0)
>>> sorted(out.summary)[:3]
['agreement_mean', 'coverage_mean', 'gold_labels_used_mean']
>>> out.summary["gold_labels_used_mean"]
100.0

Command line: ``prelabel bench simulate FILE [--target 0.9 --delta 0.1 --cal-fraction 0.5
--splits 20 --seed 0 --hard-rule --mode crossfit --method side --cascade J1 --cascade J2,J3 ...]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from calibration.cascade import fit_cascade
from calibration.features import build_features, calls_per_pair, judges_in
from calibration.gate import fit_gate
from calibration.settings import GateSettings

__all__ = ["SimulationResult", "load_recorded", "simulate"]


def load_recorded(path: str) -> tuple[pd.DataFrame, pd.Series]:
    """Read a recorded-judgments JSONL file into (long judgments table, gold Series by pair_id).

    Missing ``confidence`` becomes NaN; ``failed`` is True when the record says so or carries an
    ``error``. Pairs without a gold label get None in the Series.
    """
    rows: list[dict[str, Any]] = []
    gold: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            pid = rec["id"]
            gold[pid] = rec.get("gold")
            for j in rec.get("judgments", []):
                rows.append(
                    {
                        "pair_id": pid,
                        "judge": j["judge"],
                        "order": j.get("order", "ab"),
                        "verdict": j.get("verdict", "invalid"),
                        "confidence": j.get("confidence", np.nan),
                        "failed": bool(j.get("failed", False) or j.get("error")),
                    }
                )
    df = pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict", "confidence", "failed"])
    df["confidence"] = pd.to_numeric(df["confidence"], errors="coerce")
    return df, pd.Series(gold, dtype=object, name="gold")


@dataclass
class SimulationResult:
    per_split: pd.DataFrame
    summary: dict[str, float]


def simulate(
    judgments: pd.DataFrame,
    gold: pd.Series,
    settings: GateSettings,
    *,
    cal_fraction: float = 0.5,
    splits: int = 20,
    seed: int = 0,
    judges: Sequence[str] | None = None,
    cascade: Sequence[Sequence[str]] | None = None,
) -> SimulationResult:
    """Repeated calibration/test splits (module docstring). ``settings`` go to fit_gate /
    fit_cascade, with each split's index as its ``random_state``; a split "held" when its
    test agreement reaches ``settings.target_agreement``."""
    target = settings.target_agreement
    judges = judges_in(judgments) if judges is None else list(judges)
    fs = build_features(judgments, judges=judges)
    labels = gold.reindex(fs.pair_ids)
    usable = np.array([isinstance(v, str) and v in ("A", "B", "tie") for v in labels.to_numpy()])
    idx = np.flatnonzero(usable)
    y_all = labels.to_numpy(dtype=object)
    calls_all = calls_per_pair(judgments, judges=judges).reindex(fs.pair_ids).to_numpy()
    rng = np.random.default_rng(seed)
    records = []
    for split in range(splits):
        perm = rng.permutation(idx)
        n_cal = int(round(cal_fraction * len(perm)))
        cal_i, test_i = perm[:n_cal], perm[n_cal:]
        y_cal = pd.Series(y_all[cal_i], index=fs.pair_ids[cal_i])
        if cascade:
            model = fit_cascade(judgments, y_cal, cascade, replace(settings, random_state=split))
            dec = model.decide_table(judgments, pair_ids=fs.pair_ids[test_i])
            accepted = dec["decision"].to_numpy() == "accept"
            side = dec["label"].to_numpy(dtype=object)
            calls = dec["calls"].to_numpy(dtype=float)
            used, is_open, reason = model.n_labels_used, model.open, model.reason
        else:
            sub = fs_subset(fs, cal_i)
            gate = fit_gate(sub, y_cal, replace(settings, random_state=split))
            X_test = fs.X[test_i]
            accepted = gate.accept(X_test)
            side = gate.predict_side(X_test)
            calls = calls_all[test_i]
            used, is_open, reason = gate.n_labels_used, gate.open, gate.reason
        y_test = y_all[test_i]
        n_acc = int(accepted.sum())
        agree = float(np.mean(side[accepted] == y_test[accepted])) if n_acc else float("nan")
        records.append(
            {
                "split": split,
                "open": is_open,
                "n_cal": len(cal_i),
                "n_test": len(test_i),
                "gold_labels_used": used,
                "n_accepted": n_acc,
                "coverage": n_acc / max(len(test_i), 1),
                "agreement": agree,
                "held": bool(n_acc == 0 or agree >= target),
                "judge_calls_per_pair": float(np.mean(calls)) if len(calls) else 0.0,
                "reason": reason,
            }
        )
    per = pd.DataFrame(records)
    summary = {
        "coverage_mean": float(per["coverage"].mean()),
        "agreement_mean": float(per["agreement"].mean()) if per["agreement"].notna().any() else float("nan"),
        "guarantee_held_fraction": float(per["held"].mean()),
        "gold_labels_used_mean": float(per["gold_labels_used"].mean()),
        "judge_calls_per_pair_mean": float(per["judge_calls_per_pair"].mean()),
        "open_fraction": float(per["open"].mean()),
        "splits": float(splits),
    }
    return SimulationResult(per_split=per, summary=summary)


def fs_subset(fs: Any, rows: NDArray[Any]) -> Any:
    """Rows of a FeatureSet (same columns)."""
    from calibration.features import FeatureSet

    return FeatureSet(
        pair_ids=fs.pair_ids[rows],
        X=fs.X[rows],
        feature_names=fs.feature_names,
        judges=fs.judges,
        signed=fs.signed,
    )
