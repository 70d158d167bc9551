"""Frozen-eval leakage: train pairs whose prompt duplicates a frozen evaluation prompt.

A train pair is held back from a train export when its prompt

* equals a frozen prompt after :func:`normalise` (Unicode NFKC, case folded, runs of
  whitespace collapsed to one space, trimmed): ``"exact_duplicate"``;
* or is a near duplicate of one: the Jaccard similarity of the two prompts' word-bigram sets
  (:func:`shingles`) is at least ``threshold``: ``"near_duplicate"``.

Near duplicates are found without comparing every train prompt with every frozen one, and
without missing any: a similarity join with prefix filtering picks the candidate pairs (pairs
that share one of their rarest shingles, which every pair at or above the threshold does), and
each candidate is confirmed by its exact Jaccard similarity. So the result is exactly the
pairs at or above the threshold, as a comparison of all pairs would find them.

Why not MinHash with LSH: it estimates what this computes exactly, may miss a pair at the
threshold, and costs a hash per shingle per permutation; datasketch's MinHash and a numpy
MinHash were both several times slower than this join on the benchmark in tests/test_leakage.py.

Example
-------
>>> frozen = ["What is the capital of France?", "Write a haiku about autumn leaves falling."]
>>> train = [
...     (1, "what is the  CAPITAL of France?"),
...     (2, "Write a haiku about autumn leaves falling down."),
...     (3, "Write a haiku about spring rain."),
... ]
>>> hold_back(train, frozen, threshold=0.8)
{1: 'exact_duplicate', 2: 'near_duplicate'}
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

__all__ = ["EXACT", "NEAR", "hold_back", "jaccard", "normalise", "shingles"]

EXACT = "exact_duplicate"
NEAR = "near_duplicate"

# Word bigrams: on LLMBar's prompts, single words (bags of words) put reordered but different
# templated records at Jaccard 1.0, and trigrams let a one-word edit of a 25-word prompt fall
# below 0.8; bigrams flag the edited and re-punctuated prompts and leave the records apart.
SHINGLE_WORDS = 2
_WORD = re.compile(r"\w+")
_MASK32 = np.uint64(0xFFFFFFFF)
_PAIRS_PER_BLOCK = 1 << 17  # candidates joined and confirmed at once
_TEXTS_PER_BLOCK = 4096  # texts tokenised at once


def normalise(prompt: str) -> str:
    """The form two prompts are compared in: NFKC, case folded, whitespace collapsed, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", prompt).casefold().split())


def shingles(prompt: str) -> set[tuple[str, ...]]:
    """The normalised prompt's word bigrams (its one word alone when it has one; none when none).

    Words are runs of letters, digits and underscores, so punctuation does not count.
    """
    words = _WORD.findall(normalise(prompt))
    if len(words) < SHINGLE_WORDS:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of two prompts' :func:`shingles` (0 when either has none)."""
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def hold_back(train: Sequence[tuple[int, str]], frozen: Sequence[str], threshold: float) -> dict[int, str]:
    """Train pair ids to keep out of a train export, each with why (``EXACT`` or ``NEAR``).

    ``train``: (pair id, prompt); ``frozen``: the frozen evaluation prompts; ``threshold``:
    the Jaccard similarity from which a prompt is a near duplicate, in (0, 1].
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    frozen_forms = sorted({normalise(p) for p in frozen})
    if not train or not frozen_forms:
        return {}
    exact = set(frozen_forms)
    forms = [normalise(prompt) for _, prompt in train]
    others = list(dict.fromkeys(form for form in forms if form not in exact))
    near = set(_near_duplicates(others, frozen_forms, threshold)) if others else set()
    reasons = {}
    for (pair_id, _), form in zip(train, forms, strict=True):
        if form in exact:
            reasons[pair_id] = EXACT
        elif form in near:
            reasons[pair_id] = NEAR
    return reasons


def _near_duplicates(train: list[str], frozen: list[str], threshold: float) -> list[str]:
    """The (normalised, distinct) train prompts within ``threshold`` Jaccard of a frozen one."""
    docs = _shingle_matrix(frozen + train)
    n_frozen = len(frozen)
    sizes = np.diff(docs.indptr)
    hit = np.zeros(len(train), dtype=bool)
    for t, f in _candidates(docs, n_frozen, threshold):
        # Size filter: Jaccard >= t needs t |x| <= |y| <= |x| / t.
        small, large = np.minimum(sizes[t], sizes[f]), np.maximum(sizes[t], sizes[f])
        keep = small >= threshold * large - 1e-9
        t, f = t[keep], f[keep]
        inter = np.asarray(docs[t].multiply(docs[f]).sum(axis=1)).ravel()
        union = sizes[t] + sizes[f] - inter
        # The slack keeps a similarity exactly at the threshold (4/5 at 0.8) from rounding away.
        hit[t[inter >= threshold * union - 1e-9] - n_frozen] = True
    return [train[i] for i in np.flatnonzero(hit)]


def _word_ids(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' words as ids, one flat array, and each text's number of words."""
    vocabulary: dict[str, int] = {}
    lengths = np.zeros(len(texts), dtype=np.int64)
    parts: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    # A block at a time, so only one block's words are ever held as Python strings.
    for start in range(0, len(texts), _TEXTS_PER_BLOCK):
        flat: list[str] = []
        for i, text in enumerate(texts[start : start + _TEXTS_PER_BLOCK], start):
            words = _WORD.findall(text)
            lengths[i] = len(words)
            flat.extend(words)
        ids = (vocabulary.setdefault(w, len(vocabulary)) for w in flat)
        parts.append(np.fromiter(ids, dtype=np.int64, count=len(flat)))
    return np.concatenate(parts), lengths


def _shingle_matrix(texts: list[str]) -> sparse.csr_matrix:
    """Documents x distinct shingles, 1 where the document has the shingle; columns numbered
    rarest first (fewest documents), so each row's column indices list its rarest shingles first.

    A shingle is coded as its two word ids in one 64-bit integer (a lone word: its id and an
    all-ones second half).
    """
    ids, lengths = _word_ids(texts)
    words = ids.astype(np.uint64)
    del ids
    doc_of_word = np.repeat(np.arange(len(texts), dtype=np.int32), lengths)
    follows = doc_of_word[:-1] == doc_of_word[1:]
    lone = np.flatnonzero(lengths == 1).astype(np.int32)
    lone_word = np.cumsum(lengths)[lone] - 1
    pairs = (words[:-1][follows] << np.uint64(32)) | words[1:][follows]
    codes = np.concatenate([pairs, (words[lone_word] << np.uint64(32)) | _MASK32])
    owners = np.concatenate([doc_of_word[:-1][follows], lone]).astype(np.int64)
    del words, doc_of_word, follows, pairs
    column, distinct = pd.factorize(codes)
    n_cols = max(len(distinct), 1)
    del codes, distinct
    # One entry per (document, shingle), then the columns renumbered by rarity.
    owners *= n_cols
    owners += column
    del column
    cells = _distinct(owners)
    del owners
    column = cells % n_cols
    cells -= column
    rank = np.empty(n_cols, dtype=np.int64)
    rank[np.argsort(np.bincount(column, minlength=n_cols), kind="stable")] = np.arange(n_cols)
    cells += rank[column]
    del column, rank
    cells.sort()
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(cells // n_cols, minlength=len(texts)), out=indptr[1:])
    indices = (cells % n_cols).astype(np.int32)
    del cells
    data = np.ones(indices.size, dtype=np.int32)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(texts), n_cols))


def _candidates(
    docs: sparse.csr_matrix, n_frozen: int, threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train rows, frozen rows) of the pairs that share a shingle in their prefixes, in blocks.

    Prefix filtering (Chaudhuri et al., 2006; Bayardo et al., 2007): Jaccard >= t means
    sharing at least ceil(t |x|) shingles, so x's rarest |x| - ceil(t |x|) + 1 shingles (its
    prefix, in one global order) must hold one of y's prefix shingles. No similar pair is
    missed, and the rare prefix shingles make few chance candidates.
    """
    sizes = np.diff(docs.indptr)
    rows = np.repeat(np.arange(docs.shape[0], dtype=np.int64), sizes)
    position = np.arange(docs.nnz) - docs.indptr[rows]
    # Rounded so that t |x| a hair above an integer (float error) cannot shorten the prefix.
    prefix = sizes - np.ceil(threshold * sizes - 1e-9).astype(np.int64) + 1
    in_prefix = position < prefix[rows]
    frozen_side = in_prefix & (rows < n_frozen)
    train_side = in_prefix & (rows >= n_frozen)
    f_shingle, f_row = docs.indices[frozen_side], rows[frozen_side]
    order = np.argsort(f_shingle, kind="stable")
    f_shingle, f_row = f_shingle[order], f_row[order]
    t_shingle, t_row = docs.indices[train_side], rows[train_side]
    lo = np.searchsorted(f_shingle, t_shingle, "left")
    count = np.searchsorted(f_shingle, t_shingle, "right") - lo
    ends = np.cumsum(count)
    start = 0
    # In blocks of about _PAIRS_PER_BLOCK candidates, so memory stays bounded however many match.
    while start < count.size:
        base = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, base + _PAIRS_PER_BLOCK, "right")), start + 1)
        n, first = count[start:stop], lo[start:stop]
        total = int(n.sum())
        if total:
            owner = np.repeat(t_row[start:stop], n)
            offset = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
            pairs = _distinct(owner * n_frozen + f_row[np.repeat(first, n) + offset])
            yield pairs // n_frozen, pairs % n_frozen
        start = stop


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, which is many times slower on large int64 arrays here)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered
