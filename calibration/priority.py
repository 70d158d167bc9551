"""Review-queue priority: hybrid active learning (uncertainty + diversity).

Humans should review the pairs the system is least sure about, but the most uncertain
pairs tend to come in clumps (one confusing prompt, many near-identical pairs), and ten
labels from one clump teach the calibrator little more than one. So a batch is built
greedily: each step picks the candidate with the best

    w * uncertainty_norm + (1 - w) * distance_to_selected_norm

where ``uncertainty_norm`` is min-max scaled over the candidates, and
``distance_to_selected_norm`` is the Euclidean distance from a candidate to the nearest
already-labelled pair or pair picked earlier in this batch, divided by the largest such
distance when the batch starts (so it starts in [0, 1] and shrinks as the batch covers the
space). ``w=1`` is pure uncertainty sampling, ``w=0`` is k-center greedy (Sener & Savarese,
2018, "core-set").

Uncertainty is ``1 - calibrated confidence`` once the calibrator exists; before that, judge
disagreement (:func:`uncertainty_from_verdicts`).

Speed: the greedy step needs the arg-max over all candidates of a score that only ever
decreases (distances to the selected set shrink as it grows), so distances are kept as upper
bounds and refreshed lazily, only for the few candidates that could still win (the "lazy
greedy" trick). The result is exactly the eager algorithm's, several times faster at queue
scale than full passes over the matrix (tests/test_priority.py prints the timing).
An already-labelled set of m pairs costs one exact n x m distance pass (O(n m d)): pass a
few hundred representative labelled pairs, not tens of thousands.

Example
-------
>>> import numpy as np
>>> emb = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [0.05, 0.05]])
>>> unc = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
>>> pure_uncertainty_order(unc, 3).tolist()  # three near-duplicates
[0, 1, 2]
>>> hybrid_order(unc, emb, 3).tolist()  # the distinct pair gets the second slot
[0, 3, 1]
>>> k_center_greedy(emb, 2, already_selected=np.array([3])).tolist()
[0, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibration.threads import single_threaded_blas
from judge.verdicts import to_side

# Candidates refreshed per lazy round at first; grows x4 when the bound is not yet tight.
_LAZY_BATCH = 64
# Rows per block when computing distances to a labelled set (bounds memory to ~block*m).
_BLOCK = 8192
# Percentiles of the distance scale, and the weight of the raw-distance tie-break.
_SCALE_QUANTILES = (0.05, 0.95)
_TIE_BREAK = 1e-6


def pure_uncertainty_order(uncertainty: NDArray[Any], k: int) -> NDArray[Any]:
    """The k most uncertain candidates, most uncertain first (ties: lower index first).
    NaN counts as most uncertain: a pair nothing is known about should be looked at."""
    u = _clean_uncertainty(uncertainty)
    k = max(0, min(int(k), u.size))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    # argpartition keeps this O(n) for a big queue; a stable sort of the top k after it.
    top = np.argpartition(-u, k - 1)[:k] if k < u.size else np.arange(u.size)
    order = np.lexsort((top, -u[top]))
    return np.asarray(top[order], dtype=np.int64)


def hybrid_order(
    uncertainty: NDArray[Any],
    embeddings: NDArray[Any],
    k: int,
    uncertainty_weight: float = 0.6,
    already_selected_embeddings: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """k candidate indices in priority order: greedy arg-max of
    ``w * uncertainty_norm + (1 - w) * distance_to_selected_norm`` (module docstring).

    ``already_selected_embeddings`` (m, d): pairs already labelled or already in reviewers'
    hands; candidates near them are worth less. With none, the first pick is the most
    uncertain candidate (there is nothing to be distant from yet)."""
    if not 0.0 <= uncertainty_weight <= 1.0:
        raise ValueError(f"uncertainty_weight must be in [0, 1], got {uncertainty_weight}")
    u = _clean_uncertainty(uncertainty)
    x = _as_matrix(embeddings)
    if x.shape[0] != u.size:
        raise ValueError(f"{u.size} uncertainties for {x.shape[0]} embeddings")
    if uncertainty_weight == 1.0:
        return pure_uncertainty_order(u, k)
    span = u.max() - u.min() if u.size else 0.0
    u_norm = (u - u.min()) / span if span > 0 else np.zeros_like(u)
    greedy = _LazyGreedy(x, already_selected_embeddings)
    return greedy.run(k, u_norm, uncertainty_weight, first=None)


def k_center_greedy(
    embeddings: NDArray[Any],
    k: int,
    already_selected: NDArray[Any] | None = None,
    rng: np.random.Generator | int | None = None,
) -> NDArray[Any]:
    """Pure diversity: k indices, each the candidate farthest from everything chosen so far.

    ``already_selected``: either integer indices into ``embeddings`` (those rows count as
    chosen and are never returned) or a float (m, d) matrix of labelled embeddings.
    With nothing already selected the first centre is random when ``rng`` is given (the
    classic algorithm), else deterministically the point nearest the mean (a typical pair
    rather than an outlier)."""
    x = _as_matrix(embeddings)
    n = x.shape[0]
    reference: NDArray[Any] | None = None
    excluded = np.zeros(0, dtype=np.int64)
    if already_selected is not None:
        sel = np.asarray(already_selected)
        if sel.size and np.issubdtype(sel.dtype, np.integer) and sel.ndim == 1:
            excluded = np.unique(sel)
            reference = x[excluded]
        elif sel.size:
            reference = _as_matrix(sel)
    greedy = _LazyGreedy(x, reference)
    greedy.available[excluded] = False
    first: int | None = None
    if reference is None and n:
        if rng is not None:
            first = int(np.random.default_rng(rng).integers(n))
        else:
            centre = x.mean(axis=0)
            first = int(np.argmin(greedy.sq - 2.0 * (x @ centre)))
    return greedy.run(k, np.zeros(n, dtype=np.float32), 0.0, first=first)


def uncertainty_from_verdicts(verdicts: Sequence[Sequence[str | None]]) -> NDArray[Any]:
    """Judge disagreement per pair, for before a calibrator exists: 1 - (share of the
    pair's verdicts on the most common side). 0 when every verdict (both orders, all
    judges) points the same way; 0.5 for an even A/B split. Invalid or missing verdicts
    count as a side of their own: a judge that failed is a reason to look. Verdicts may
    be five-point ("A>B") or sides ("A", "B", "tie")."""
    out = np.ones(len(verdicts), dtype=np.float64)
    for i, pair in enumerate(verdicts):
        # Lenient: an unreadable verdict is one more reason to look, not an error.
        sides = [to_side(v, strict=False) for v in pair]
        if sides:
            counts: dict[str | None, int] = {}
            for s in sides:
                counts[s] = counts.get(s, 0) + 1
            out[i] = 1.0 - max(counts.values()) / len(sides)
    return out


def _distance_scale(dist: NDArray[Any]) -> tuple[float, float, float]:
    """(low, high, max) of the distances that scale the diversity term."""
    finite = dist[np.isfinite(dist)]
    if not finite.size or finite.max() <= 0:
        return 0.0, 0.0, 1.0
    lo, hi = (float(q) for q in np.quantile(finite, _SCALE_QUANTILES))
    top = float(finite.max())
    if hi <= lo:  # most candidates equally far: fall back to plain max scaling
        lo, hi = 0.0, top
    return lo, hi, top


def _clean_uncertainty(uncertainty: NDArray[Any]) -> NDArray[Any]:
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    if np.isnan(u).any():
        u = u.copy()
        finite = u[~np.isnan(u)]
        u[np.isnan(u)] = finite.max() if finite.size else 1.0
    return u


def _as_matrix(embeddings: NDArray[Any]) -> NDArray[Any]:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {x.shape}")
    # float32 halves memory traffic, which is what bounds the distance passes.
    return np.ascontiguousarray(x, dtype=np.float32)


class _LazyGreedy:
    """Greedy selection with lazily refreshed distances to the selected set.

    ``dist[i]`` is an upper bound on candidate i's distance to the nearest centre (an
    already-selected row or a pick of this run), exact with respect to the first
    ``fresh[i]`` picks. Distances only shrink as picks are added, so any score that grows
    with distance, computed from ``dist``, is an upper bound too; refreshing the top of the
    bound ordering until the best exact score beats every remaining bound gives the exact
    arg-max while touching a small fraction of the rows."""

    def __init__(self, x: NDArray[Any], reference: NDArray[Any] | None) -> None:
        self.x = x
        n = x.shape[0]
        self.sq = np.einsum("ij,ij->i", x, x)
        self.available = np.ones(n, dtype=bool)
        self.dist = np.full(n, np.inf, dtype=np.float32)
        self.fresh = np.zeros(n, dtype=np.int64)
        self.picks: list[int] = []
        self.bounds: NDArray[Any] = np.zeros(n, dtype=np.float64)
        self.has_reference = False
        if reference is not None and len(reference):
            ref = _as_matrix(reference)
            if ref.shape[1] != x.shape[1]:
                raise ValueError(f"reference dim {ref.shape[1]} != embeddings dim {x.shape[1]}")
            ref_sq = np.einsum("ij,ij->i", ref, ref)
            for lo in range(0, n, _BLOCK):
                hi = min(n, lo + _BLOCK)
                d2 = self.sq[lo:hi, None] + ref_sq[None, :] - 2.0 * (x[lo:hi] @ ref.T)
                self.dist[lo:hi] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
            self.has_reference = True

    def _refresh(self, idx: NDArray[Any] | slice) -> None:
        """Make ``dist[idx]`` exact with respect to every pick so far. A slice avoids
        copying the rows (fancy indexing would copy the whole matrix for a full pass)."""
        fresh = self.fresh[idx]
        start = int(fresh.min()) if fresh.size else len(self.picks)
        if start >= len(self.picks):
            return
        centres = np.asarray(self.picks[start:])
        c = self.x[centres]
        d2 = self.sq[idx][:, None] + self.sq[centres][None, :] - 2.0 * (self.x[idx] @ c.T)
        d = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        self.dist[idx] = np.minimum(self.dist[idx], d)
        self.fresh[idx] = len(self.picks)

    def _lazy_argmax(self, key: Callable[[NDArray[Any] | None], NDArray[Any]]) -> int:
        """Index of the exact maximum of ``key`` over available candidates. ``key(None)`` is
        the full vector from current (upper-bound) distances, ``key(idx)`` the same for a
        subset; both must grow with distance. ``self.bounds`` holds ``key`` as last
        computed per candidate (-inf once picked) and is updated only where rows change."""
        n_avail = int(self.available.sum())
        batch = _LAZY_BATCH
        while batch * 8 < n_avail:
            top = np.argpartition(-self.bounds, batch)[: batch + 1]
            top = top[np.argsort(-self.bounds[top], kind="stable")]
            cand, threshold = top[:batch], self.bounds[top[batch]]
            self._refresh(cand)
            exact = key(cand)
            self.bounds[cand] = exact
            best = int(np.argmax(exact))
            if exact[best] >= threshold:
                return int(cand[best])
            batch *= 8
        # Bounds too loose (many close candidates went stale together): one exact pass over
        # contiguous rows is cheaper than gathering a large share of them.
        self._refresh(slice(None))
        self.bounds = np.where(self.available, key(None), -np.inf)
        return int(np.argmax(self.bounds))

    def _distance(self, idx: NDArray[Any] | None) -> NDArray[Any]:
        return self.dist if idx is None else self.dist[idx]

    def _pick(self, i: int) -> None:
        self.available[i] = False
        self.bounds[i] = -np.inf
        self.picks.append(i)
        self.dist[i] = 0.0
        self.fresh[i] = len(self.picks)

    def run(self, k: int, u_norm: NDArray[Any], w: float, first: int | None) -> NDArray[Any]:
        with single_threaded_blas():  # many small products (calibration/threads.py)
            return self._run(k, u_norm, w, first)

    def _run(self, k: int, u_norm: NDArray[Any], w: float, first: int | None) -> NDArray[Any]:
        n_avail = int(self.available.sum())
        k = max(0, min(int(k), n_avail))
        out: list[int] = []
        if k and first is not None:
            self._pick(first)
            out.append(first)
        elif k and not self.has_reference:
            # Nothing to be distant from: the most uncertain candidate opens the batch.
            masked = np.where(self.available, u_norm, -np.inf)
            i = int(np.argmax(masked))
            self._pick(i)
            out.append(i)
        if out and not self.has_reference:
            # One exact pass against the first pick replaces the infinite initial bounds.
            self.fresh[:] = 0
            self._refresh(slice(None))
        # Distances are min-max scaled like uncertainty, but over the 5th-95th percentile
        # of the candidates' distances when the batch starts, clipped to [0, 1]. Sentence
        # embedding distances crowd into a narrow band (PandaLM pairs: 90% of pairwise
        # distances within 1.22-1.45 of a possible 0-2), so scaling by the maximum alone
        # would leave the diversity term too flat to ever outweigh one step of
        # uncertainty. The scale stays fixed for the batch (a per-step one would need a
        # full pass every step), so the term fades as the batch covers the space. The tiny
        # raw-distance term breaks ties among clipped candidates, farthest first, which
        # keeps w=0 identical to k-center greedy.
        lo, hi, top = _distance_scale(self.dist[self.available])
        span = hi - lo
        wu = w * u_norm

        def score(idx: NDArray[Any] | None) -> NDArray[Any]:
            d = self.dist if idx is None else self.dist[idx]
            base = wu if idx is None else wu[idx]
            if span <= 0:
                return base
            return np.asarray(base + (1.0 - w) * np.clip((d - lo) / span, 0.0, 1.0) + _TIE_BREAK * d / top)

        key = score if w > 0 else self._distance
        self.bounds = np.where(self.available, key(None), -np.inf)
        while len(out) < k:
            i = self._lazy_argmax(key)
            self._pick(i)
            out.append(i)
        return np.asarray(out, dtype=np.int64)
