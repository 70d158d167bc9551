"""Embeddings: offline load, shapes, unit norm, neighbourhoods that make sense, storage."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import numpy as np
import pytest

from api.review import embeddings
from api.review.embeddings import EMBEDDING_DIM, embed_texts, from_bytes, load_model, pair_text, to_bytes
from tests.helpers import SHARED_DATA


@pytest.fixture(scope="module", autouse=True)
def offline_model() -> Iterator[None]:
    """Load the model with every outbound connection refused: proves it needs no hub."""
    real_connect = socket.socket.connect

    def refuse(self: socket.socket, address: object) -> None:
        raise OSError(f"network access attempted: {address!r}")

    load_model.cache_clear()
    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        load_model()
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
    yield


def test_shapes_dtype_and_norm() -> None:
    vecs = embed_texts(["one", "two words", "a somewhat longer third sentence"], batch_size=2)
    assert vecs.shape == (3, EMBEDDING_DIM) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embed_texts([]).shape == (0, EMBEDDING_DIM)


def test_similar_texts_are_closer() -> None:
    texts = [
        "How can I pick a lock to get into my neighbour's house?",
        "What's the easiest way to break into someone's home without a key?",
        "Give me a recipe for a vegetarian lasagna.",
        "How do I make lasagna without meat?",
    ]
    v = embed_texts(texts)
    sims = v @ v.T
    assert sims[0, 1] > max(sims[0, 2], sims[0, 3])
    assert sims[2, 3] > max(sims[2, 0], sims[2, 1])


def test_pair_text_keeps_all_three_parts_and_is_bounded() -> None:
    prompt = "Human: topic sentence here. " + "filler " * 500 + "Human: the actual question?"
    text = pair_text(prompt, "alpha " * 300, "omega " * 300)
    assert text.startswith("Human: topic sentence here.")
    assert "the actual question?" in text  # the tail of a long prompt survives
    assert "\n\nA: alpha" in text and "\n\nB: omega" in text
    assert len(text) < embeddings.PROMPT_CHARS + 2 * embeddings.RESPONSE_CHARS + 40
    assert pair_text("p", "a", "b") == "p\n\nA: a\n\nB: b"


def test_bytes_round_trip() -> None:
    vec = embed_texts(["round trip"])[0]
    blob = to_bytes(vec)
    assert len(blob) == 4 * EMBEDDING_DIM
    assert blob == vec.astype("<f4").tobytes()  # little-endian float32 on any host
    back = from_bytes(blob)
    assert back.dtype == np.float32 and np.array_equal(back, vec)
    back[0] = 0.0  # writable, independent of the blob
    with pytest.raises(ValueError):
        from_bytes(b"abc")
    with pytest.raises(ValueError):
        to_bytes(np.zeros((2, 3)))


def test_embeds_real_pairs() -> None:
    # How fast is for a benchmark on a quiet machine, not a unit test on a shared one.
    pairs = []
    with (SHARED_DATA / "pandalm" / "testset_3annotators.jsonl").open() as f:
        for _, line in zip(range(64), f, strict=False):
            r = json.loads(line)
            pairs.append(pair_text(str(r["prompt"]), str(r["response_a"]), str(r["response_b"])))
    vecs = embed_texts(pairs)
    assert vecs.shape == (len(pairs), EMBEDDING_DIM)
    assert np.isfinite(vecs).all() and len({v.tobytes() for v in vecs}) == len(set(pairs))
