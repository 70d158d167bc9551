"""Frozen-eval leakage gate (api/export/leakage.py): exact and near duplicates of frozen prompts."""

from __future__ import annotations

import json
import random
import time
from itertools import accumulate

import pytest

from api.export import leakage
from api.export.leakage import EXACT, NEAR, hold_back, jaccard, normalise, shingles
from api.schemas import RoutingSettings
from tests.helpers import LLMBAR

THRESHOLD = RoutingSettings().leakage_threshold

# 25 words: one changed word keeps 21 of 25 bigrams (Jaccard 0.84, above the default 0.8).
LONG = (
    "Explain to a new employee how our expense reports are filed each month, which receipts they "
    "must keep, and who signs off on travel costs."
)


def brute_force(train: list[tuple[int, str]], frozen: list[str], threshold: float) -> dict[int, str]:
    """What hold_back must return, by comparing every train prompt with every frozen one."""
    forms = {normalise(p) for p in frozen}
    frozen_sets = [s for s in map(shingles, frozen) if s]
    out = {}
    for pair_id, prompt in train:
        mine = shingles(prompt)
        if normalise(prompt) in forms:
            out[pair_id] = EXACT
        elif mine and any(len(mine & s) >= (threshold - 1e-9) * len(mine | s) for s in frozen_sets):
            out[pair_id] = NEAR
    return out


def test_exact_duplicates_survive_case_whitespace_and_unicode_forms() -> None:
    frozen = ["What is the capital of France?", "Straße nach Köln"]
    train = [
        (1, "What is the capital of France?"),
        (2, "  what IS the\tcapital of\n\nFrance?  "),
        (3, "What\u00a0is the capital of France?"),  # no-break space
        (4, "Ｗｈａｔ is the capital of France?"),  # full-width letters (NFKC)
        (5, "STRASSE nach köln"),  # case folding: ß = ss
        (6, "What is the capital of Spain?"),
    ]
    assert hold_back(train, frozen, THRESHOLD) == {1: EXACT, 2: EXACT, 3: EXACT, 4: EXACT, 5: EXACT}


def test_near_duplicates_a_word_changed_or_repunctuated() -> None:
    words = LONG.split()
    changed = " ".join([*words[:12], "yearly" if words[12] != "yearly" else "daily", *words[13:]])
    train = [
        (1, changed),
        (2, LONG.replace(",", "").replace(".", "!")),  # punctuation is not a word
        (3, LONG + " Thanks."),
    ]
    assert jaccard(changed, LONG) >= THRESHOLD
    assert hold_back(train, [LONG], THRESHOLD) == {1: NEAR, 2: NEAR, 3: NEAR}


def test_prompts_that_share_a_topic_or_template_stay() -> None:
    frozen = ["Write a poem about the ocean at night.", LONG]
    train = [
        (1, "Write a poem about the ocean in the morning."),
        (2, "Write a short story about the ocean at night, told by a lighthouse keeper."),
        (3, "Explain to a new employee how our holiday requests are approved, which forms they fill in."),
        (4, "Describe the ocean."),
    ]
    assert hold_back(train, frozen, THRESHOLD) == {}


def test_the_threshold_is_inclusive_and_configurable() -> None:
    frozen = ["a b c d e f"]  # bigrams ab bc cd de ef
    at = "a b c d e"  # 4 of the 5 bigrams: Jaccard 4/5
    below = "a b c d x"  # 3 shared of 6: 0.5
    assert jaccard(at, frozen[0]) == 0.8 and jaccard(below, frozen[0]) == 0.5
    train = [(1, at), (2, below)]
    assert hold_back(train, frozen, 0.8) == {1: NEAR}
    assert hold_back(train, frozen, 0.81) == {}
    assert hold_back(train, frozen, 0.5) == {1: NEAR, 2: NEAR}
    assert hold_back(train, frozen, 1.0) == {}
    for bad in (0.0, -0.1, 1.01, float("nan")):
        with pytest.raises(ValueError):
            hold_back(train, frozen, bad)


def test_every_pair_with_a_leaked_prompt_is_held_and_odd_prompts_are_safe() -> None:
    frozen = ["Hello", "?!", "Summarise this article in three bullet points for a busy reader."]
    train = [
        (10, "hello"),
        (11, "Hello!"),  # the same one word: near (Jaccard 1)
        (12, "..."),  # no words: only an exact match could hold it back
        (13, "?!"),
        (14, "Summarise this article in three bullet points for a busy reader."),
        (15, "Summarise this article in three bullet points for a busy reader."),
        (16, ""),
        (17, "Goodbye"),
    ]
    assert shingles("...") == set() and shingles("Hello!") == {("hello",)}
    assert hold_back(train, frozen, THRESHOLD) == {10: EXACT, 11: NEAR, 13: EXACT, 14: EXACT, 15: EXACT}
    assert hold_back([], frozen, THRESHOLD) == {} and hold_back(train, [], THRESHOLD) == {}


def synthetic_prompts(n: int, rng: random.Random, vocabulary: int = 5000) -> list[str]:
    """Prompts of 5-60 words over a Zipf-like vocabulary (common words and bigrams, as in real text)."""
    cumulative = list(accumulate(1.0 / (i + 1) for i in range(vocabulary)))
    words = [f"w{i}" for i in range(vocabulary)]
    return [" ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(5, 60))) for _ in range(n)]


def edited(prompt: str, rng: random.Random) -> str:
    """The prompt with one word replaced, or one dropped, or re-cased."""
    words = prompt.split()
    i = rng.randrange(len(words))
    kind = rng.choice(["replace", "drop", "case"])
    if kind == "replace":
        words[i] = "zz" + words[i]
    elif kind == "drop" and len(words) > 1:
        del words[i]
    else:
        words[i] = words[i].upper()
    return " ".join(words)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.95, 1.0])
def test_agrees_with_comparing_every_pair(threshold: float) -> None:
    rng = random.Random(int(threshold * 100))
    frozen = synthetic_prompts(150, rng, vocabulary=300)  # a small vocabulary: many partial overlaps
    train = [(i, p) for i, p in enumerate(synthetic_prompts(300, rng, vocabulary=300))]
    train += [(1000 + i, edited(rng.choice(frozen), rng)) for i in range(150)]
    expected = brute_force(train, frozen, threshold)
    if threshold <= 0.8:  # the planted edits are tested, not just exact copies
        assert sum(r == NEAR for r in expected.values()) > 20
    assert hold_back(train, frozen, threshold) == expected


def llmbar_prompts() -> dict[str, list[str]]:
    """LLMBar dev-file prompts by subset (Natural, MT-Bench, FairEval, LLMEval2; no Adversarial)."""
    by_source: dict[str, list[str]] = {}
    with LLMBAR.open() as f:
        for line in f:
            row = json.loads(line)
            assert "Adversarial" not in row["source"]
            by_source.setdefault(row["source"].split("/")[-1], []).append(row["prompt"])
    return by_source


@pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")
def test_real_prompts_natural_frozen_against_the_other_subsets() -> None:
    prompts = llmbar_prompts()
    frozen = prompts["Natural"]
    rng = random.Random(0)
    others = [p for name, ps in prompts.items() if name != "Natural" for p in ps]
    train = list(enumerate(others))
    planted = rng.sample(frozen, 30)
    train += [(5000 + i, p.upper()) for i, p in enumerate(planted[:10])]  # exact, re-cased
    train += [(6000 + i, " ".join(p.split()) + " Please answer briefly.") for i, p in enumerate(planted[10:])]
    held = hold_back(train, frozen, THRESHOLD)
    assert held == brute_force(train, frozen, THRESHOLD)
    assert {i for i in range(5000, 5010)} <= held.keys()
    # The subsets really do share prompts with Natural: one verbatim (trailing space aside), one
    # Reddit post re-edited (Jaccard 0.94), and an MT-Bench question without its final " ?" twice.
    found = {(others[i][:40], reason) for i, reason in held.items() if i < 5000}
    assert found == {
        ("How do vaccinations work to protect indi", EXACT),
        ("Summarize the following content while ke", NEAR),
        ("How many integers are in the solution of", NEAR),
    }
    assert sum(i < 5000 for i in held) == 4
    # Appending a sentence is a near duplicate for all but the shortest prompts.
    long_enough = [6000 + i for i, p in enumerate(planted[10:]) if len(p.split()) >= 40]
    assert long_enough and all(held.get(i) == NEAR for i in long_enough)


@pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")
def test_real_prompts_mt_bench_pairs_split_at_random_share_questions() -> None:
    """MT-Bench has several pairs per question: a split of pairs (not of prompts) leaks."""
    pairs = list(enumerate(llmbar_prompts()["MT-Bench"]))
    random.Random(1).shuffle(pairs)
    frozen, train = [p for _, p in pairs[:60]], pairs[60:]
    held = hold_back(train, frozen, THRESHOLD)
    assert held == brute_force(train, frozen, THRESHOLD)
    assert sum(r == EXACT for r in held.values()) > 30


def bench(n_train: int, n_frozen: int, seed: int = 0) -> dict[str, float]:
    """hold_back on synthetic prompts with planted edits; CPU seconds and recall of the edits.

    ``.venv/bin/python -c "from tests.test_leakage import bench; print(bench(100_000, 10_000))"``
    """
    rng = random.Random(seed)
    frozen = synthetic_prompts(n_frozen, rng)
    train = list(enumerate(synthetic_prompts(n_train, rng)))
    # Re-cased (exact) and re-punctuated (near, Jaccard 1) copies of frozen prompts.
    planted = {n_train + i: p.upper() if i % 2 else p + "?" for i, p in enumerate(frozen[:100])}
    train += list(planted.items())
    started = time.process_time()
    held = hold_back(train, frozen, THRESHOLD)
    return {
        "train": len(train),
        "frozen": n_frozen,
        "cpu_seconds": round(time.process_time() - started, 2),
        "held": len(held),
        "planted_found": sum(pid in held for pid in planted) / len(planted),
    }


def test_scales_to_many_prompts() -> None:
    result = bench(20_000, 2_000)
    assert result["planted_found"] == 1.0
    assert result["cpu_seconds"] < 20  # about a second on a quiet core


def test_candidates_in_small_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    frozen = synthetic_prompts(100, rng, vocabulary=200)
    train = [(i, edited(rng.choice(frozen), rng)) for i in range(100)]
    whole = hold_back(train, frozen, 0.6)
    monkeypatch.setattr(leakage, "_PAIRS_PER_BLOCK", 3)
    assert hold_back(train, frozen, 0.6) == whole == brute_force(train, frozen, 0.6)
