"""The threshold procedure's start chosen by power (calibration.threshold.power_start): it keeps
the guarantee on simulated judges whose truth is known, and it gains coverage where the old
fixed start lost it. Simulated judges come from calibration.lab.judges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibration.features import build_features
from calibration.gate import fit_gate
from calibration.lab.judges import Panel, SimJudge, draw_pairs, scores, toe_shaped
from calibration.lab.simulate import fs_subset, load_recorded
from calibration.metrics import clopper_pearson_upper
from calibration.settings import GateSettings
from calibration.threshold import default_min_accept, pass_limits, power_start, select_threshold

ALPHA, DELTA = 0.15, 0.1


def test_pass_limits_are_the_clopper_pearson_test() -> None:
    """The simulation's shortcut (a count limit per n) passes exactly the k the bound passes."""
    for alpha, delta in [(0.1, 0.1), (0.15, 0.1), (0.2, 0.05)]:
        n = np.arange(1, 400)
        limits = pass_limits(n, alpha, delta)
        for size, k_max in zip(n, limits, strict=True):
            ks = np.arange(size + 1)
            passes = np.asarray(clopper_pearson_upper(ks, np.full(ks.size, size), delta)) <= alpha
            assert k_max == (ks[passes].max() if passes.any() else -1), (alpha, delta, size)


def test_power_start_moves_down_on_a_barely_good_top_and_stays_up_on_a_clean_one() -> None:
    n = 300
    flat = np.linspace(1.0, 0.0, n)  # distinct scores, most confident first
    # Continuous confidences: the top is only ~0.92 right, the target 0.85.
    barely = 0.92 - 0.1 * np.linspace(0, 1, n) ** 2
    late = power_start(flat, barely, ALPHA, DELTA)
    assert late.min_accept > 2 * default_min_accept(ALPHA, DELTA)
    assert late.expected_coverage > late.default_expected_coverage + 0.2
    # A clean top (all right) over a bad bulk: start early, the top is where the coverage is.
    clean = np.where(np.arange(n) < 60, 0.995, 0.5)
    early = power_start(flat, clean, ALPHA, DELTA)
    assert early.min_accept <= 60 and early.expected_coverage >= 0.15


def test_power_start_ignores_the_labels() -> None:
    """Same scores and estimates, opposite labels: the same start (validity rests on it)."""
    s, correct, _ = scores(300, seed=4)
    p = 0.55 + 0.42 * s**3
    first = select_threshold(s, correct, ALPHA, DELTA, expected=p)
    second = select_threshold(s, 1 - correct, ALPHA, DELTA, expected=p)
    tested = np.flatnonzero(first.curve["tested"])
    assert tested.size and tested[0] == np.flatnonzero(second.curve["tested"])[0]


@pytest.mark.parametrize(
    ("decimals", "bias"),
    [(None, 0.0), (None, 0.08), (1, 0.0)],
    ids=["continuous-calibrated", "continuous-overconfident-estimate", "coarse-ties"],
)
def test_the_guarantee_holds_in_1_minus_delta_of_draws(decimals: int | None, bias: float) -> None:
    """Threshold-only simulation, truth known in closed form: the accepted region's true
    agreement is >= 1 - alpha in >= 1 - delta of the draws (binomial slack for 300 draws),
    also when the label-free estimate is overconfident (it costs coverage, never validity)."""
    draws, violated, opened = 300, 0, 0
    for seed in range(draws):
        s, correct, truth = scores(250, seed=seed, decimals=decimals)
        p = np.clip(0.55 + 0.42 * s**3 + bias, 0, 1)
        res = select_threshold(s, correct, ALPHA, DELTA, expected=p)
        if res.open:
            opened += 1
            violated += truth(res.threshold) < 1 - ALPHA
    assert opened > draws // 4  # the test means something only where the gate opens
    assert violated / draws <= DELTA + 2.5 * np.sqrt(DELTA * (1 - DELTA) / draws), violated


def _population(panel: Panel, n: int, seed: int, tmp_path) -> tuple[pd.DataFrame, pd.Series]:
    from calibration.lab.judges import write_jsonl

    return load_recorded(str(write_jsonl(draw_pairs(panel.judges, n, seed, panel.tie_rate, panel.human),
                                         tmp_path / f"p{seed}.jsonl")))  # fmt: skip


@pytest.mark.parametrize(
    "panel",
    [
        toe_shaped(1),
        Panel(
            "2 judges, both orders, coarse, ties", (SimJudge("a", decimals=1), SimJudge("b", bias=0.4)), 0.08
        ),
    ],
    ids=lambda p: p.name,
)
def test_the_fitted_gate_keeps_its_guarantee_on_simulated_judges(panel: Panel, tmp_path) -> None:
    """The whole gate (cross-fitted calibrator + power start): calibration labels drawn from a
    population of 6,000 pairs of the same judges, the true agreement of what the gate accepts
    read on the whole population; below target in <= delta of 30 draws (binomial slack)."""
    judgments, gold = _population(panel, 6_000, 0, tmp_path)
    fs = build_features(judgments)
    y = gold.reindex(fs.pair_ids).to_numpy(dtype=object)
    rng = np.random.default_rng(0)
    draws, violated, opened = 30, 0, 0
    for d in range(draws):
        cal = rng.choice(len(y), size=250, replace=True)  # iid draws from the population
        gate = fit_gate(fs_subset(fs, cal), pd.Series(y[cal], index=fs.pair_ids[cal]),
                        GateSettings(alpha=ALPHA, delta=DELTA, random_state=d))  # fmt: skip
        if not gate.open:
            continue
        opened += 1
        acc = gate.accept(fs.X)
        violated += float(np.mean(gate.predict_side(fs.X)[acc] == y[acc])) < 1 - ALPHA
    assert opened >= draws // 3, opened
    assert violated / draws <= DELTA + 2.5 * np.sqrt(DELTA * (1 - DELTA) / draws), violated


def test_power_start_covers_more_than_the_fixed_start_on_the_toe_shape(tmp_path) -> None:
    """The reason it exists: on Trust-or-Escalate-shaped judges (one order each, continuous
    confidences) the fixed start closes the gate on the top block; the power start covers more."""
    covered = {"power": [], "fixed": []}
    for seed in range(3):
        judgments, gold = _population(toe_shaped(seed), 500, seed, tmp_path)
        fs = build_features(judgments)
        y = gold.reindex(fs.pair_ids).to_numpy(dtype=object)
        rng = np.random.default_rng(seed)
        for split in range(3):
            perm = rng.permutation(len(y))
            cal, test = perm[:250], perm[250:]
            labels = pd.Series(y[cal], index=fs.pair_ids[cal])
            for name, start in [("power", None), ("fixed", default_min_accept(ALPHA, DELTA))]:
                settings = GateSettings(alpha=ALPHA, delta=DELTA, min_accept=start, random_state=split)
                gate = fit_gate(fs_subset(fs, cal), labels, settings)
                covered[name].append(gate.accept(fs.X[test]).mean())
    assert np.mean(covered["power"]) > np.mean(covered["fixed"]) + 0.1, covered
