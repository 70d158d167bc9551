import json

import numpy as np
import pandas as pd
import pytest

from calibration.cascade import CascadeModel, cascade_decide, fit_cascade
from calibration.features import build_features
from calibration.settings import GateSettings

STAGES = [["cheap"], ["mid"], ["strong"]]
ACC = {"cheap": 0.99, "mid": 0.99, "strong": 0.97}
SLOPE = {"cheap": 0.5, "mid": 0.35, "strong": 0.0}


def synth(
    n: int, rng: np.random.Generator, start: int = 0, flip_rate: float = 0.0
) -> tuple[pd.DataFrame, pd.Series]:
    """Easy pairs (d small) are judged right by everyone; hard ones only by the strong judge."""
    ids = np.arange(start, start + n)
    d = rng.uniform(size=n)
    truth = rng.choice([1, -1], size=n)
    human = np.where(rng.uniform(size=n) < 0.04 * d, -truth, truth)
    frames = []
    for judge, acc in ACC.items():
        for order in ("ab", "ba"):
            p = np.clip(acc - SLOPE[judge] * d, 0.5, 1.0)
            right = rng.uniform(size=n) < p
            sgn = np.where(right, truth, -truth)
            if order == "ba":
                sgn = np.where(rng.uniform(size=n) < flip_rate, -sgn, sgn)
            frames.append(
                pd.DataFrame(
                    {
                        "pair_id": ids,
                        "judge": judge,
                        "order": order,
                        "verdict": np.where(sgn > 0, "A>B", "B>A"),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True), pd.Series(np.where(human > 0, "A", "B"), index=ids)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    df, gold = synth(500, rng)
    return fit_cascade(df, gold, STAGES, GateSettings(alpha=0.1, delta=0.1, random_state=0)), df, gold


def test_cascade_opens_and_saves_calls(fitted):
    model, df, _ = fitted
    assert model.open and model.guaranteed_agreement >= 0.9
    assert len(model.calibrators) == 3 and model.stage_judges(1) == ["cheap", "mid"]
    assert model.expected_calls_per_pair < 6, "some pairs must stop before the strong judge"
    assert sum(model.stage_accept_rates[:2]) > 0, "some pairs accepted before the strong judge"
    assert sum(model.stage_accept_rates) == pytest.approx(model.expected_coverage)
    out = model.decide_table(df)
    assert set(out["decision"]) <= {"accept", "review"}
    assert out["calls"].max() == 6 and out["calls"].min() < 6
    stopped_early = out[out["stage"] < 2]
    assert (stopped_early["decision"] == "accept").all()


def test_decide_per_stage(fitted):
    model, df, _ = fitted
    for k in range(3):
        X = build_features(df, judges=model.stage_judges(k)).X
        d = cascade_decide(model, k, X)
        assert set(d) <= {"accept", "escalate", "review"}
        assert ("escalate" in d) == (k < 2)


def test_round_trip(fitted):
    model, df, _ = fitted
    same = CascadeModel.from_dict(json.loads(json.dumps(model.to_dict())))
    pd.testing.assert_frame_equal(same.decide_table(df), model.decide_table(df))


def test_closed_with_too_few_labels(fitted):
    _, df, gold = fitted
    model = fit_cascade(df, gold.iloc[:20], STAGES, GateSettings(alpha=0.1, delta=0.1))
    assert not model.open and "too few" in model.reason
    out = model.decide_table(df)
    assert (out["decision"] == "review").all() and (out["calls"] == 2).all(), "closed: stop after stage 0"


def test_hard_rule_sends_flipped_pairs_to_review_early():
    rng = np.random.default_rng(1)
    df, gold = synth(500, rng, flip_rate=0.1)
    model = fit_cascade(
        df, gold, STAGES, GateSettings(alpha=0.1, delta=0.1, hard_rule=True, hard_rule_judges=["cheap"])
    )
    out = model.decide_table(df).set_index("pair_id")
    from calibration.features import order_sensitive

    flagged = order_sensitive(df, judges=["cheap"]).reindex(out.index)
    assert flagged.any()
    assert (out.loc[flagged, "decision"] == "review").all()
    assert (out.loc[flagged, "stage"] == 0).all(), "a named judge's flip cannot be undone: stop there"


def test_a_panel_reversal_escalates_to_the_next_stage():
    rng = np.random.default_rng(1)
    df, gold = synth(500, rng, flip_rate=0.1)
    model = fit_cascade(df, gold, STAGES, GateSettings(alpha=0.1, delta=0.1, hard_rule=True))
    assert model.open
    out = model.decide_table(df).set_index("pair_id")
    from calibration.features import order_sensitive

    reversed_at = [order_sensitive(df, judges=model.stage_judges(k)).reindex(out.index) for k in range(3)]
    assert (out.loc[reversed_at[0], "stage"] > 0).all(), "more judges may outvote a reversal"
    assert (out.loc[reversed_at[0], "decision"] == "accept").any()
    for k in range(3):  # nothing is accepted where the panel called so far reverses
        assert not ((out["decision"] == "accept") & (out["stage"] == k) & reversed_at[k]).any()
    assert (out.loc[reversed_at[2] & (out["stage"] == 2), "decision"] == "review").all()


def test_cascade_guarantee_on_fresh_pairs():
    rng = np.random.default_rng(7)
    big_df, big_gold = synth(5_000, rng, start=10**6)
    reps, bad, opened = 20, 0, 0
    for r in range(reps):
        df, gold = synth(300, rng)
        model = fit_cascade(df, gold, STAGES, GateSettings(alpha=0.1, delta=0.1, random_state=r))
        if not model.open:
            continue
        opened += 1
        out = model.decide_table(big_df)
        acc = out["decision"] == "accept"
        agreement = np.mean(
            out.loc[acc, "label"].to_numpy() == big_gold.reindex(out.loc[acc, "pair_id"]).to_numpy()
        )
        bad += agreement < 0.9
    assert opened >= reps // 2
    assert bad / reps <= 0.1 + 3 * np.sqrt(0.09 / reps)


def _flags(gold: pd.Series, columns: dict[int, np.ndarray]) -> pd.DataFrame:
    """A never_accept table: one boolean column per stage."""
    out = pd.DataFrame(False, index=gold.index, columns=range(len(STAGES)))
    for k, flagged in columns.items():
        out[k] = flagged
    return out


def test_never_accept_stops_the_cascade_where_the_service_would():
    rng = np.random.default_rng(5)
    df, gold = synth(500, rng)
    everyone = np.ones(len(gold), dtype=bool)
    # Flagged at stage 0: the worker stops there and sends the pair to review -> nothing to accept.
    closed = fit_cascade(
        df, gold, STAGES, GateSettings(random_state=0), never_accept=_flags(gold, {0: everyone})
    )
    assert not closed.open and closed.expected_coverage == 0.0
    # Flagged at the last stage only: the earlier stages can still accept, the last cannot.
    early = fit_cascade(
        df, gold, STAGES, GateSettings(random_state=0), never_accept=_flags(gold, {2: everyone})
    )
    assert early.open and sum(early.stage_accept_rates[:2]) > 0.3
    assert early.stage_accept_rates[2] == 0.0
    # Half flagged at stage 0: at most the other half can be accepted, and they cost 2 calls.
    half = rng.uniform(size=len(gold)) < 0.5
    model = fit_cascade(df, gold, STAGES, GateSettings(random_state=0), never_accept=_flags(gold, {0: half}))
    unflagged = fit_cascade(df, gold, STAGES, GateSettings(random_state=0))
    assert model.expected_coverage <= 1 - half.mean() + 1e-9
    assert model.expected_coverage < unflagged.expected_coverage
