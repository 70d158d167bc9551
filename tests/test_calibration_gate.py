import json

import numpy as np
import pandas as pd
import pytest

from calibration.calibrator import PairCalibrator
from calibration.features import build_features, order_sensitive
from calibration.gate import GateModel, fit_gate
from calibration.settings import GateSettings

JUDGE_ACC = {"j95": 0.95, "j85": 0.85, "j75": 0.75, "j65": 0.65}


def synth(n: int, rng: np.random.Generator, start: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Pairs with a latent difficulty d: humans disagree with the truth more on hard pairs
    (up to 20%), judges are less accurate on them. Verdicts in both orders, some strong."""
    ids = np.arange(start, start + n)
    d = rng.uniform(size=n)
    truth = rng.choice([1, -1], size=n)
    human = np.where(rng.uniform(size=n) < 0.2 * d**2, -truth, truth)
    frames = []
    for judge, acc in JUDGE_ACC.items():
        for order in ("ab", "ba"):
            right = rng.uniform(size=n) < np.clip(acc - 0.3 * d, 0.5, 1.0)
            sgn = np.where(right, truth, -truth)
            strong = rng.uniform(size=n) < 0.5 * (1 - d)
            verdict = np.where(sgn > 0, np.where(strong, "A>>B", "A>B"), np.where(strong, "B>>A", "B>A"))
            frames.append(pd.DataFrame({"pair_id": ids, "judge": judge, "order": order, "verdict": verdict}))
    gold = pd.Series(np.where(human > 0, "A", "B"), index=ids, dtype=object)
    return pd.concat(frames, ignore_index=True), gold


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    df, gold = synth(400, rng)
    return build_features(df), gold, df


@pytest.mark.parametrize("method", ["side", "two_stage", "vote"])
def test_json_round_trip(data, method):
    fs, gold, _ = data
    gate = fit_gate(fs, gold, GateSettings(alpha=0.1, delta=0.1, n_min=50, method=method, random_state=0))
    d = json.loads(json.dumps(gate.to_dict()))  # must be plain JSON, no numpy, no NaN/inf
    same = GateModel.from_dict(d)
    np.testing.assert_allclose(same.confidence(fs.X), gate.confidence(fs.X))
    assert list(same.predict_side(fs.X)) == list(gate.predict_side(fs.X))
    assert (same.threshold, same.open, same.guaranteed_agreement) == (
        gate.threshold,
        gate.open,
        gate.guaranteed_agreement,
    )
    assert same.n_labels_used == 400 and len(same.cal_confidence) == len(gate.cal_confidence)
    np.testing.assert_array_equal(same.accept(fs.X), gate.accept(fs.X))


def test_fitted_gate_is_sensible(data):
    fs, gold, _ = data
    gate = fit_gate(fs, gold, GateSettings(alpha=0.1, delta=0.1, n_min=50, random_state=0))
    assert gate.open and gate.guaranteed_agreement >= 0.9 and 0 < gate.expected_coverage < 1
    assert gate.accepts(gate.threshold) and not gate.accepts(gate.threshold - 1e-6)
    conf = gate.confidence(fs)
    assert conf.shape == (400,) and ((conf >= 0) & (conf <= 1)).all()
    assert set(gate.predict_side(fs.X)) <= {"A", "B"}, "no ties in gold -> never predict tie"
    assert gate.cal_confidence.shape == gate.cal_correct.shape == (400,)


def test_closed_with_too_few_labels(data):
    fs, gold, _ = data
    few = gold.iloc[:30]
    gate = fit_gate(fs, few, GateSettings(alpha=0.1, delta=0.1, n_min=50))
    assert not gate.open and gate.threshold is None and gate.n_labels_used == 30
    assert "too few usable labels" in gate.reason
    assert not gate.accept(fs.X).any()
    assert GateModel.from_dict(json.loads(json.dumps(gate.to_dict()))).reason == gate.reason


def test_unusable_labels_are_ignored(data):
    fs, gold, _ = data
    noisy = gold.copy().astype(object)
    noisy.iloc[:100] = None
    noisy.iloc[100:110] = "both bad"
    gate = fit_gate(fs, noisy, GateSettings(alpha=0.1, delta=0.1, n_min=50))
    assert gate.n_labels_used == 290


def test_hard_rule_never_accepts_order_sensitive(data):
    fs, gold, df = data
    gate = fit_gate(fs, gold, GateSettings(alpha=0.1, delta=0.1, hard_rule=True, random_state=0))
    flagged = order_sensitive(df).reindex(fs.pair_ids).to_numpy()
    assert flagged.any() and not (gate.accept(fs.X) & flagged).any()
    assert np.isneginf(gate.cal_confidence[flagged]).all()
    # hard_rule_judges adds the named judges' own flips to the panel's reversals.
    g2 = fit_gate(
        fs, gold, GateSettings(alpha=0.1, delta=0.1, hard_rule=True, hard_rule_judges=["j65"], random_state=0)
    )
    assert (g2.hard_flags(fs.X) >= gate.hard_flags(fs.X)).all()
    assert g2.hard_flags(fs.X).sum() > gate.hard_flags(fs.X).sum()


def test_split_mode_and_ties_in_gold(data):
    fs, gold, _ = data
    g = gold.copy()
    g.iloc[::10] = "tie"
    gate = fit_gate(fs, g, GateSettings(alpha=0.1, delta=0.1, mode="split", random_state=0))
    assert gate.mode == "split" and gate.n_threshold_labels == 200 and gate.n_labels_used == 400
    assert isinstance(gate.calibrator, PairCalibrator)


def test_wrong_feature_columns_rejected(data):
    fs, gold, df = data
    gate = fit_gate(fs, gold, GateSettings(alpha=0.1, delta=0.1))
    other = build_features(df, judges=["j95", "j85"])
    with pytest.raises(ValueError):
        gate.confidence(other)


@pytest.mark.parametrize("mode", ["crossfit", "split"])
def test_guarantee_holds_on_fresh_pairs(mode):
    """Known-truth check of the end-to-end guarantee, including cross-fitting (approximate in theory).

    For each of many calibration sets, fit the gate and measure the agreement of its
    auto-accepted labels on a large fresh sample from the same distribution.
    """
    rng = np.random.default_rng(42)
    big_df, big_gold = synth(20_000, rng, start=10**6)
    big_fs = build_features(big_df)
    big_y = big_gold.reindex(big_fs.pair_ids).to_numpy()
    reps, bad, opened = 60, 0, 0
    for r in range(reps):
        df, gold = synth(300, rng)
        gate = fit_gate(
            build_features(df), gold, GateSettings(alpha=0.1, delta=0.1, mode=mode, random_state=r)
        )
        if not gate.open:
            continue
        opened += 1
        acc = gate.accept(big_fs.X)
        agreement = np.mean(gate.predict_side(big_fs.X)[acc] == big_y[acc])
        bad += agreement < 0.9
    assert opened >= reps // 3
    assert bad / reps <= 0.1 + 3 * np.sqrt(0.09 / reps)


def test_never_accept_flags_are_respected_in_fit_and_accept(data):
    fs, gold, _ = data
    block = pd.Series(np.arange(len(fs.pair_ids)) % 3 == 0, index=fs.pair_ids)
    gate = fit_gate(fs, gold, GateSettings(alpha=0.1, delta=0.1, random_state=0), never_accept=block)
    blocked = block.reindex(fs.pair_ids).to_numpy()
    assert np.isneginf(gate.cal_confidence[blocked]).all()
    assert not (gate.accept(fs.X, never_accept=blocked) & blocked).any()
    with pytest.raises(ValueError):
        fit_gate(fs, gold, GateSettings(alpha=0.1, delta=0.1), never_accept=np.zeros(3, dtype=bool))


@pytest.mark.parametrize(
    "bad",
    [
        {"alpha": 0.0},
        {"delta": 1.0},
        {"mode": "bagged"},
        {"method": "median"},
        {"split_fraction": 1.0},
        {"starts": 0},
        {"n_splits": 1},
        {"min_accept": 0},
        {"review_below": 1.5},
        {"hard_rule_judges": "j65"},
    ],
)
def test_gate_settings_reject_bad_values_before_any_fit(bad: dict) -> None:
    with pytest.raises(ValueError):
        GateSettings(**bad)


def test_gate_settings_are_frozen_and_keep_judge_names_as_a_tuple() -> None:
    settings = GateSettings(hard_rule=True, hard_rule_judges=["j65"])
    assert settings.hard_rule_judges == ("j65",) and hash(settings)
    with pytest.raises(AttributeError):
        settings.alpha = 0.2  # type: ignore[misc]
