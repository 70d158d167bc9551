"""Trust or Escalate baseline (calibration/lab/toe.py): signals, the cascade, both variants'
guarantees on simulated draws with known truth, and `bench replay --baseline toe`."""

from __future__ import annotations

import doctest
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import api.tools.bench_replay as bench_module
from api.tools.bench_replay import BASELINE_KEYS, bench_replay
from calibration.lab import toe
from calibration.lab.toe import RULES, VARIANTS, TrustOrEscalate, judge_signals

SAMPLE = Path(__file__).resolve().parents[1] / "api" / "sample_data" / "llmbar_sample.jsonl"
COLUMNS = ["pair_id", "judge", "order", "verdict", "confidence"]

# A judge: confidence levels, the probability of each, and its true agreement at each level.
Judge = tuple[list[float], list[float], list[float]]


def test_doctests() -> None:
    assert doctest.testmod(toe).failed == 0


def test_signals_follow_the_documented_rules() -> None:
    rows = [
        (1, "j", "ab", "A", None), (1, "j", "ba", "A>>B", None),  # both orders agree: A, 1.0
        (2, "j", "ab", "A", None), (2, "j", "ba", "B", None),  # orders disagree: no side, 0.5
        (3, "j", "ab", "B", None),  # one order, no own confidence: B, unusable (NaN)
        (4, "j", "ab", "tie", 0.8), (4, "j", "ba", "tie", 0.6),  # own confidence: mean 0.7
        (5, "j", "ab", "B", 0.9), (5, "j", "ba", "invalid", None),  # invalid order ignored: 0.9
        (6, "j", "ab", "invalid", None), (6, "j", "ba", "invalid", None),  # nothing valid
        (7, "k", "ab", "A", None),  # j never asked: no side, NaN, 0 calls
    ]  # fmt: skip
    signals = judge_signals(pd.DataFrame(rows, columns=COLUMNS), ["j", "k"])
    assert signals.side["j"].tolist() == ["A", None, "B", "tie", "B", None, None]
    conf = signals.confidence["j"].tolist()
    assert conf[:2] == [1.0, 0.5] and math.isnan(conf[2]) and conf[3:5] == pytest.approx([0.7, 0.9])
    assert math.isnan(conf[5]) and math.isnan(conf[6])
    assert signals.calls["j"].tolist() == [2, 2, 1, 2, 2, 2, 0] and signals.calls["k"].sum() == 1


def test_predict_escalates_in_order_and_counts_the_calls_spent() -> None:
    rows = [
        (1, "cheap", "ab", "A", None), (1, "cheap", "ba", "A", None), (1, "dear", "ab", "B", None),
        (1, "dear", "ba", "B", None),  # cheap is swap-consistent: decided at stage 0, 2 calls
        (2, "cheap", "ab", "A", None), (2, "cheap", "ba", "B", None), (2, "dear", "ab", "B", None),
        (2, "dear", "ba", "B", None),  # cheap flips, dear decides: 4 calls
        (3, "cheap", "ab", "A", None), (3, "cheap", "ba", "B", None), (3, "dear", "ab", "A", None),
        (3, "dear", "ba", "B", None),  # both flip: abstains after every call
    ]  # fmt: skip
    model = TrustOrEscalate(judges=["cheap", "dear"])
    model.judges_, model.thresholds_ = ["cheap", "dear"], [1.0, 1.0]
    out = model.predict(pd.DataFrame(rows, columns=COLUMNS))
    assert out["side"].tolist() == ["A", "B", None]
    assert out["stage"].tolist() == [0, 1, -1] and out["judge"].tolist() == ["cheap", "dear", None]
    assert out["calls"].tolist() == [2.0, 4.0, 4.0]


def _draw(rng: np.random.Generator, n: int, judges: dict[str, Judge]) -> tuple[pd.DataFrame, pd.Series]:
    """n pairs, each judge asked once with its own confidence (a level drawn with its
    probability) and right with that level's agreement, independently across judges."""
    truth = rng.choice(np.array(["A", "B"], dtype=object), n)
    other = np.where(truth == "A", "B", "A")
    frames = []
    for name, (levels, probs, agreement) in judges.items():
        level = rng.choice(len(levels), n, p=probs)
        right = rng.uniform(size=n) < np.asarray(agreement)[level]
        verdict = np.where(right, truth, other)
        confidence = np.asarray(levels)[level]
        frames.append(
            pd.DataFrame(
                {
                    "pair_id": np.arange(n),
                    "judge": name,
                    "order": "ab",
                    "verdict": verdict,
                    "confidence": confidence,
                }
            )
        )
    return pd.concat(frames, ignore_index=True), pd.Series(truth, index=np.arange(n), dtype=object)


def _population_risk(model: TrustOrEscalate, judges: dict[str, Judge]) -> float:
    """The cascade's exact disagreement rate among the pairs it decides, from the known truth
    (judges independent: judge k's region risk does not depend on earlier confidences)."""
    reach, decided, errors = 1.0, 0.0, 0.0
    for name, threshold in zip(model.judges_, model.thresholds_, strict=True):
        if threshold is None:
            continue
        levels, probs, agreement = (np.asarray(x) for x in judges[name])
        take = levels >= threshold
        decided += reach * probs[take].sum()
        errors += reach * (probs[take] * (1 - agreement[take])).sum()
        reach *= 1 - probs[take].sum()
    return errors / decided if decided else 0.0


# Both judges have a region whose risk is just under alpha = 0.1 next to one just over it.
NEAR_THE_EDGE: dict[str, Judge] = {
    "cheap": ([0.95, 0.85, 0.7, 0.6], [0.25, 0.25, 0.25, 0.25], [0.93, 0.88, 0.8, 0.65]),
    "strong": ([0.95, 0.8, 0.6], [0.3, 0.3, 0.4], [0.97, 0.9, 0.75]),
}


def test_the_valid_variant_keeps_its_guarantee_on_simulated_draws() -> None:
    rng = np.random.default_rng(11)
    alpha, delta, draws = 0.1, 0.1, 200
    violated = decided_any = 0
    for _ in range(draws):
        table, gold = _draw(rng, 400, NEAR_THE_EDGE)
        model = TrustOrEscalate(alpha, delta, "toe-valid", ["cheap", "strong"]).fit(table, gold)
        assert model.delta_per_judge_ == pytest.approx(delta / 2)
        assert {s["rule"] for s in model.stages_} <= set(RULES[:3])
        violated += _population_risk(model, NEAR_THE_EDGE) > alpha
        decided_any += any(t is not None for t in model.thresholds_)
    assert violated / draws <= delta
    assert decided_any / draws > 0.9  # not vacuous: it does decide pairs


# One judge whose most confident block (half the pairs) agrees only 87% of the time.
TOP_BLOCK_TOO_WEAK: dict[str, Judge] = {"only": ([0.9, 0.6], [0.5, 0.5], [0.87, 0.7])}


def test_the_published_variant_keeps_a_failing_top_block_and_breaks_its_guarantee() -> None:
    rng = np.random.default_rng(5)
    alpha, delta, draws = 0.1, 0.1, 200
    violated = {v: 0 for v in VARIANTS}
    for _ in range(draws):
        table, gold = _draw(rng, 300, TOP_BLOCK_TOO_WEAK)
        for variant in VARIANTS:
            model = TrustOrEscalate(alpha, delta, variant).fit(table, gold)  # type: ignore[arg-type]
            violated[variant] += _population_risk(model, TOP_BLOCK_TOO_WEAK) > alpha
    assert violated["toe-valid"] / draws <= delta
    assert violated["toe-published"] / draws > 0.9  # ~always: the top block is kept


def test_published_reuses_the_previous_threshold_where_the_valid_rule_decides_nothing() -> None:
    rng = np.random.default_rng(2)
    judges: dict[str, Judge] = {
        "first": ([1.0, 0.6], [0.6, 0.4], [0.99, 0.9]),
        "second": ([1.0], [1.0], [0.6]),
    }
    table, gold = _draw(rng, 60, judges)  # few pairs reach "second": below min_count
    fitted = {v: TrustOrEscalate(0.1, 0.1, v, ["first", "second"]).fit(table, gold) for v in VARIANTS}  # type: ignore[arg-type]
    rules = {v: [s["rule"] for s in m.stages_] for v, m in fitted.items()}
    assert rules["toe-valid"][1] == "no candidate decides min_count pairs"
    assert fitted["toe-valid"].thresholds_[1] is None
    assert rules["toe-published"] == ["last passing candidate", "previous judge's threshold reused untested"]
    assert fitted["toe-published"].thresholds_ == [1.0, 1.0]  # "second" decides its pairs untested


def test_bench_replay_scores_the_baseline_on_the_service_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], list[str]]] = []
    real = bench_module._toe_split

    def spy(table: pd.DataFrame, gold: pd.Series, cal: list[str], test: list[str], *rest: Any) -> Any:
        seen.append((cal, test))
        return real(table, gold, cal, test, *rest)

    monkeypatch.setattr(bench_module, "_toe_split", spy)
    judges = ["gpt-4/vanilla_norules", "gpt-3.5-turbo/vanilla_norules"]
    result = bench_replay(str(SAMPLE), judges=judges, target_agreement=0.8, splits=2, seed=3, n_min=50,
                          baseline="toe")  # fmt: skip
    baseline = result["baseline"]
    assert set(BASELINE_KEYS) <= set(baseline) and baseline["name"] == "toe-valid"
    assert set(baseline["variants"]) == set(VARIANTS)
    assert baseline["judge_order"] == ["gpt-3.5-turbo/vanilla_norules", "gpt-4/vanilla_norules"]
    for variant, numbers in baseline["variants"].items():
        assert numbers["name"] == variant and set(BASELINE_KEYS) <= set(numbers)
        assert len(numbers["per_split"]) == 2 and 0.0 <= numbers["coverage_mean"] <= 1.0
        assert 0 < numbers["judge_calls_per_pair_mean"] <= 4
    # The splits are the service's: the seed's permutations, calibration part first.
    ids = [p.id for p in bench_module._with_gold(str(SAMPLE))]
    rng = np.random.default_rng(3)
    for split in range(2):
        order = [ids[i] for i in rng.permutation(len(ids))]
        n_cal = result["per_split"][split]["gold_labels_used"]
        for cal, test in seen[2 * split : 2 * split + 2]:  # both variants
            assert (cal, test) == (order[:n_cal], order[n_cal:])
    assert result["per_split"][0]["test_pairs"] == len(seen[0][1])
