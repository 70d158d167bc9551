import json

import numpy as np
import pytest

from calibration.drift import DriftMonitor, drift_alarm, log_evidence, upper_confidence_bound

TARGET, DELTA = 0.9, 0.1


@pytest.mark.parametrize("restart_every", [50, None])
def test_false_alarm_rate_at_most_delta_under_continuous_monitoring(restart_every):
    # Worst case for the null: agreement exactly at the target, checked after every audit.
    rng = np.random.default_rng(0)
    reps, n = 500, 1000
    alarms = sum(
        drift_alarm(
            (rng.uniform(size=n) < TARGET).astype(int), TARGET, DELTA, restart_every=restart_every
        ).alarm
        for _ in range(reps)
    )
    assert alarms / reps <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / reps)


def test_false_alarms_even_without_burn_in():
    rng = np.random.default_rng(1)
    reps = 1000
    alarms = sum(
        drift_alarm((rng.uniform(size=500) < TARGET).astype(int), TARGET, DELTA, min_audits=1).alarm
        for _ in range(reps)
    )
    assert alarms / reps <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / reps)


def test_good_stream_rarely_alarms():
    rng = np.random.default_rng(2)
    alarms = [
        drift_alarm((rng.uniform(size=1000) < 0.95).astype(int), TARGET, DELTA).alarm for _ in range(300)
    ]
    assert np.mean(alarms) <= 0.02


@pytest.mark.parametrize("restart_every, max_median_delay", [(50, 120), (None, 300)])
def test_degraded_stream_alarms_after_the_change(restart_every, max_median_delay):
    rng = np.random.default_rng(3)
    hits, delays = 0, []
    for _ in range(200):
        stream = np.r_[(rng.uniform(size=200) < 0.95), (rng.uniform(size=800) < 0.75)].astype(int)
        r = drift_alarm(stream, TARGET, DELTA, restart_every=restart_every)
        if r.alarm:
            hits += 1
            delays.append(r.at_index - 200)
            assert r.estimate is not None and r.estimate < TARGET
    assert hits >= 190
    assert np.median(delays) < max_median_delay


def test_degraded_from_the_start_alarms_quickly():
    rng = np.random.default_rng(6)
    res = [drift_alarm((rng.uniform(size=300) < 0.7).astype(int), TARGET, DELTA) for _ in range(200)]
    assert np.mean([r.alarm for r in res]) >= 0.99
    assert np.median([r.at_index for r in res if r.alarm]) < 60
    assert np.mean([r.bound < TARGET for r in res if r.alarm]) >= 0.9


def test_result_fields_and_validation():
    r = drift_alarm([1] * 50, TARGET, DELTA)
    assert not r.alarm and r.at_index is None and r.estimate == 1.0 and r.n == 50
    assert r.bound == 1.0, "no disagreement seen: agreement 1 cannot be excluded"
    assert drift_alarm([], TARGET, DELTA).n == 0
    assert drift_alarm([0] * 20, TARGET, DELTA).at_index == 9, "burn-in of 10 audits, then immediate alarm"
    r = drift_alarm([1] * 300 + [0] * 30, TARGET, DELTA)
    assert r.alarm and r.since_index >= 250 and r.estimate < 0.5
    with pytest.raises(ValueError):
        drift_alarm([1, 2], TARGET, DELTA)


def test_upper_bound_is_anytime_valid_and_monotone_in_evidence():
    # log evidence increases with failures and with the hypothesized target.
    assert log_evidence(90, 10, 0.95) > log_evidence(90, 10, 0.9)
    assert log_evidence(80, 20, 0.9) > log_evidence(90, 10, 0.9)
    u = upper_confidence_bound(np.array([90.0, 700.0]), np.array([10.0, 300.0]), DELTA)
    assert 0.9 < u[0] < 1.0 and 0.7 < u[1] < 0.75
    # Coverage of the bound itself: the true rate is below it at all times, in >= 1 - delta of runs.
    rng = np.random.default_rng(4)
    miss = 0
    for _ in range(300):
        x = (rng.uniform(size=300) < 0.8).astype(float)
        s = np.cumsum(x)
        ucb = upper_confidence_bound(s, np.arange(1, 301) - s, DELTA)
        miss += (ucb < 0.8).any()
    assert miss / 300 <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / 300)


@pytest.mark.parametrize("restart_every", [50, None])
def test_monitor_matches_batch_and_serializes(restart_every):
    rng = np.random.default_rng(5)
    stream = np.r_[np.ones(120), (rng.uniform(size=300) < 0.7)].astype(int)
    m = DriftMonitor(TARGET, DELTA, restart_every=restart_every)
    for i, x in enumerate(stream):
        m.update(int(x))
        if i == 100:
            m = DriftMonitor.from_dict(json.loads(json.dumps(m.to_dict())))
    assert m.alarm and m.alarm_at == drift_alarm(stream, TARGET, DELTA, restart_every=restart_every).at_index
