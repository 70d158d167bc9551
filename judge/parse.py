"""Read a judge's answer into a positional verdict, without ever guessing.

Accepted, most explicit first: a JSON object with a "verdict" key (bare, ```json fenced or embedded
in prose; a truncated object's "verdict" field still counts), ``Verdict: A>B`` lines, ``[[A]]`` /
``[[B]]`` / ``[[C]]`` (MT-Bench) and ``[[A>>B]]`` (Arena-Hard) markers, then LLMBar's
``Output (a)`` / ``Output (b)`` and a bare label ("A", "tie", "A>>B", "Response B", ...). Markers
that disagree, refusals, and anything unrecognised give ``invalid``. "A" always means the response
shown first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from judge.verdicts import INVALID, VERDICTS, from_side, from_strength, side, strength

# The verdict object the rubric prompt asks for (judge/prompt.py) and parse_verdict reads: what a
# judge set to ``response_format: "json_schema"`` is made to answer.
VERDICT_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string"},
        "verdict": {"type": "string", "enum": list(VERDICTS)},
        "both_bad": {"type": "boolean"},
        "safety_flag": {"type": "boolean"},
    },
    "required": ["reasoning", "verdict", "both_bad", "safety_flag"],
    "additionalProperties": False,
}


@dataclass
class ParsedVerdict:
    verdict: str  # positional: one of judge.verdicts.VERDICTS, or "invalid"
    both_bad: bool
    safety_flag: bool
    reasoning: str
    confidence: float | None


_UNICODE = str.maketrans({"≫": ">>", "≪": "<<", "＞": ">", "＜": "<", "＝": "=", "≈": "="})
_STRIP = " \t\r\n\"'`*_.,!:;[]{}"
_SIDE = re.compile(r"(?:(?:response|assistant|output|answer)\s*)?\(?([ab])\)?(?:\s+is\s+better)?")
_COMPARE = re.compile(r"([ab])(>>|>|==|=|<<|<)([ab])")
_OP_STRENGTH = {">>": 2, ">": 1, "==": 0, "=": 0, "<": -1, "<<": -2}
_TIE_WORDS = {"tie", "a tie", "draw", "equal", "both equal", "equally good", "no preference"}
# A label followed only by a separator and a remark, e.g. "A>B (A is more precise)" or "B - it is correct".
_LEADING = re.compile(
    r"((?:(?:response|assistant|output|answer)\s*)?\(?[ab]\)?|[ab]\s*(?:>>|>|==|=|<<|<)\s*[ab]|tie)"
    r"(?=\s*(?:[-(:;,.]|\u2013|\u2014))"
)


def normalize_label(value: str, brackets: bool = False) -> str | None:
    """A verdict spelling ("a>b", "A≫B", "Response A", "tie", ...) as a five-point verdict, or None.

    ``brackets``: the value came from an MT-Bench ``[[...]]`` marker, where "C" means a tie.
    """
    s = re.sub(r"\s+", " ", value.translate(_UNICODE).lower()).strip(_STRIP)
    if s in _TIE_WORDS or (brackets and s == "c"):
        return "tie"
    if m := _SIDE.fullmatch(s):
        return from_side(m.group(1).upper())
    if (m := _COMPARE.fullmatch(s.replace(" ", ""))) and m.group(1) != m.group(3):
        value_for_a = _OP_STRENGTH[m.group(2)] * (1 if m.group(1) == "a" else -1)
        return from_strength(value_for_a)
    if m := _LEADING.match(s):
        return normalize_label(m.group(1), brackets)
    return None


def _agreed(labels: Sequence[str | None]) -> str:
    """One verdict from several markers: identical, or the same direction (then the weak form)."""
    known = [v for v in labels if v is not None]
    if not known or len(known) < len(labels):
        return INVALID
    distinct = set(known)
    if len(distinct) == 1:
        return known[0]
    sides = {side(v) for v in distinct}
    only = sides.pop() if len(sides) == 1 else None
    return from_side(only) if only is not None else INVALID


def json_objects(text: str, limit: int = 200) -> list[dict[str, object]]:
    """Every top-level JSON object in the text (bare, fenced or embedded in prose)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, object]] = []
    pos = text.find("{")
    while pos >= 0 and limit > 0:
        limit -= 1  # bound the work on long prose full of braces
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        pos = text.find("{", end)
    return found


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in {"true", "yes"})


def _confidence(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0.0 <= number <= 1.0 else None  # NaN fails both comparisons


def _from_json(objects: list[dict[str, object]]) -> ParsedVerdict:
    labels = [normalize_label(v) if isinstance(v, str) else None for v in (o["verdict"] for o in objects)]
    first = objects[0]
    reasoning = next((first[k] for k in ("reasoning", "explanation", "rationale") if k in first), "")
    return ParsedVerdict(
        verdict=_agreed(labels),
        both_bad=_flag(first.get("both_bad")),
        safety_flag=_flag(first.get("safety_flag")),
        reasoning=reasoning if isinstance(reasoning, str) else "",
        confidence=_confidence(first.get("confidence")),
    )


_JSON_FIELD = re.compile(r"[\"']verdict[\"']\s*:\s*[\"']([^\"'\n]{0,40})[\"']", re.IGNORECASE)
_JSON_BOOL = r"[\"']{}[\"']\s*:\s*[\"']?(true|false)"
_LINE_PREFIX = r"^[ \t>#*_-]*(?:(?:my|the)\s+)?(?:(?:final|overall)\s+)?verdict(?:\s+is)?[ \t*_]*[:=]"
_VERDICT_LINE = re.compile(_LINE_PREFIX + r"[ \t*_`\"']*(.+?)[ \t*_`\"'.]*$", re.I | re.M)
_BRACKETS = re.compile(r"\[\[\s*([^\[\]\n]{1,12}?)\s*\]\]")
_OUTPUT = re.compile(r"\boutput\s*\(\s*([ab])\s*\)", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\bI\s*(?:cannot|can['\u2019]t|can not|won['\u2019]t|will not|am (?:unable|not able) to|must decline to)"
    r"\s+(?:provide|select|choose|pick|judge|evaluate|compare|answer|help|comply|assist|determine)"
    r"|\bas an AI\b|\bI['\u2019]m sorry,? but\b",
    re.IGNORECASE,
)


def _plain(verdict: str, text: str, both_bad: bool = False, safety_flag: bool = False) -> ParsedVerdict:
    return ParsedVerdict(verdict, both_bad, safety_flag, text.strip(), None)


def parse_verdict(text: str) -> ParsedVerdict:
    """Parse a judge's raw answer. ``verdict`` is positional (A = first shown) or ``invalid``."""
    if not isinstance(text, str) or not text.strip():
        return _plain(INVALID, text if isinstance(text, str) else "")
    lowered = [{k.lower(): v for k, v in o.items()} for o in json_objects(text)]
    objects = [o for o in lowered if "verdict" in o]
    if objects:
        return _from_json(objects)

    # Explicit markers outside valid JSON: every one must be readable and they must agree.
    labels = [normalize_label(v) for v in _JSON_FIELD.findall(text)]
    labels += [normalize_label(v) for v in _VERDICT_LINE.findall(text)]
    labels += [normalize_label(v, brackets=True) for v in _BRACKETS.findall(text)]
    if labels:
        flags = [re.search(_JSON_BOOL.format(k), text, re.IGNORECASE) for k in ("both_bad", "safety_flag")]
        both_bad, safety = (m is not None and m.group(1).lower() == "true" for m in flags)
        return _plain(_agreed(labels), text, both_bad, safety)

    # Loose forms: a refusal that mentions an output (LLMBar's llama-2 refusals do) is not a verdict.
    if _REFUSAL.search(text):
        return _plain(INVALID, text)
    loose = [from_side(m.upper()) for m in _OUTPUT.findall(text)]
    if (first_line := normalize_label(text.strip().splitlines()[0])) is not None:
        loose.append(first_line)
    return _plain(_agreed(loose), text)


def invalid_answer_error(raw: str | None) -> str:
    """Why a judgment is ``invalid``, for results that would otherwise show no error: the
    answer's length and its start.

    Stored judgments keep ``error`` for failed calls only (routing counts those as failures);
    readers of an invalid verdict with no error show this instead.

    >>> invalid_answer_error("I would rather not say.")
    'InvalidAnswer: no verdict found in the answer (23 characters; starts "I would rather not say.")'
    """
    if not raw or not raw.strip():
        return "InvalidAnswer: the answer is empty"
    start = " ".join(raw.split())[:80]
    return f'InvalidAnswer: no verdict found in the answer ({len(raw)} characters; starts "{start}")'


# --- confidence from token log-probabilities -------------------------------------------------

# Where the verdict's value starts, by answer format; the first format found in the text wins.
_VALUE_STARTS = (
    ("json", re.compile(r'"verdict"\s*:\s*"', re.IGNORECASE)),
    ("line", re.compile(_LINE_PREFIX + r"[ \t*_`\"'\[]*", re.I | re.M)),
    ("bracket", re.compile(r"\[\[\s*")),
    ("output", re.compile(r"\boutput\s*\(\s*", re.IGNORECASE)),
)
# An answer that is the label alone ("A>B", "Response B", "tie": small models answer so): the
# value starts at the first line's label, past any quoting and a "Response"-like word.
_BARE_START = re.compile(r"[\s*_`\"'\[(]*(?:(?:response|assistant|output|answer)\s*\(?\s*)?", re.IGNORECASE)


def _get(obj: object, name: str) -> object:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _direction(value_start: str, mode: str) -> str | None:
    """The verdict direction a value beginning with this text commits to ("A", "B", "tie")."""
    s = value_start.lstrip().lower()
    if not s:
        return None
    if s[0] in "ab":
        return s[0].upper()
    if s[0] == "t" or (mode == "bracket" and s[0] == "c"):
        return "tie"
    return None


def confidence_from_logprobs(logprobs: object, verdict: str) -> float | None:
    """Probability mass the judge put on the direction of ``verdict`` (positional), or None.

    Finds the token where the verdict's value starts (a JSON "verdict" value, a ``Verdict:``
    line, a ``[[...]]`` or ``Output (x)`` marker, else a first line that is the label alone) and
    sums exp(logprob) over the chosen token and its ``top_logprobs`` alternatives that share the
    token's text before the value and commit to the same direction. Alternatives outside the top
    list are unseen, so this is a lower bound.
    Returns None when the verdict is invalid, logprobs are missing, or the tokens do not show
    this verdict's direction at the value position.
    """
    want = side(verdict) if strength(verdict) is not None else None
    content = _get(logprobs, "content") if logprobs is not None else None
    if want is None or not isinstance(content, list) or not content:
        return None
    tokens: list[str] = []
    for item in content:
        token = _get(item, "token")
        if not isinstance(token, str):
            return None
        tokens.append(token)
    text = "".join(tokens)
    found = next(((mode, m.end()) for mode, rx in _VALUE_STARTS if (m := rx.search(text))), None)
    if found is None and text.strip() and normalize_label(text.strip().splitlines()[0]) is not None:
        bare = _BARE_START.match(text)  # it matches any text (every part is optional)
        found = ("bare", bare.end() if bare else 0)
    if found is None:
        return None
    mode, pos = found
    index, start = 0, 0  # the token covering character `pos`, and where it starts
    while index < len(tokens) and start + len(tokens[index]) <= pos:
        start += len(tokens[index])
        index += 1
    if index == len(tokens):
        return None
    chosen = tokens[index]
    prefix = chosen[: pos - start]
    if _direction(chosen[len(prefix) :], mode) != want:
        return None
    candidates: dict[str, float] = {}
    chosen_logprob = _get(content[index], "logprob")
    if isinstance(chosen_logprob, int | float):
        candidates[chosen] = float(chosen_logprob)
    alternatives = _get(content[index], "top_logprobs")
    for alt in alternatives if isinstance(alternatives, list) else []:
        token, logprob = _get(alt, "token"), _get(alt, "logprob")
        if isinstance(token, str) and isinstance(logprob, int | float):
            candidates.setdefault(token, float(logprob))
    mass = sum(
        math.exp(lp)
        for token, lp in candidates.items()
        if token.startswith(prefix) and _direction(token[len(prefix) :], mode) == want
    )
    return min(1.0, mass) if candidates else None
