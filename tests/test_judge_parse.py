"""parse_verdict reads every format we meet and never guesses; confidence from logprobs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judge.parse import confidence_from_logprobs, normalize_label, parse_verdict
from judge.recorded import load_recorded, recorded_to_five_point
from judge.verdicts import VERDICTS, to_original

LLMBAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "replay" / "llmbar_dev.jsonl"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        # strict JSON, as the rubric prompt asks
        ('{"reasoning": "A is right", "verdict": "A>>B", "both_bad": false, "safety_flag": false}', "A>>B"),
        ('{"reasoning": "", "verdict": "B>A", "both_bad": false, "safety_flag": false}', "B>A"),
        ('{"verdict": "tie"}', "tie"),
        ('  {"verdict": "b>>a"}\n', "B>>A"),
        ('{"verdict": "A"}', "A>B"),
        ('{"verdict": "Response B"}', "B>A"),
        ('{"Verdict": "A>B"}', "A>B"),
        ('{"verdict": "A ≫ B"}', "A>>B"),
        ('{"verdict": "A<B"}', "B>A"),
        ('{"verdict": "A=B"}', "tie"),
        # fenced and embedded JSON
        (
            '```json\n{"reasoning": "x", "verdict": "A>B", "both_bad": false, "safety_flag": false}\n```',
            "A>B",
        ),
        ('Here is my evaluation:\n```\n{"verdict": "B>>A"}\n```\nThanks!', "B>>A"),
        (
            'After comparing, my answer is {"reasoning": "B cites {braces}", "verdict": "B>A"} as requested.',
            "B>A",
        ),
        ('{"reasoning": "nested {\\"verdict\\": \\"A>B\\"} quoted", "verdict": "tie"}', "tie"),
        # truncated JSON still carrying the verdict field
        ('{"reasoning": "Both are fine but A is more precise", "verdict": "A>B", "both_bad": fal', "A>B"),
        ("{'reasoning': 'python dict', 'verdict': 'B>A'}", "B>A"),
        # verdict lines
        ("Reasoning: B is correct.\nVERDICT: B>A", "B>A"),
        ("**Verdict:** A>>B", "A>>B"),
        ("Final verdict: tie", "tie"),
        ("verdict = A≫B", "A>>B"),
        ("Analysis...\n\nVerdict: Response A", "A>B"),
        ("Verdict: A>B (A is more precise)", "A>B"),
        ("My final verdict is: B - it answers the question", "B>A"),
        ("A>B \u2014 A is more accurate", "A>B"),
        ('{"verdict": "B>>A (much better)"}', "B>>A"),
        # MT-Bench / Arena-Hard markers
        ("Assistant A follows the instructions better. [[A]]", "A>B"),
        ("Both are equally helpful.\n\n[[C]]", "tie"),
        ("My final verdict is [[B]].", "B>A"),
        ("My final verdict is: [[A>>B]]", "A>>B"),
        ("My final verdict is tie: [[A=B]]", "tie"),
        ("Verdict: [[B]]", "B>A"),
        # LLMBar
        ("Output (a)", "A>B"),
        ("Output (b)", "B>A"),
        ("Output (b) is better because it answers the question.", "B>A"),
        # bare labels
        ("A", "A>B"),
        ("b", "B>A"),
        ("Tie", "tie"),
        ("A>>B", "A>>B"),
        ("a>b", "A>B"),
        ("A≫B", "A>>B"),
        ("B ≫ A", "B>>A"),
        ("Response A", "A>B"),
        ("Assistant B.", "B>A"),
        ("(a)", "A>B"),
        ('"B>A"', "B>A"),
        ("Response B\n\nResponse B explains the steps.", "B>A"),
        # ambiguous, refused, empty or unknown: invalid, never a guess
        ("", "invalid"),
        ("   \n", "invalid"),
        ("Output (a) and Output (b) are both good.", "invalid"),
        ("I cannot select either Output (a) or Output (b) as they both violate safety", "invalid"),
        ("I cannot provide a response to this question as it goes against ethical standards.", "invalid"),
        ("I'm sorry, but I can't help with that. Output (a)", "invalid"),
        ("[[A]] ... on reflection [[B]]", "invalid"),
        ("Verdict: A>B\n[[B]]", "invalid"),
        ('{"verdict": "invalid", "reasoning": "Output (a)"}', "invalid"),
        ('{"verdict": "maybe A"}', "invalid"),
        ('{"verdict": 1}', "invalid"),
        ('{"verdict": "A>B"} and also {"verdict": "B>A"}', "invalid"),
        ('{"reasoning": "no verdict key"}', "invalid"),
        ("Verdict: it depends", "invalid"),
        ("Verdict: A or B, hard to say", "invalid"),
        ("Verdict: Response A is better because it is shorter", "invalid"),
        ("I can\u2019t help with that. Output (a)", "invalid"),
        ("Both responses are good.", "invalid"),
        ("Response 1 is better because it is concise.", "invalid"),
        ("[[8]]", "invalid"),
        ("C", "invalid"),
    ],
)
def test_parse_formats(text: str, verdict: str) -> None:
    assert parse_verdict(text).verdict == verdict


PIECES = [
    "Output (a)",
    "Output (b)",
    "[[A]]",
    "[[C]]",
    '{"verdict": "',
    "A>B",
    '"}',
    "Verdict: ",
    "{",
    "\n",
    "tie",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=15)), max_size=10).map("".join))
def test_parse_never_raises(text: str) -> None:
    parsed = parse_verdict(text)
    assert parsed.verdict in (*VERDICTS, "invalid")
    assert parsed.confidence is None or 0.0 <= parsed.confidence <= 1.0


def test_same_direction_different_strength_gives_weak_form() -> None:
    assert parse_verdict("Verdict: A>>B\n[[A]]").verdict == "A>B"


def test_json_fields_are_read() -> None:
    text = json.dumps(
        {
            "reasoning": "B is unsafe",
            "verdict": "A>>B",
            "both_bad": True,
            "safety_flag": True,
            "confidence": 0.8,
        }
    )
    parsed = parse_verdict(text)
    assert (parsed.verdict, parsed.both_bad, parsed.safety_flag) == ("A>>B", True, True)
    assert parsed.reasoning == "B is unsafe" and parsed.confidence == 0.8


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, 0.0), (1, 1.0), (0.35, 0.35), ("0.9", 0.9), (1.5, None), (-0.1, None), (85, None), (True, None)],
)
def test_confidence_key(value: object, expected: float | None) -> None:
    assert parse_verdict(json.dumps({"verdict": "A>B", "confidence": value})).confidence == expected


def test_nan_confidence_is_none() -> None:
    assert parse_verdict('{"verdict": "A>B", "confidence": NaN}').confidence is None


def test_non_json_answers_keep_text_as_reasoning() -> None:
    parsed = parse_verdict("Output (b)")
    assert parsed.reasoning == "Output (b)" and parsed.confidence is None and not parsed.both_bad


def test_truncated_json_reads_flags() -> None:
    parsed = parse_verdict('{"verdict": "B>A", "both_bad": true, "safety_flag": tr')
    assert (parsed.verdict, parsed.both_bad, parsed.safety_flag) == ("B>A", True, False)


@pytest.mark.parametrize("label", ["A>>B", "A>B", "tie", "B>A", "B>>A"])
def test_normalize_label_is_identity_on_verdicts(label: str) -> None:
    assert normalize_label(label) == label


@pytest.mark.skipif(not LLMBAR.exists(), reason="shared LLMBar data not available")
def test_every_llmbar_raw_output() -> None:
    """Each recorded raw text, read positionally and mapped back, gives the recorded verdict."""
    checked = set()
    for pair in load_recorded(LLMBAR):
        for j in pair.judgments:
            parsed = parse_verdict(j.raw or "")
            assert to_original(parsed.verdict, j.order) == recorded_to_five_point(j.verdict), (pair.id, j)
            checked.add(j.raw)
    assert {"Output (a)", "Output (b)", ""} <= checked and len(checked) > 10
    assert parse_verdict("Output (a)").verdict == "A>B" and parse_verdict("Output (b)").verdict == "B>A"


# --- logprobs -------------------------------------------------------------------------------


def _logprobs(steps: list[tuple[str, dict[str, float]]], as_dict: bool = False) -> object:
    """A chat choice's ``logprobs``: each step is (chosen token, {alternative: probability})."""
    content = []
    for token, alternatives in steps:
        top = [{"token": t, "logprob": math.log(p)} for t, p in alternatives.items()]
        chosen = math.log(alternatives.get(token, 0.5))
        content.append({"token": token, "logprob": chosen, "top_logprobs": top})
    if as_dict:
        return {"content": content}
    return SimpleNamespace(
        content=[
            SimpleNamespace(
                token=c["token"],
                logprob=c["logprob"],
                top_logprobs=[SimpleNamespace(**t) for t in c["top_logprobs"]],
            )
            for c in content
        ]
    )


def _json_steps(value_token: str, alternatives: dict[str, float]) -> list[tuple[str, dict[str, float]]]:
    prefix = ['{"', "reason", "ing", '":', ' "', "A", " is", " right", '",', ' "', "verdict", '":']
    suffix = ['",', ' "', "both", "_bad", '":', " false", "}"]
    return [(t, {t: 1.0}) for t in prefix] + [(value_token, alternatives)] + [(t, {t: 1.0}) for t in suffix]


@pytest.mark.parametrize("as_dict", [False, True])
def test_logprob_confidence_sums_same_direction(as_dict: bool) -> None:
    steps = _json_steps(' "A', {' "A': 0.6, ' "B': 0.25, ' "t': 0.1, '"A': 0.05})
    steps.insert(13, (">>B", {">>B": 0.7, ">B": 0.3}))
    logprobs = _logprobs(steps, as_dict)
    # ' "A' is the chosen A-direction token; '"A' lacks the leading space, so it is another path.
    assert confidence_from_logprobs(logprobs, "A>>B") == pytest.approx(0.6)
    assert confidence_from_logprobs(logprobs, "A>B") == pytest.approx(0.6)
    assert confidence_from_logprobs(logprobs, "B>A") is None  # the tokens say A, not B


def test_logprob_confidence_value_in_its_own_token() -> None:
    steps = [(t, {t: 1.0}) for t in ['{"', "verdict", '":', ' "']]
    steps += [
        ("B", {"B": 0.7, "A": 0.2, "tie": 0.05, "Response": 0.05}),
        (">A", {">A": 1.0}),
        ('"}', {'"}': 1.0}),
    ]
    assert confidence_from_logprobs(_logprobs(steps), "B>A") == pytest.approx(0.7)
    steps[4] = ("tie", {"B": 0.7, "A": 0.2, "tie": 0.1})
    assert confidence_from_logprobs(_logprobs(steps), "tie") == pytest.approx(0.1)


def test_logprob_confidence_llmbar_and_mtbench_styles() -> None:
    output = [
        ("Output", {"Output": 1.0}),
        (" (", {" (": 1.0}),
        ("b", {"b": 0.8, "a": 0.2}),
        (")", {")": 1.0}),
    ]
    assert confidence_from_logprobs(_logprobs(output), "B>A") == pytest.approx(0.8)
    brackets = [("[[", {"[[": 1.0}), ("C", {"C": 0.5, "A": 0.3, "B": 0.2}), ("]]", {"]]": 1.0})]
    assert confidence_from_logprobs(_logprobs(brackets), "tie") == pytest.approx(0.5)


@pytest.mark.parametrize(
    "logprobs",
    [
        None,
        {},
        {"content": None},
        {"content": []},
        SimpleNamespace(content=None),
        {"content": [{"token": None}]},
    ],
)
def test_logprob_confidence_missing(logprobs: object) -> None:
    assert confidence_from_logprobs(logprobs, "A>B") is None


def test_logprob_confidence_not_derivable() -> None:
    steps = [(t, {t: 1.0}) for t in ["I", " think", " A", " wins"]]
    assert confidence_from_logprobs(_logprobs(steps), "A>B") is None
    assert confidence_from_logprobs(_logprobs(_json_steps(' "A', {' "A': 1.0})), "invalid") is None


def test_logprob_confidence_with_litellm_types() -> None:
    from litellm.types.utils import ChatCompletionTokenLogprob, ChoiceLogprobs, TopLogprob

    def step(token: str, alternatives: dict[str, float]) -> ChatCompletionTokenLogprob:
        top = [TopLogprob(token=t, logprob=math.log(p)) for t, p in alternatives.items()]
        return ChatCompletionTokenLogprob(
            token=token, logprob=math.log(alternatives[token]), top_logprobs=top
        )

    content = [step(t, {t: 1.0}) for t in ['{"', "verdict", '":', ' "']]
    content += [step("A", {"A": 0.9, "B": 0.1}), step(">B", {">B": 1.0}), step('"}', {'"}': 1.0})]
    assert confidence_from_logprobs(ChoiceLogprobs(content=content), "A>B") == pytest.approx(0.9)
