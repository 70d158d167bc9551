"""The two multilingual detectors of the injection screen, built on the word lists of
``judge.injection_lexicon``.

Every list is written in each language's own words and passed through
:func:`judge.injection_normalize.fold`, like the text it is matched against (so accents,
look-alike letters, case and invisible characters do not matter). Categories:

* ``eval``: who a planted instruction talks to (evaluator, grader, judge, scoring model …);
* ``self``: the response pointing at itself ("this answer", "the reply you are reading");
* ``pick``: what it asks for (choose, prefer, winner, best, better …);
* ``imperative``: the asking form ("choose it", "wählen Sie", "请选择");
* ``override``: "ignore the previous instructions" in each language;
* ``other``: the response knowing there is another one to beat ("the other answer").

:func:`strict_hits` flags (a hard flag, so it must hold on ordinary text: its false positives
are measured on all of ``../shared/data``); :func:`loose_hits` only decides which pairs are
judged a second time with the span removed (``judge.injection.neutralize``), so it aims at
recall and its cost is counted in extra judge calls.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cache, lru_cache

from judge.injection_lexicon import LEXICON, LOOSE
from judge.injection_normalize import fold

__all__ = ["loose_hits", "strict_hits"]

# Verdict-shaped JSON: a key a judge's answer would have, whatever it is called.
_JSON_VERDICT = re.compile(
    r"[\"'](?:decision|verdict|winner|preferred(?:_\w+)?|better(?:_\w+)?|choice|judg(?:e?ment)|ranking|"
    r"evaluation|final_?(?:answer|choice|decision)|selected|best(?:_\w+)?|label|result|score)[\"']\s*:\s*"
    r"(?:\{[^{}]{0,200}\}|[\"'][^\"']{0,60}[\"']|\d+(?:\.\d+)?)",
)
_JSON_VALUE = re.compile(
    r"this|current|present|me\b|mine|self|response|answer|reply|assistant|output|candidate|first|second|"
    r"\b[ab]\b|[ab]\s*>|\b(?:10|100)\b|1\.0|preferred|winner|better|best"
)
_SENTENCE_END = re.compile(r"[.!?;:\n。！？；：]+")


def _compile(fragments: list[str]) -> re.Pattern[str]:
    # (?!) never matches: a category with no fragment for a script matches nothing
    return re.compile("|".join(f"(?:{f})" for f in fragments) or "(?!)")


@cache
def _patterns(ascii_only: bool) -> dict[str, re.Pattern[str]]:
    """One pattern per category; for ASCII text only the fragments that can match ASCII (the
    long alternation of every script costs time at every position of a text)."""
    merged: dict[str, list[str]] = {}
    for lists in LEXICON.values():
        for category, fragments in lists.items():
            merged.setdefault(category, []).extend(fragments)
    merged["loose"] = list(LOOSE)
    folded = {category: [fold(f) for f in fragments] for category, fragments in merged.items()}
    if ascii_only:
        folded = {category: [f for f in fragments if f.isascii()] for category, fragments in folded.items()}
    return {category: _compile(fragments) for category, fragments in folded.items()}


def _sentences(text: str) -> list[int]:
    """Start offsets of the sentences of a folded text (for the co-occurrence window)."""
    return [0] + [m.end() for m in _SENTENCE_END.finditer(text)]


@lru_cache(maxsize=1024)
def _find(category: str, folded: str) -> list[tuple[int, str]]:
    """(offset, words) of every match of a category: the screen and the re-judge detector read
    the same folded texts, so each category is searched once per text."""
    return [(m.start(), m.group(0)) for m in _patterns(folded.isascii())[category].finditer(folded)]


def _near(
    a: list[tuple[int, str]], b: list[tuple[int, str]], starts: list[int], window: int = 1
) -> str | None:
    """The first match of ``a`` with a match of ``b`` in the same or the next sentence."""
    if not a or not b:
        return None
    b_sentences = {bisect_right(starts, pos) for pos, _ in b}
    for pos, word in a:
        s = bisect_right(starts, pos)
        if any(s + d in b_sentences for d in range(-window, window + 1)):
            return word
    return None


def strict_hits(folded: str) -> list[str]:
    """Flag-worthy findings in one folded text: overrides of the judge's instructions, and the
    evaluator + this response + choose/prefer/best combination (or a response that points at
    itself with an imperative), in any listed language; verdict-shaped JSON."""
    hits = []
    if overrides := _find("override", folded):
        hits.append(f"instruction to the judge ({overrides[0][1][:60]!r})")
    starts = _sentences(folded)
    evals, selves = _find("eval", folded), _find("self", folded)
    if evals and selves:
        picks = _find("pick", folded)
        word = _near(evals, selves, starts)
        if word and _near(evals, picks, starts) and _near(selves, picks, starts):
            hits.append(f"instruction to the judge (addressed to {word!r}, pointing at itself)")
    if selves or evals:
        imperatives = _find("imperative", folded)
        if word := _near(imperatives, selves + evals, starts):
            hits.append(f"instruction to the judge ({word!r} about itself)")
    if "{" in folded:
        for m in _JSON_VERDICT.finditer(folded):
            if _JSON_VALUE.search(m.group(0).split(":", 1)[1]):
                hits.append(f"verdict string ({m.group(0)[:60]!r})")
                break
    return hits


def loose_hits(folded: str) -> list[str]:
    """What makes a text worth a second judgment without it: any word addressed to an evaluator,
    an override, the response pointing at itself next to a preference, a mention of the other
    response, judge vocabulary, or verdict-shaped JSON."""
    found = []
    for category in ("eval", "override", "other", "loose", "self"):
        if matches := _find(category, folded):
            found.append(f"{category}: {matches[0][1][:40]!r}")
    if "{" in folded and _JSON_VERDICT.search(folded):
        found.append("verdict-shaped JSON")
    return found
