"""The pieces of ``prelabel bench replay`` beside the service's own numbers: Trust or Escalate
as a baseline on the same splits (:mod:`calibration.lab.toe`, fitted and scored in-process on the
recorded file) and the bootstrap population's drawn copies (see :mod:`api.tools.bench_replay`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from calibration.lab.toe import TrustOrEscalate, Variant
from judge.costs import price_per_token
from judge.recorded import RecordedPair

BASELINES = ("toe",)
POPULATIONS = ("split", "bootstrap")
BASELINE_KEYS = (
    "name",
    "coverage_mean",
    "agreement_mean",
    "guarantee_held_fraction",
    "guarantee_held_population_fraction",
    "judge_calls_per_pair_mean",
)


BOOTSTRAP_SEP = "~draw"  # a drawn copy's client id: "<file id>~draw<k>"


def bootstrap_pairs(pairs: list[RecordedPair], drawn: np.ndarray) -> list[RecordedPair]:
    """The pairs at positions ``drawn`` (with repeats), each under its own client id: a pair
    drawn twice is two labelled pairs of the same content (the replay judges serve both)."""
    return [dataclasses.replace(pairs[i], id=f"{pairs[i].id}{BOOTSTRAP_SEP}{k}") for k, i in enumerate(drawn)]


def _source_id(client_id: str) -> str:
    return client_id.split(BOOTSTRAP_SEP)[0]


def _agreement(accepted: list[dict[str, Any]], gold: dict[str, str]) -> float | None:
    agree = [r["chosen"] == gold[_source_id(r["client_id"])] for r in accepted]
    return float(np.mean(agree)) if agree else None


def _recorded_table(pairs: list[RecordedPair], judges: list[str]) -> pd.DataFrame:
    """The long judgments table (:mod:`calibration.features`) of ``judges`` on ``pairs``."""
    keep = set(judges)
    rows = [
        (p.id, j.judge, j.order, j.verdict, j.confidence)
        for p in pairs
        for j in p.judgments
        if j.judge in keep
    ]
    return pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict", "confidence"])


def cheapest_first(pairs: list[RecordedPair], judges: list[str]) -> list[str]:
    """The baseline's cascade order: litellm's price per token (:func:`judge.costs.price_per_token`,
    which prices "gpt-4/vanilla_norules" as gpt-4), cheapest first; judges with no known price
    last (as :mod:`judge.costs` puts them), in the order they first appear in the file."""
    first: dict[str, int] = {}
    for pair in pairs:
        for judgment in pair.judgments:
            first.setdefault(judgment.judge, len(first))

    def key(judge: str) -> tuple[bool, float, int]:
        price = price_per_token(judge)
        return price is None, price or 0.0, first.get(judge, len(first))

    return sorted(judges, key=key)


def _toe_split(
    table: pd.DataFrame,
    gold: pd.Series,
    cal_ids: list[str],
    test_ids: list[str],
    variant: Variant,
    judges: list[str],
    target_agreement: float,
    delta: float,
    out_of_bag: set[str] | None = None,
) -> dict[str, Any]:
    """Trust or Escalate fitted on one split's calibration pairs, scored on its test pairs the
    way the service is: coverage, agreement of the decided pairs, guarantee held, calls.
    ``out_of_bag`` (bootstrap populations): the test pairs are the whole file, "held" reads
    the pairs never drawn and "population_guarantee_held" all of them, as the service's do."""
    model = TrustOrEscalate(1.0 - target_agreement, delta, variant, judges)
    model.fit(table[table["pair_id"].isin(cal_ids)], gold)
    out = model.predict(table[table["pair_id"].isin(test_ids)])
    decided = out[out["stage"] >= 0]
    right = decided["side"] == gold.reindex(decided.index)
    population = float(right.mean()) if len(decided) else None
    n_test = max(1, len(test_ids))  # a test pair with no recorded judgment abstains at no cost
    extra: dict[str, Any] = {}
    if out_of_bag is not None:
        extra["population_guarantee_held"] = population is None or population >= target_agreement
        right = right[right.index.isin(out_of_bag)]
        n_test = max(1, sum(1 for t in test_ids if t in out_of_bag))
        decided = decided[decided.index.isin(out_of_bag)]
    agreement = float(right.mean()) if len(right) else None
    return {
        "coverage": len(decided) / n_test,
        "agreement": agreement,
        "guarantee_held": agreement is None or agreement >= target_agreement,
        **extra,
        "judge_calls_per_pair": float(out["calls"].sum()) / n_test,
        "thresholds": dict(zip(model.judges_, model.thresholds_, strict=True)),
        "rules": {s["judge"]: s["rule"] for s in model.stages_},
    }


def _baseline_summary(per_variant: dict[str, list[dict[str, Any]]], judges: list[str]) -> dict[str, Any]:
    """The baseline's JSON: each variant's means over splits, the valid one also at the top."""
    variants: dict[str, dict[str, Any]] = {}
    for variant, splits in per_variant.items():
        agreements = [s["agreement"] for s in splits if s["agreement"] is not None]
        variants[variant] = {
            "name": variant,
            "coverage_mean": float(np.mean([s["coverage"] for s in splits])),
            "agreement_mean": float(np.mean(agreements)) if agreements else None,
            "guarantee_held_fraction": float(np.mean([s["guarantee_held"] for s in splits])),
            "guarantee_held_population_fraction": float(
                np.mean([s["population_guarantee_held"] for s in splits])
            )
            if splits and "population_guarantee_held" in splits[0]
            else None,
            "judge_calls_per_pair_mean": float(np.mean([s["judge_calls_per_pair"] for s in splits])),
            # How each judge's threshold was set, counted over splits (calibration.lab.toe.RULES).
            "rules": dict(Counter(rule for s in splits for rule in s["rules"].values())),
            "per_split": splits,
        }
    valid = variants["toe-valid"]
    return {
        **{k: valid[k] for k in BASELINE_KEYS},
        "family": "toe",
        "judge_order": judges,
        "variants": variants,
    }
