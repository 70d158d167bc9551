"""Label-free shift detector: is the stream of judged pairs still like the calibration sample?

The gate's guarantee holds for pairs exchangeable with its calibration sample. Audits check
agreement with humans, but at a 5% audit rate they come far too slowly to catch a stream that
went bad at once (a new source, a judge that changed, judges confidently wrong). This test
needs no labels: it compares what the judges say on the stream with what they said on the
calibration sample, and alarms as soon as the two are distinguishable.

Per pair, :func:`pair_statistics` reads a few discrete statistics of the judgments: the gate's
calibrated ``score`` (rounded to 0.01) and whether it would be ``accepted``; the panel's
majority ``side`` (B=-1, tie=0, A=1); ``dissent`` (valid verdicts off the majority side);
``flips`` (judges whose two display orders name different sides); ``position`` (flips toward
the response shown first minus flips toward the one shown second: judges' usual position bias
has a sign, inverted verdicts reverse it); and per judge ``judge:<name>`` (0 agrees with the
panel majority in every order, 1 in some, 2 in none, 3 no valid verdict).
:func:`text_statistics` adds how long the prompt and the responses are, a cheap stand-in for
text embeddings (a model too slow to run on every streamed pair). Any other columns work too.

For each statistic the detector runs a conformal test martingale (Vovk et al., "Testing
exchangeability on-line", 2003):

* p-value: the item's rank among the calibration sample AND the stream items before it
  (itself included), ties broken by an independent uniform draw. If calibration and stream
  are exchangeable these p-values are independent and uniform on [0, 1] -- exactly, however
  long the stream, because each new item joins the bag it is ranked against.
* betting: a histogram of the p-values seen so far (``bins`` bins, Dirichlet ``prior``) is
  the bet on the next one (the "plug-in" martingale); it learns any departure from uniform,
  at either end or in the middle, so one test covers "more confident than usual" and "more
  disagreement than usual". Each bet integrates to 1 over [0, 1], so the product is a test
  martingale under exchangeability.
* restarts: a fresh martingale starts every ``restart_every`` items and the evidence is their
  weighted sum with the kill-switch's weights (:func:`calibration.drift.restart_weights`), so a shift
  after a long quiet period is caught from the martingales started after it. A martingale
  ``window`` restarts old stops betting (it keeps its value: a stopped martingale is still one),
  which bounds the stored state.

Alarm when any statistic's evidence reaches ``K / delta`` (K statistics; a union bound, so
the tests need not be independent of each other): by Ville's inequality the probability of
ever alarming on an exchangeable stream is at most ``delta``, checked after every item.

Assumptions, and where they break: (1) calibration sample and stream are exchangeable under
"no shift" -- a stream that arrives sorted (by topic, by source) IS a shift in time and will be
flagged; the calibration sample must be a random sample (no audit-selected pairs). (2) The
statistics are fixed functions of a pair. The gate's score is not quite: the calibrator was
fitted on the calibration pairs, so their scores are in-sample; the effect on the score's
distribution is small for the low-capacity calibrator, and the false-alarm rate on real
held-out pairs is measured rather than assumed (tests/test_shift.py, README's measurements).
(3) Only what changes the judgments is seen: a stream whose judges are wrong in exactly the
way they were on the calibration sample looks the same (that is the audits' job). The test
says "the stream is not like the calibration sample", not "agreement dropped".

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def sample(n, p):  # one statistic: how many of 4 judges flip their order
...     return pd.DataFrame({"flips": rng.binomial(4, p, size=n)})
>>> det = ShiftDetector(delta=0.05).fit(sample(300, 0.1))
>>> det.update_many(sample(300, 0.1))  # the same distribution: no alarm
False
>>> det = ShiftDetector(delta=0.05).fit(sample(300, 0.1))
>>> det.update_many(sample(200, 0.4)), det.alarm_at < 50, det.alarm_statistic
(True, True, 'flips')
>>> same = ShiftDetector.from_dict(det.to_dict())
>>> same.update({"flips": 0}) and same.n == det.n + 1
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from calibration.drift import restart_weights
from calibration.features import normalize_judgments

__all__ = [
    "ShiftDetector",
    "false_alarm_rate",
    "pair_statistics",
    "text_statistics",
    "PANEL_STATISTICS",
    "SCORE_DECIMALS",
]

FORMAT_VERSION = 1
PANEL_STATISTICS: tuple[str, ...] = ("side", "dissent", "flips", "position")
# The score is continuous; a coarse grid keeps the stored bag small (ties are randomised).
SCORE_DECIMALS = 2
JUDGE_PREFIX = "judge:"
HISTORY_POINTS = 400  # the evidence over time is kept at most this many points (thinned by 2)


def pair_statistics(
    judgments: pd.DataFrame,
    judges: Sequence[str] | None = None,
    score: pd.Series | Mapping[Any, float] | None = None,
    accepted: pd.Series | Mapping[Any, bool] | None = None,
) -> pd.DataFrame:
    """Label-free statistics per pair (rows indexed by pair_id, in order of first appearance).

    ``judgments``: the long table of :mod:`calibration.features`. ``judges``: whose verdicts
    count (default: every judge in the table); a judge missing on a pair counts as "no valid
    verdict". ``score`` / ``accepted``: the gate's calibrated confidence and acceptance per
    pair_id, added as columns when given (every pair must have one).

    >>> df = pd.DataFrame({"pair_id": [1, 1, 1, 1], "judge": ["x", "x", "y", "y"],
    ...                    "order": ["ab", "ba", "ab", "ba"], "verdict": ["A", "B", "A", "A"]})
    >>> pair_statistics(df).iloc[0].to_dict()
    {'side': 1, 'dissent': 1, 'flips': 1, 'position': 1, 'judge:x': 1, 'judge:y': 0}
    """
    df = normalize_judgments(judgments)
    pos, pair_ids = pd.factorize(df["pair_id"].to_numpy())
    panel = sorted({str(j) for j in df["judge"]}) if judges is None else [str(j) for j in judges]
    index = {j: k for k, j in enumerate(panel)}
    jpos = np.array([index.get(str(j), -1) for j in df["judge"]], dtype=np.int64)
    keep = (jpos >= 0) & df["valid"].to_numpy(dtype=bool)
    n, nj = len(pair_ids), len(panel)
    # Side per (pair, judge, order): -1, 0, 1; NaN where there is no valid verdict.
    sides = np.full((n, nj, 2), np.nan)
    order = (df["order"].to_numpy() == "ba").astype(np.int64)
    sides[pos[keep], jpos[keep], order[keep]] = np.sign(df["strength"].to_numpy()[keep])
    valid = ~np.isnan(sides)
    counts = np.stack([(sides == v).sum(axis=(1, 2)) for v in (-1, 0, 1)], axis=1)  # B, tie, A
    top = counts.max(axis=1)
    # Majority as routing defines it (api.routing.route.summarize): two sides level is a tie.
    unique_top = (counts == top[:, None]).sum(axis=1) == 1
    majority = np.where(unique_top & (top > 0), counts.argmax(axis=1) - 1, 0)
    n_valid = valid.sum(axis=(1, 2))
    on_majority = sides == majority[:, None, None]
    both = valid.all(axis=2)
    flip = both & (sides[..., 0] != sides[..., 1])
    # "ab" shows A first: A in "ab" and B in "ba" is the first-shown response winning both times.
    first_wins = both & (sides[..., 0] == 1) & (sides[..., 1] == -1)
    second_wins = both & (sides[..., 0] == -1) & (sides[..., 1] == 1)
    out = pd.DataFrame(index=pd.Index(pair_ids, name="pair_id"))
    if score is not None:
        s = pd.Series(score, dtype=float).reindex(pair_ids)
        if s.isna().any():
            raise ValueError("score is missing for some pairs")
        out["score"] = np.round(s.to_numpy(), SCORE_DECIMALS)
    if accepted is not None:
        a = pd.Series(accepted).reindex(pair_ids)
        if a.isna().any():
            raise ValueError("accepted is missing for some pairs")
        out["accepted"] = a.astype(bool).astype(int).to_numpy()
    out["side"] = majority.astype(int)
    out["dissent"] = (n_valid - on_majority.sum(axis=(1, 2))).astype(int)
    out["flips"] = flip.sum(axis=1).astype(int)
    out["position"] = (first_wins.sum(axis=1) - second_wins.sum(axis=1)).astype(int)
    n_judge = valid.sum(axis=2)
    agree = on_majority.sum(axis=2)
    code = np.where(n_judge == 0, 3, np.where(agree == n_judge, 0, np.where(agree == 0, 2, 1)))
    for k, judge in enumerate(panel):
        out[f"{JUDGE_PREFIX}{judge}"] = code[:, k].astype(int)
    return out


def text_statistics(
    pair_ids: Sequence[Any], prompt_chars: Sequence[int], response_chars: Sequence[int]
) -> pd.DataFrame:
    """What the pairs look like, without a model: half-octave buckets (floor(2 log2(1 + n)))
    of the prompt's length and of both responses' length together, in characters.

    A cheap stand-in for text embeddings (which need a model too slow for every streamed pair):
    a new source usually changes how long prompts and answers are (LLMBar: FairEval's response
    pairs are ~9x as long as LLMBar-Natural's).

    >>> text_statistics([7], [100], [3000]).loc[7].tolist()
    [13, 23]
    """

    def bucket(n: Sequence[int]) -> NDArray[Any]:
        return np.asarray(np.floor(2 * np.log2(1 + np.asarray(n, dtype=float))).astype(int))

    return pd.DataFrame(
        {"prompt_length": bucket(prompt_chars), "response_length": bucket(response_chars)},
        index=pd.Index(list(pair_ids), name="pair_id"),
    )


def false_alarm_rate(
    statistics: pd.DataFrame,
    delta: float = 0.05,
    runs: int = 200,
    seed: int = 0,
    reference_fraction: float = 0.5,
    **params: Any,
) -> float:
    """How often the detector fires on one sample split at random into a reference and a stream
    (exchangeable by construction): a measured false-alarm rate to set against ``delta``.

    >>> rng = np.random.default_rng(0)
    >>> false_alarm_rate(pd.DataFrame({"x": rng.binomial(3, 0.3, 400)}), runs=20) <= 0.1
    True
    """
    rng = np.random.default_rng(seed)
    n = len(statistics)
    k = int(round(reference_fraction * n))
    alarms = 0
    for run in range(runs):
        order = rng.permutation(n)
        detector = ShiftDetector(delta=delta, seed=run, **params).fit(statistics.iloc[order[:k]])
        alarms += detector.update_many(statistics.iloc[order[k:]])
    return alarms / runs if runs else 0.0


def _uniforms(key: int, index: NDArray[Any]) -> NDArray[Any]:
    """Tie-breaking draws: splitmix64 of (key, item index), so a stream split into batches in any
    way gets the same draws, and a stored detector needs no random-generator state."""
    z = np.uint64(key) + (index.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _key(seed: int, statistic: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}|{statistic}".encode(), digest_size=8).digest(), "big")


class _Test:
    """One statistic's conformal test martingale (bag, restarted plug-in martingales)."""

    def __init__(self, state: Mapping[str, Any], bins: int) -> None:
        self.values = np.asarray(state["values"], dtype=float)
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.starts = np.asarray(state.get("starts", []), dtype=np.int64)
        self.logs = np.asarray(state.get("logs", []), dtype=float)
        self.bet_counts = np.asarray(state.get("bet_counts", np.zeros((0, bins))), dtype=np.int64).reshape(
            -1, bins
        )
        frozen = state.get("frozen")
        self.frozen = -math.inf if frozen is None else float(frozen)
        self.n_started = int(state.get("n_started", 0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": self.values.tolist(),
            "counts": self.counts.tolist(),
            "starts": self.starts.tolist(),
            "logs": self.logs.tolist(),
            "bet_counts": self.bet_counts.tolist(),
            "frozen": None if self.frozen == -math.inf else self.frozen,  # JSON has no -inf
            "n_started": self.n_started,
        }

    def p_values(self, x: NDArray[Any], u: NDArray[Any]) -> NDArray[Any]:
        """Conformal p-values of a batch, each item ranked against the bag and the batch items
        before it (itself included); the batch then joins the bag."""
        values = np.union1d(self.values, x)
        bag = np.zeros(values.size, dtype=np.int64)
        bag[np.searchsorted(values, self.values)] = self.counts
        code = np.searchsorted(values, x)
        onehot = np.zeros((x.size, values.size), dtype=np.int64)
        onehot[np.arange(x.size), code] = 1
        seen = bag + np.cumsum(onehot, axis=0)  # bag plus items up to and including t
        greater = np.cumsum(seen[:, ::-1], axis=1)[:, ::-1] - seen  # count of values above each value
        rows = np.arange(x.size)
        total = seen.sum(axis=1)
        p = (greater[rows, code] + u * seen[rows, code]) / total
        self.values, self.counts = values, seen[-1]
        return np.asarray(p)

    def bet(
        self, p: NDArray[Any], first: int, bins: int, prior: float, restart_every: int, window: int
    ) -> NDArray[Any]:
        """Run the restarted plug-in martingales over a batch of p-values of items
        ``first, first+1, ...``; returns log evidence (weighted sum) after each item."""
        t_n = p.size
        idx = first + np.arange(t_n)
        b = np.minimum((p * bins).astype(np.int64), bins - 1)
        onehot = np.zeros((t_n, bins), dtype=np.int64)
        onehot[np.arange(t_n), b] = 1
        cum = np.vstack([np.zeros((1, bins), dtype=np.int64), np.cumsum(onehot, axis=0)])
        horizon = restart_every * window
        new_starts = idx[idx % restart_every == 0]
        starts = np.r_[self.starts, new_starts]
        logs0 = np.r_[self.logs, np.zeros(new_starts.size)]
        counts0 = np.vstack([self.bet_counts, np.zeros((new_starts.size, bins), dtype=np.int64)])
        ordinal = starts // restart_every
        log_w = np.log(restart_weights(ordinal.astype(float)))
        # Row c: log(w_c * M_c) after each item of the batch; -inf before the component starts.
        paths = np.full((starts.size, t_n), -np.inf)
        rows = np.arange(t_n)
        for c in range(starts.size):
            a = int(max(starts[c] - first, 0))  # first batch position it bets on
            e = int(min(max(starts[c] + horizon - first, 0), t_n))  # first position it no longer bets
            if a >= t_n:
                continue
            if e > a:
                seg = rows[a:e]
                held = counts0[c] + cum[seg] - cum[a]  # its bins' counts before each item
                m = held.sum(axis=1)
                log_f = (
                    np.log(bins)
                    + np.log(held[np.arange(seg.size), b[seg]] + prior)
                    - np.log(m + bins * prior)
                )
                path = logs0[c] + np.cumsum(log_f)
                paths[c, a:e] = log_w[c] + path
                paths[c, e:] = log_w[c] + path[-1]  # stopped: keeps its value
                logs0[c] = path[-1]
                counts0[c] = counts0[c] + cum[e] - cum[a]
            else:
                paths[c, a:] = log_w[c] + logs0[c]
        started = self.n_started + np.searchsorted(new_starts, idx, side="right")
        # Martingales not started yet count as 1 at their weight: 1 - (weights started so far).
        pending = -np.log(started + 1.0)
        frozen = np.full(t_n, self.frozen)
        total = np.logaddexp(np.logaddexp(np.logaddexp.reduce(paths, axis=0), frozen), pending)
        # Components past their window stop for good: fold them into one frozen constant.
        done = starts + horizon <= first + t_n
        if done.any():
            self.frozen = float(np.logaddexp.reduce(np.r_[self.frozen, log_w[done] + logs0[done]]))
        self.starts, self.logs, self.bet_counts = starts[~done], logs0[~done], counts0[~done]
        self.n_started += new_starts.size
        return np.asarray(total)


class ShiftDetector:
    """Sequential, label-free test that a stream of pairs is exchangeable with a reference.

    ``fit(reference)`` takes the calibration sample's per-pair statistics (a DataFrame, one
    column per statistic, e.g. :func:`pair_statistics`); ``update`` / ``update_many`` take
    stream items with the same columns and return True once the alarm has fired (it stays
    fired). ``delta``: probability of ever alarming on an unshifted stream (module docstring:
    assumptions). Learned state ends in ``_``; ``to_dict`` / ``from_dict`` store it as JSON.

    ``evidence_`` is the largest statistic's log evidence (nats); the alarm is at
    ``threshold_ = log(K / delta)``. ``history_`` holds ``[items, evidence, statistic]`` points
    over time (thinned to at most 400).
    """

    def __init__(
        self,
        delta: float = 0.05,
        bins: int = 10,
        prior: float = 0.5,
        restart_every: int = 25,
        window: int = 40,
        seed: int = 0,
    ) -> None:
        if not 0.0 < delta < 1.0:
            raise ValueError("delta must be in (0, 1)")
        if bins < 2 or prior <= 0 or restart_every < 1 or window < 1:
            raise ValueError("need bins >= 2, prior > 0, restart_every >= 1, window >= 1")
        self.delta = delta
        self.bins = bins
        self.prior = prior
        self.restart_every = restart_every
        self.window = window
        self.seed = seed

    # --- fitting and updating ------------------------------------------------------------

    def fit(self, reference: pd.DataFrame) -> ShiftDetector:
        """Learn the calibration sample's statistics (one row per pair, no missing values)."""
        ref = pd.DataFrame(reference)
        if ref.empty or ref.shape[1] == 0:
            raise ValueError("reference needs at least one pair and one statistic")
        if ref.isna().any().any():
            raise ValueError("reference has missing values")
        self.statistics_: list[str] = [str(c) for c in ref.columns]
        self.n_reference_ = int(len(ref))
        self._tests: dict[str, _Test] = {}
        for name in self.statistics_:
            values, counts = np.unique(ref[name].to_numpy(dtype=float), return_counts=True)
            self._tests[name] = _Test({"values": values, "counts": counts}, self.bins)
        self.n_ = 0
        self.alarm_at_: int | None = None
        self.alarm_statistic_: str | None = None
        self.evidence_ = 0.0
        self.evidence_by_statistic_: dict[str, float] = dict.fromkeys(self.statistics_, 0.0)
        self.history_: list[list[Any]] = [[0, 0.0, None]]  # [items, evidence, statistic]
        self._stride = 1
        return self

    @property
    def threshold_(self) -> float:
        """log(K / delta): each of the K statistics is tested at level delta / K."""
        return math.log(len(self.statistics_) / self.delta)

    @property
    def n(self) -> int:
        return self.n_

    @property
    def alarm(self) -> bool:
        return self.alarm_at_ is not None

    @property
    def alarm_at(self) -> int | None:
        """0-based index of the stream item at which the alarm fired (None: not fired)."""
        return self.alarm_at_

    @property
    def alarm_statistic(self) -> str | None:
        return self.alarm_statistic_

    def update(self, item: Mapping[str, float]) -> bool:
        return self.update_many(pd.DataFrame([dict(item)]))

    def update_many(self, items: pd.DataFrame | Iterable[Mapping[str, float]]) -> bool:
        """Add stream items in arrival order; returns True once the alarm has fired."""
        frame = items if isinstance(items, pd.DataFrame) else pd.DataFrame(list(items))
        if len(frame) == 0:
            return self.alarm
        missing = [s for s in self.statistics_ if s not in frame.columns]
        if missing:
            raise ValueError(f"stream items lack statistics {missing}")
        if frame[self.statistics_].isna().any().any():
            raise ValueError("stream items have missing values")
        first, t_n = self.n_, len(frame)
        idx = first + np.arange(t_n, dtype=np.int64)
        totals = np.empty((len(self.statistics_), t_n))
        for k, name in enumerate(self.statistics_):
            test = self._tests[name]
            p = test.p_values(frame[name].to_numpy(dtype=float), _uniforms(_key(self.seed, name), idx))
            totals[k] = test.bet(p, first, self.bins, self.prior, self.restart_every, self.window)
        best = totals.argmax(axis=0)
        evidence = totals[best, np.arange(t_n)]
        if self.alarm_at_ is None:
            hits = np.flatnonzero(evidence >= self.threshold_)
            if hits.size:
                self.alarm_at_ = int(first + hits[0])
                self.alarm_statistic_ = self.statistics_[int(best[hits[0]])]
        self.n_ = first + t_n
        self.evidence_ = float(evidence[-1])
        self.evidence_by_statistic_ = {s: float(totals[k, -1]) for k, s in enumerate(self.statistics_)}
        self._record(idx, evidence, best)
        return self.alarm

    def _record(self, idx: NDArray[Any], evidence: NDArray[Any], best: NDArray[Any]) -> None:
        """Keep the points at multiples of ``_stride`` items and the alarm; thin by 2 when full."""
        n_items = idx + 1
        keep = n_items % self._stride == 0
        if self.alarm_at_ is not None:
            keep |= idx == self.alarm_at_
        for i in np.flatnonzero(keep):
            self.history_.append(
                [int(n_items[i]), round(float(evidence[i]), 4), self.statistics_[int(best[i])]]
            )
        alarm_items = None if self.alarm_at_ is None else self.alarm_at_ + 1
        while len(self.history_) > HISTORY_POINTS:
            self._stride *= 2
            self.history_ = [h for h in self.history_ if h[0] % self._stride == 0 or h[0] == alarm_items]

    # --- reporting and storage -----------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What a report shows: items seen, evidence against the threshold, the alarm."""
        return {
            "items": self.n_,
            "n_reference": self.n_reference_,
            "delta": self.delta,
            "threshold": self.threshold_,
            "evidence": self.evidence_,
            "evidence_by_statistic": self.evidence_by_statistic_,
            "alarm": self.alarm,
            "alarm_at": self.alarm_at_,
            "alarm_statistic": self.alarm_statistic_,
            # The latest point too, wherever it falls between the kept ones.
            "history": self.history_
            + ([[self.n_, round(self.evidence_, 4), None]] if self.history_[-1][0] != self.n_ else []),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "params": {
                "delta": self.delta,
                "bins": self.bins,
                "prior": self.prior,
                "restart_every": self.restart_every,
                "window": self.window,
                "seed": self.seed,
            },
            "statistics": self.statistics_,
            "n_reference": self.n_reference_,
            "n": self.n_,
            "alarm_at": self.alarm_at_,
            "alarm_statistic": self.alarm_statistic_,
            "evidence": self.evidence_,
            "evidence_by_statistic": self.evidence_by_statistic_,
            "history": self.history_,
            "stride": self._stride,
            "tests": {name: test.to_dict() for name, test in self._tests.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShiftDetector:
        if d.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown shift detector format {d.get('format')!r}")
        det = cls(**d["params"])
        det.statistics_ = list(d["statistics"])
        det.n_reference_ = int(d["n_reference"])
        det.n_ = int(d["n"])
        det.alarm_at_ = d.get("alarm_at")
        det.alarm_statistic_ = d.get("alarm_statistic")
        det.evidence_ = float(d.get("evidence", 0.0))
        det.evidence_by_statistic_ = dict(d.get("evidence_by_statistic", {}))
        det.history_ = [list(h) for h in d.get("history", [])]
        det._stride = int(d.get("stride", 1))
        det._tests = {name: _Test(d["tests"][name], det.bins) for name in det.statistics_}
        return det
