"""Aspects: separate questions about one pair ("B is more helpful but A is safer").

A project may ask its judges several aspects in one call (:mod:`judge.prompt` renders them, the
answer holds one verdict per aspect). This module is the judge-side vocabulary, pure:

* :class:`AspectQuestion`: what the prompt asks of one aspect (name, description, scale);
* :func:`parse_aspects`: the per-aspect verdicts in an answer, read as tolerantly as
  :func:`judge.parse.parse_verdict` reads the overall one (an ``"aspects"`` object or list, the
  aspects as top-level keys, ``helpfulness: A>B`` lines; names in any case, spacing or a
  unique prefix, in any order); an aspect with no readable verdict is ``invalid``;
* :func:`combine_weighted`: the overall verdict as the declared weighted combination.

Verdicts here are positional (A = shown first) until the caller maps them back
(:func:`to_original_aspects`).

>>> qs = (AspectQuestion("helpfulness"), AspectQuestion("harmlessness", scale="three_way"))
>>> parse_aspects('{"aspects": {"Helpfulness": "B>A", "harmless": "A"}}', qs)
{'helpfulness': 'B>A', 'harmlessness': 'A>B'}
>>> combine_weighted({"helpfulness": "B>>A", "harmlessness": "A>B"},
...                  {"helpfulness": 0.5, "harmlessness": 0.3})
'B>A'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from judge.parse import VERDICT_SCHEMA, json_objects, normalize_label
from judge.verdicts import INVALID, STRENGTH, VERDICTS, from_side, from_strength, side, to_original

Scale = Literal["five_point", "three_way"]
SCALES: tuple[str, ...] = ("five_point", "three_way")
# The labels a judge may give on each scale (what the prompt lists and the schema allows).
SCALE_LABELS: dict[str, tuple[str, ...]] = {"five_point": VERDICTS, "three_way": ("A", "tie", "B")}


@dataclass(frozen=True)
class AspectQuestion:
    """One aspect as the judge is asked it."""

    name: str
    description: str = ""
    scale: Scale = "five_point"


def _key(name: str) -> str:
    """A name as compared: accents dropped, lower case, spaces and hyphens as underscores."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[\s\-]+", "_", plain.strip().lower())


def match_name(name: str, names: Sequence[str]) -> str | None:
    """Which of ``names`` an answer's key means: the same after :func:`_key`, else the one
    name it is a prefix of or that is a prefix of it ("harmless" for "harmlessness"); None
    when none or several match (never a guess between two aspects)."""
    key = _key(name)
    if not key:
        return None
    exact = [n for n in names if _key(n) == key]
    if exact:
        return exact[0]
    close = [n for n in names if len(key) >= 4 and (_key(n).startswith(key) or key.startswith(_key(n)))]
    return close[0] if len(close) == 1 else None


def _verdict(value: object, scale: str) -> str:
    """One aspect's value (a label, or an object with a verdict) as a five-point verdict."""
    if isinstance(value, Mapping):
        lowered = {str(k).lower(): v for k, v in value.items()}
        value = next((lowered[k] for k in ("verdict", "label", "preference", "answer") if k in lowered), None)
    if not isinstance(value, str):
        return INVALID
    label = normalize_label(value)
    if label is None:
        return INVALID
    # A three-way scale is stored weak: strength is not asked, so none is read into it.
    return from_side(side(label) or "tie") if scale == "three_way" else label


def _from_object(obj: Mapping[str, object], names: Sequence[str]) -> dict[str, object]:
    """Raw per-aspect values in one JSON object: its "aspects" (an object by name, a list of
    {"aspect"|"name", "verdict"} objects, or a list of labels in the asked order), else the
    aspects as top-level keys."""
    lowered = {str(k).lower(): v for k, v in obj.items()}
    inner = next((lowered[k] for k in ("aspects", "aspect_verdicts", "criteria") if k in lowered), None)
    found: dict[str, object] = {}
    if isinstance(inner, Mapping):
        for key, value in inner.items():
            if (name := match_name(str(key), names)) is not None:
                found.setdefault(name, value)
    elif isinstance(inner, list):
        if len(inner) == len(names) and all(isinstance(v, str) for v in inner):
            return dict(zip(names, inner, strict=True))  # labels in the order asked
        for item in inner:
            if isinstance(item, Mapping):
                label = next((item[k] for k in ("aspect", "name", "criterion") if k in item), None)
                if isinstance(label, str) and (name := match_name(label, names)) is not None:
                    found.setdefault(name, item)
    if not found:
        for key, value in obj.items():
            if key.lower() != "verdict" and (name := match_name(str(key), names)) is not None:
                found.setdefault(name, value)
    return found


_LINE = re.compile(r"^[ \t>#*_-]*([^\n:=]{2,60}?)[ \t*_]*[:=][ \t*_`\"']*([^\n]{1,40}?)[ \t*_`\"'.]*$", re.M)


def parse_aspects(text: str, questions: Sequence[AspectQuestion]) -> dict[str, str]:
    """Every asked aspect's positional verdict in the answer (``invalid`` when unreadable)."""
    names = [q.name for q in questions]
    raw: dict[str, object] = {}
    if isinstance(text, str):
        for obj in json_objects(text):
            for name, value in _from_object(obj, names).items():
                raw.setdefault(name, value)
        if not raw:  # no JSON: "helpfulness: A>B" lines
            for key, label in _LINE.findall(text):
                if (found := match_name(key, names)) is not None:
                    raw.setdefault(found, label)
    return {q.name: _verdict(raw.get(q.name), q.scale) for q in questions}


def to_original_aspects(positional: Mapping[str, str], order: str) -> dict[str, str]:
    """Per-aspect positional verdicts mapped back to the original response_a / response_b."""
    return {name: to_original(verdict, order) for name, verdict in positional.items()}


def combine_weighted(verdicts: Mapping[str, str], weights: Mapping[str, float]) -> str:
    """The overall verdict as the weighted mean of the aspects' signed strengths (+2 .. -2),
    rounded half away from zero; ``invalid`` when an aspect of positive weight is.

    >>> combine_weighted({"a": "A>B", "b": "B>A"}, {"a": 1, "b": 1})
    'tie'
    >>> combine_weighted({"a": "A>>B", "b": "invalid"}, {"a": 1, "b": 0})
    'A>>B'
    """
    total = sum(w for w in weights.values() if w > 0)
    if total <= 0:
        return INVALID
    mean = 0.0
    for name, weight in weights.items():
        if weight <= 0:
            continue
        strength = STRENGTH.get(verdicts.get(name, INVALID))
        if strength is None:
            return INVALID
        mean += weight * strength / total
    magnitude = int(abs(mean) + 0.5 + 1e-9)
    return from_strength(magnitude if mean >= 0 else -magnitude)


def aspect_schema(questions: Sequence[AspectQuestion]) -> dict[str, object]:
    """The JSON-schema fragment of the "aspects" object the prompt asks for."""
    return {
        "type": "object",
        "properties": {q.name: {"type": "string", "enum": list(SCALE_LABELS[q.scale])} for q in questions},
        "required": [q.name for q in questions],
        "additionalProperties": False,
    }


def verdict_schema(questions: Sequence[AspectQuestion], ask_overall: bool = True) -> dict[str, object]:
    """The verdict object with aspects, for judges set to ``response_format: "json_schema"``:
    :data:`judge.parse.VERDICT_SCHEMA` plus ``aspects`` (and without ``verdict`` when the
    overall is the weighted combination, which the judge is then not asked)."""
    if not questions:
        return VERDICT_SCHEMA
    properties = dict(VERDICT_SCHEMA["properties"])  # type: ignore[call-overload]  # a literal dict above
    required = [r for r in VERDICT_SCHEMA["required"] if ask_overall or r != "verdict"]  # type: ignore[attr-defined]  # a literal list
    if not ask_overall:
        properties.pop("verdict")
    properties["aspects"] = aspect_schema(questions)
    return {**VERDICT_SCHEMA, "properties": properties, "required": [*required, "aspects"]}
