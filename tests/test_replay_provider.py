"""The replay and mock litellm providers answer like live judges, through litellm itself."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import litellm
import pytest

from judge.content import content_hash
from judge.litellm_providers import register_providers
from judge.parse import parse_verdict
from judge.prompt import render_messages
from judge.providers import MockOptions, mock_answer, mock_options, replay_answer
from judge.recorded import (
    RecordedFormatError,
    RecordedPair,
    judges_in,
    load_recorded,
    parse_recorded_lines,
    recorded_to_five_point,
)
from judge.verdicts import STRENGTH, to_original
from tests.helpers import LLMBAR, SHARED_DATA

PANDALM = SHARED_DATA / "pandalm" / "testset_3annotators.jsonl"  # single order, also this format

register_providers()


def shown(pair: RecordedPair, order: str) -> list[dict[str, str]]:
    first, second = (
        (pair.response_a, pair.response_b) if order == "ab" else (pair.response_b, pair.response_a)
    )
    return render_messages(pair.prompt, first, second)


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def small_file(tmp_path: Path) -> str:
    """Single-order judgments with confidences, one recorded as invalid."""
    rows: list[dict[str, object]] = [
        {
            "id": "p1",
            "prompt": "Capital of France?",
            "response_a": "Paris",
            "response_b": "Lyon",
            "judgments": [
                {"judge": "acme/judge-1", "order": "ba", "verdict": "A", "confidence": 0.93},
                {"judge": "acme/judge-2", "order": "ab", "verdict": "invalid", "raw": "Output (a)"},
            ],
        },
        {"id": "p2", "prompt": "2+2?", "response_a": "5", "response_b": "4", "gold": "B", "judgments": []},
    ]
    return write_jsonl(tmp_path / "small.jsonl", rows)


# --- recorded-judgments files ---------------------------------------------------------------


def test_load_small_file(small_file: str) -> None:
    pairs = load_recorded(small_file)
    assert [p.id for p in pairs] == ["p1", "p2"] and pairs[1].gold == "B" and pairs[0].gold is None
    assert pairs[0].judgments[0].confidence == 0.93 and pairs[0].judgments[1].raw == "Output (a)"
    assert judges_in(pairs) == ["acme/judge-1", "acme/judge-2"]


def test_recorded_to_five_point() -> None:
    assert [recorded_to_five_point(v) for v in ("A", "B", "tie", "invalid")] == [
        "A>B",
        "B>A",
        "tie",
        "invalid",
    ]
    with pytest.raises(ValueError):
        recorded_to_five_point("A>B")


def test_every_bad_line_is_reported() -> None:
    good = {"id": "ok", "prompt": "p", "response_a": "a", "response_b": "b", "judgments": []}
    bad_judgment = {
        **good,
        "id": "j",
        "judgments": [{"judge": "x", "order": "AB", "verdict": "C", "confidence": 2}],
    }
    lines = [
        json.dumps(good),
        "{not json",
        "",
        json.dumps({"id": "m", "prompt": "p"}),
        json.dumps(bad_judgment),
        json.dumps(good),
        json.dumps({**good, "id": "g", "gold": "A>B"}),
        json.dumps([1, 2]),
        json.dumps({**good, "id": "d", "judgments": [{"judge": "x", "order": "ab", "verdict": "A"}] * 2}),
    ]
    with pytest.raises(RecordedFormatError) as caught:
        parse_recorded_lines(lines, "f.jsonl")
    errors = "\n".join(caught.value.errors)
    for expected in [
        "f.jsonl:2: invalid JSON",
        "f.jsonl:4: 'response_a' must be a string (missing)",
        "f.jsonl:4: 'judgments' must be a list (missing)",
        "f.jsonl:5: judgments[0]: 'order'",
        "f.jsonl:5: judgments[0]: 'verdict'",
        "f.jsonl:5: judgments[0]: 'confidence'",
        "f.jsonl:6: duplicate id 'ok' (first on line 1)",
        "f.jsonl:7: 'gold'",
        "f.jsonl:8: expected a JSON object",
        "f.jsonl:9: judgments[1]: duplicate judge 'x'",
    ]:
        assert expected in errors
    assert "f.jsonl:3" not in errors and "f.jsonl:1:" not in errors


def test_extra_keys_and_scalar_texts() -> None:
    row = {
        "id": 7,
        "prompt": "Is 2 even?",
        "response_a": True,
        "response_b": "No",
        "judgments": [],
        "meta": {"k": 1},
    }
    (pair,) = parse_recorded_lines([json.dumps(row)])
    assert pair.id == "7" and pair.response_a == "True" and pair.source == ""
    assert pair.extra == {"meta": {"k": 1}, "coerced_to_text": ["response_a"]}


def test_register_is_idempotent() -> None:
    for _ in range(3):
        register_providers()
    providers = [e["provider"] for e in litellm.custom_provider_map]
    assert providers.count("replay") == 1 and providers.count("mock") == 1


@pytest.mark.parametrize(
    ("path", "count", "hints"), [(LLMBAR, 6128, False), (PANDALM, 1998, True)], ids=["llmbar", "pandalm"]
)
def test_replay_whole_file(path: Path, count: int, hints: bool) -> None:
    """Every recorded judgment comes back as recorded: all of them through ``replay_answer``
    (how the service asks a replay judge), and a sample through litellm.acompletion, with every
    judgment of a pair whose texts are recorded more than once.

    PandaLM holds a few pairs with identical texts but different recorded answers; metadata hints
    select each recording (without them the first one in the file answers).
    """
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    pairs = load_recorded(path)
    calls = [(p, j.judge, j.order) for p in pairs for j in p.judgments]
    expected = [recorded_to_five_point(j.verdict) for p in pairs for j in p.judgments]

    def hint(pair: RecordedPair, order: str) -> dict[str, str] | None:
        return {"replay_pair_id": pair.id, "replay_order": order} if hints else None

    def verdict(text: str, order: str) -> str:
        return to_original(parse_verdict(text).verdict, order)

    started = time.perf_counter()
    direct = [
        verdict(replay_answer(judge, shown(p, order), str(path), hint(p, order)), order)
        for p, judge, order in calls
    ]
    elapsed = time.perf_counter() - started
    print(
        f"replayed {len(direct)} judgments from {path.name} in {elapsed:.1f}s ({len(direct) / elapsed:.0f}/s)"
    )
    assert len(direct) == count
    assert [i for i, (g, e) in enumerate(zip(direct, expected, strict=True)) if g != e] == []

    texts = Counter(content_hash(p.prompt, *sorted((p.response_a, p.response_b))) for p in pairs)
    repeated = [
        i
        for i, (p, _, _) in enumerate(calls)
        if texts[content_hash(p.prompt, *sorted((p.response_a, p.response_b)))] > 1
    ]
    sample = sorted(set(random.Random(0).sample(range(len(calls)), 300)) | set(repeated))
    semaphore = asyncio.Semaphore(64)

    async def through_litellm(i: int) -> str:
        pair, judge, order = calls[i]
        async with semaphore:
            response = await litellm.acompletion(
                model=f"replay/{judge}",
                messages=shown(pair, order),
                api_base=str(path),
                metadata=hint(pair, order),
            )
        return verdict(response.choices[0].message.content, order)

    async def replay_sample() -> list[str]:
        return await asyncio.gather(*(through_litellm(i) for i in sample))

    assert asyncio.run(replay_sample()) == [expected[i] for i in sample]


@pytest.mark.skipif(not LLMBAR.exists(), reason="shared LLMBar data not available")
def test_replay_sync_completion() -> None:
    pair = load_recorded(LLMBAR)[0]
    for j in pair.judgments[:4]:
        response = litellm.completion(
            model=f"replay/{j.judge}", messages=shown(pair, j.order), api_base=str(LLMBAR)
        )
        parsed = parse_verdict(response.choices[0].message.content)
        assert to_original(parsed.verdict, j.order) == recorded_to_five_point(j.verdict)
        assert response.usage.prompt_tokens > 0 and response._hidden_params["response_cost"] == 0.0


def test_single_order_with_confidence(small_file: str) -> None:
    pair = load_recorded(small_file)[0]
    response = litellm.completion(
        model="replay/acme/judge-1", messages=shown(pair, "ba"), api_base=small_file
    )
    body = json.loads(response.choices[0].message.content)
    # Recorded "A" (Paris) in order ba: Paris was shown second, so the positional answer is B>A.
    assert body == {
        "reasoning": "",
        "verdict": "B>A",
        "both_bad": False,
        "safety_flag": False,
        "confidence": 0.93,
    }
    parsed = parse_verdict(response.choices[0].message.content)
    assert to_original(parsed.verdict, "ba") == "A>B" and parsed.confidence == 0.93


def test_recorded_invalid_reads_as_invalid(small_file: str) -> None:
    pair = load_recorded(small_file)[0]
    response = litellm.completion(
        model="replay/acme/judge-2", messages=shown(pair, "ab"), api_base=small_file
    )
    assert parse_verdict(response.choices[0].message.content).verdict == "invalid"


def test_missing_order_judge_and_pair_are_not_found(small_file: str) -> None:
    pair = load_recorded(small_file)[0]
    with pytest.raises(litellm.NotFoundError, match=r"acme/judge-1.*order 'ab'"):
        litellm.completion(model="replay/acme/judge-1", messages=shown(pair, "ab"), api_base=small_file)
    with pytest.raises(litellm.NotFoundError, match="nobody"):
        asyncio.run(
            litellm.acompletion(model="replay/nobody", messages=shown(pair, "ab"), api_base=small_file)
        )
    unknown = render_messages("Capital of Spain?", "Madrid", "Paris")
    with pytest.raises(litellm.NotFoundError, match="no pair"):
        asyncio.run(litellm.acompletion(model="replay/acme/judge-1", messages=unknown, api_base=small_file))


def test_configuration_errors_are_not_retryable(small_file: str, tmp_path: Path) -> None:
    messages = render_messages("Capital of France?", "Lyon", "Paris")
    with pytest.raises(litellm.NotFoundError, match="file not found"):
        litellm.completion(model="replay/j", messages=messages, api_base=str(tmp_path / "nope.jsonl"))
    with pytest.raises(litellm.BadRequestError, match="api_base"):
        litellm.completion(model="replay/j", messages=messages)
    with pytest.raises(litellm.BadRequestError, match="render_messages"):
        litellm.completion(
            model="replay/acme/judge-1", messages=[{"role": "user", "content": "hi"}], api_base=small_file
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(litellm.BadRequestError, match=r"bad.jsonl:1"):
        litellm.completion(model="replay/acme/judge-1", messages=messages, api_base=str(bad))


def test_index_follows_file_changes(tmp_path: Path) -> None:
    row = {"id": "p", "prompt": "q", "response_a": "a", "response_b": "b"}
    path = write_jsonl(
        tmp_path / "f.jsonl", [{**row, "judgments": [{"judge": "j", "order": "ab", "verdict": "A"}]}]
    )
    messages = render_messages("q", "a", "b")
    first = litellm.completion(model="replay/j", messages=messages, api_base=path)
    assert json.loads(first.choices[0].message.content)["verdict"] == "A>B"
    write_jsonl(Path(path), [{**row, "judgments": [{"judge": "j", "order": "ab", "verdict": "tie"}]}])
    os.utime(
        path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9)
    )  # a distinct mtime even on coarse clocks
    second = litellm.completion(model="replay/j", messages=messages, api_base=path)
    assert json.loads(second.choices[0].message.content)["verdict"] == "tie"


def test_same_texts_recorded_twice(tmp_path: Path) -> None:
    """A pair stored again with A/B swapped: the first recording answers unless a hint picks another."""
    rows = [
        {"id": "x", "prompt": "q", "response_a": "a", "response_b": "b", "judgments": [
            {"judge": "j", "order": "ab", "verdict": "A"}, {"judge": "k", "order": "ab", "verdict": "A"}]},
        {"id": "y", "prompt": "q", "response_a": "b", "response_b": "a", "judgments": [
            {"judge": "j", "order": "ba", "verdict": "B"}, {"judge": "k", "order": "ba", "verdict": "A"}]},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "twice.jsonl", rows)
    messages = render_messages("q", "a", "b")  # x in order ab, y in order ba
    agreed = litellm.completion(model="replay/j", messages=messages, api_base=path)
    assert json.loads(agreed.choices[0].message.content)["verdict"] == "A>B"
    first = litellm.completion(model="replay/k", messages=messages, api_base=path)
    assert json.loads(first.choices[0].message.content)["verdict"] == "A>B"
    hinted = litellm.completion(
        model="replay/k",
        messages=messages,
        api_base=path,
        metadata={"replay_pair_id": "y", "replay_order": "ba"},
    )
    assert json.loads(hinted.choices[0].message.content)["verdict"] == "B>A"


def test_judge_names_keep_their_slashes(small_file: str) -> None:
    pair = load_recorded(small_file)[0]
    response = litellm.completion(
        model="replay/acme/judge-1", messages=shown(pair, "ba"), api_base=small_file
    )
    assert response.model.endswith("acme/judge-1")
    assert content_hash(pair.prompt, pair.response_b, pair.response_a) != content_hash(
        pair.prompt, pair.response_a, pair.response_b
    )


# --- mock ------------------------------------------------------------------------------------


def test_mock_is_deterministic_and_mostly_order_consistent() -> None:
    options = MockOptions()
    consistent, n = 0, 2000
    for i in range(n):
        a, b = f"answer {i}", f"other answer {i * 7}"
        ab = json.loads(mock_answer("m", f"q{i}", a, b, options))
        ba = json.loads(mock_answer("m", f"q{i}", b, a, options))
        assert ab == json.loads(mock_answer("m", f"q{i}", a, b, options))
        assert ab["verdict"] in STRENGTH and 0.5 <= ab["confidence"] <= 1.0
        consistent += to_original(ab["verdict"], "ab") == to_original(ba["verdict"], "ba")
    assert 0.75 < consistent / n < 0.95  # ~10% of each order is position-biased


def test_mock_through_litellm() -> None:
    messages = render_messages("q", "a", "b")
    started = time.perf_counter()
    response = asyncio.run(litellm.acompletion(model="mock/j", messages=messages, api_base="latency_ms=50"))
    assert time.perf_counter() - started >= 0.05
    assert parse_verdict(response.choices[0].message.content).verdict in STRENGTH
    sync = litellm.completion(model="mock/j", messages=messages)
    assert sync.choices[0].message.content == response.choices[0].message.content
    invalid = litellm.completion(model="mock/j", messages=messages, api_base="invalid_rate=1")
    assert parse_verdict(invalid.choices[0].message.content).verdict == "invalid"


def test_mock_errors() -> None:
    messages = render_messages("q", "a", "b")
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(model="mock/j", messages=messages, api_base="error_rate=1")
    with pytest.raises(litellm.BadRequestError, match="unknown mock option"):
        litellm.completion(model="mock/j", messages=messages, api_base="latency=3")
    assert mock_options(None) == mock_options("") == MockOptions()
    assert mock_options("latency_ms=300&invalid_rate=0").latency_ms == 300


def test_mock_handler_is_cheap() -> None:
    messages = render_messages("a prompt " * 50, "first answer " * 100, "second answer " * 100)
    from judge.prompt import extract_shown

    started = time.process_time()  # CPU time: a busy machine does not stretch it
    for _ in range(2000):
        mock_answer("m", *extract_shown(messages), MockOptions())
    per_call_us = (time.process_time() - started) / 2000 * 1e6
    assert per_call_us < 200, per_call_us


def test_annotations_are_read_and_bad_ones_are_named() -> None:
    base = {"prompt": "p", "response_a": "a", "response_b": "b", "judgments": []}
    good = {"id": "1", **base, "annotations": [{"annotator": "x", "label": "A"}, {"label": "tie"}]}
    (pair,) = parse_recorded_lines([json.dumps(good)])
    assert pair.annotations == [("x", "A"), ("annotator2", "tie")] and pair.gold is None
    assert pair.human_labels() == [("x", "A"), ("annotator2", "tie")]
    gold_only = {"id": "2", **base, "gold": "B"}
    assert parse_recorded_lines([json.dumps(gold_only)])[0].human_labels() == [("gold", "B")]
    bad = [
        {"id": "3", **base, "annotations": "A"},
        {"id": "4", **base, "annotations": [{"annotator": "x", "label": "A better"}]},
        {
            "id": "5",
            **base,
            "annotations": [{"annotator": "x", "label": "A"}, {"annotator": "x", "label": "B"}],
        },
    ]
    with pytest.raises(RecordedFormatError) as raised:
        parse_recorded_lines([json.dumps(row) for row in bad], "f.jsonl")
    errors = "\n".join(raised.value.errors)
    assert "f.jsonl:1: 'annotations' must be a list" in errors
    assert "f.jsonl:2: annotations[0]: expected" in errors and "'A better'" in errors
    assert "f.jsonl:3: annotations[1]: duplicate annotator 'x'" in errors
