"""The label-free shift detector (calibration/shift.py) on simulated streams: false alarms at most
delta on unshifted streams, quick alarms on shifted ones, state that round-trips."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest

from calibration import shift as shift_module
from calibration.shift import HISTORY_POINTS, ShiftDetector, pair_statistics

DELTA = 0.05


def sample(rng: np.random.Generator, n: int, flip_p: float = 0.15, score_mean: float = 0.8) -> pd.DataFrame:
    """Three statistics like the service's: a count (order flips of 4 judges), a side (-1/0/1)
    and a continuous score on the 0.01 grid."""
    return pd.DataFrame(
        {
            "flips": rng.binomial(4, flip_p, size=n),
            "side": rng.choice([-1, 0, 1], p=[0.45, 0.1, 0.45], size=n),
            "score": np.round(np.clip(rng.normal(score_mean, 0.1, size=n), 0, 1), 2),
        }
    )


def test_doctests() -> None:
    assert doctest.testmod(shift_module).failed == 0


def test_false_alarm_rate_at_most_delta_on_unshifted_streams() -> None:
    # Checked after every item of a 600-item stream, 400 times: Ville's bound holds over the
    # whole stream, so the share of streams that ever alarm must stay <= delta (up to noise).
    rng = np.random.default_rng(0)
    reps = 400
    alarms = sum(
        ShiftDetector(delta=DELTA, seed=r).fit(sample(rng, 150)).update_many(sample(rng, 600))
        for r in range(reps)
    )
    print(f"false alarms: {alarms}/{reps}")
    assert alarms / reps <= DELTA + 2 * np.sqrt(DELTA * (1 - DELTA) / reps)


def test_false_alarms_stay_rare_with_a_tiny_reference_and_a_long_stream() -> None:
    # Each stream item joins the bag it is ranked against, so a small calibration sample does
    # not make a long stream drift away from it (a fixed reference would: its sampling error
    # alone is a "shift" a long enough stream detects).
    rng = np.random.default_rng(1)
    reps = 100
    alarms = sum(
        ShiftDetector(delta=DELTA, seed=r).fit(sample(rng, 30)).update_many(sample(rng, 1500))
        for r in range(reps)
    )
    assert alarms / reps <= DELTA + 2 * np.sqrt(DELTA * (1 - DELTA) / reps)


@pytest.mark.parametrize(
    "shifted, max_median, max_p90",
    [
        ({"flip_p": 0.45}, 20, 35),  # judges flip far more often
        ({"score_mean": 0.65}, 20, 35),  # the gate is less confident than on calibration
        ({"score_mean": 0.9}, 35, 60),  # ... or more confident: a two-sided test
    ],
)
def test_a_shift_from_the_start_alarms_within_tens_of_items(
    shifted: dict[str, float], max_median: int, max_p90: int
) -> None:
    rng = np.random.default_rng(2)
    delays = []
    for r in range(60):
        det = ShiftDetector(delta=DELTA, seed=r).fit(sample(rng, 300))
        det.update_many(sample(rng, 200, **shifted))
        delays.append(det.alarm_at if det.alarm else 10_000)
    assert np.median(delays) <= max_median and np.percentile(delays, 90) <= max_p90, sorted(delays)


def test_a_shift_after_a_long_quiet_stream_is_caught_by_the_restarted_tests() -> None:
    rng = np.random.default_rng(3)
    delays = []
    for r in range(60):
        det = ShiftDetector(delta=DELTA, seed=r).fit(sample(rng, 300))
        det.update_many(pd.concat([sample(rng, 800), sample(rng, 300, flip_p=0.45)], ignore_index=True))
        delays.append(det.alarm_at - 800 if det.alarm else 10_000)
    assert min(delays) >= -40  # at most a rare false alarm before the shift
    assert np.median(delays) <= 40 and np.percentile(delays, 90) <= 80, sorted(delays)


def test_batches_single_updates_and_stored_state_give_the_same_test() -> None:
    rng = np.random.default_rng(4)
    reference, stream = sample(rng, 120), pd.concat([sample(rng, 150), sample(rng, 150, flip_p=0.5)])
    whole = ShiftDetector(restart_every=10, window=4).fit(reference)
    whole.update_many(stream)
    pieces = ShiftDetector(restart_every=10, window=4).fit(reference)
    for start in range(0, 300, 37):
        # Stored and reloaded as the service does between maintenance passes.
        pieces = ShiftDetector.from_dict(json.loads(json.dumps(pieces.to_dict())))
        pieces.update_many(stream.iloc[start : start + 37])
    one_by_one = ShiftDetector(restart_every=10, window=4).fit(reference)
    for item in stream.to_dict("records")[:100]:
        one_by_one.update(item)
    one_by_one.update_many(stream.iloc[100:])
    assert whole.alarm and 150 <= whole.alarm_at < 300  # type: ignore[operator]
    for other in (pieces, one_by_one):
        assert (other.alarm_at, other.alarm_statistic, other.n) == (
            whole.alarm_at,
            whole.alarm_statistic,
            300,
        )
        assert other.evidence_ == pytest.approx(whole.evidence_)
        assert other.history_ == whole.history_
    # Only `window` betting martingales stay active: the stored state does not grow with the stream.
    assert all(len(t["starts"]) <= 5 for t in whole.to_dict()["tests"].values())


def test_history_is_bounded_and_keeps_the_alarm() -> None:
    rng = np.random.default_rng(5)
    det = ShiftDetector().fit(sample(rng, 100))
    det.update_many(pd.concat([sample(rng, 1500), sample(rng, 1500, flip_p=0.6)], ignore_index=True))
    assert det.alarm and len(det.history_) <= HISTORY_POINTS + 1
    assert [det.alarm_at + 1] == [n for n, _, _ in det.history_ if n == det.alarm_at + 1]  # type: ignore[operator]
    points = det.summary()["history"]
    assert points[-1][0] == det.n and [p[0] for p in points] == sorted(p[0] for p in points)


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(6)
    det = ShiftDetector().fit(sample(rng, 50))
    with pytest.raises(ValueError, match="lack"):
        det.update({"flips": 1})
    with pytest.raises(ValueError, match="missing"):
        det.update({"flips": 1, "side": 0, "score": float("nan")})
    with pytest.raises(ValueError):
        ShiftDetector(delta=0.0)
    assert det.update_many(pd.DataFrame()) is False and det.n == 0


def test_pair_statistics_read_the_panel() -> None:
    rows = [
        # pair 1: x flips toward the first-shown response, y says A twice, z says A in one order.
        (1, "x", "ab", "A>B"),
        (1, "x", "ba", "B>A"),
        (1, "y", "ab", "A>>B"),
        (1, "y", "ba", "A>B"),
        (1, "z", "ab", "A"),
        (1, "z", "ba", "invalid"),
        # pair 2: x flips toward the second-shown response, y says B twice: B wins 3-1.
        (2, "x", "ab", "B"),
        (2, "x", "ba", "A"),
        (2, "y", "ab", "B"),
        (2, "y", "ba", "B"),
        # pair 3: a 1-1 split is a tie (as routing calls it); z failed.
        (3, "x", "ab", "A"),
        (3, "y", "ab", "B"),
    ]
    df = pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict"])
    df["failed"] = False
    df.loc[len(df)] = [3, "z", "ab", "A", True]
    stats = pair_statistics(
        df, judges=["x", "y", "z"], score={1: 0.934, 2: 0.6, 3: 0.1}, accepted={1: 1, 2: 0, 3: 0}
    )
    assert stats.loc[1].to_dict() == {
        "score": 0.93,
        "accepted": 1,
        "side": 1,
        "dissent": 1,
        "flips": 1,
        "position": 1,
        "judge:x": 1,
        "judge:y": 0,
        "judge:z": 0,
    }
    assert stats.loc[
        2, ["side", "dissent", "flips", "position", "judge:x", "judge:y", "judge:z"]
    ].tolist() == [
        -1,
        1,
        1,
        -1,
        1,
        0,
        3,
    ]
    assert stats.loc[3, ["side", "dissent", "flips", "judge:x", "judge:y", "judge:z"]].tolist() == [
        0,
        2,
        0,
        2,
        2,
        3,
    ]
    # The verdicts say nothing about A or B as such: swapping them only mirrors the signed statistics.
    swapped = df.assign(
        verdict=df["verdict"].map({"A>B": "B>A", "B>A": "A>B", "A>>B": "B>>A", "A": "B", "B": "A"})
    )
    mirrored = pair_statistics(swapped.fillna("invalid"), judges=["x", "y", "z"])
    assert (mirrored["side"] == -stats["side"]).all() and (mirrored["position"] == -stats["position"]).all()
    assert (mirrored["flips"] == stats["flips"]).all()
