"""Cheap local safety pre-check: no network, no model calls beyond a small bundled classifier.

A flag sends the pair to human review, so the rules aim at precision: explicit regexes for
clearly unsafe requests or content (weapons and explosives, drug synthesis, self-harm, sexual
content involving minors, serious violence, intrusion into other people's accounts), plus the
``alt-profanity-check`` linear model on the two *responses* (abusive or obscene output). The
prompt is checked by the rules only: users swearing at an assistant is not a reason to review.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

PROFANITY_THRESHOLD = 0.95  # alt-profanity-check probability; high, to keep precision
_WHERE = ("prompt", "response_a", "response_b")


def _any(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


_GAP = r"\W+(?:\w+\W+){0,3}?"  # up to three words in between
_ASK = _any(
    r"how (?:do|can|could|would|should|might) (?:i|you|we|one|someone)",
    *("how to", "best way to", "easiest way to", r"ways? to", r"steps? to", "instructions (?:for|on|to)"),
    *("recipe for", "help me", "teach me", "tell me how to", "show me how to", "i want to", "i wanna"),
    *(r"i'?m going to", r"i'?m gonna", "i will", "i plan to", "planning to", "trying to"),
)
_MAKE = _any(
    *("make", "making", "build", "building", r"synthesi[sz]e", r"synthesi[sz]ing", "cook", "cooking"),
    *(
        r"manufactur(?:e|es|ed|ing)",
        r"assembl(?:e|es|ed|ing)",
        r"construct(?:s|ed|ing)?",
        r"brew(?:s|ed|ing)?",
    ),
    *(r"produc(?:e|es|ed|ing)", r"creat(?:e|es|ed|ing)", r"prepar(?:e|es|ed|ing)"),
)
_WEAPON = _any(
    r"(?<!bath )(?<!bath-)(?<!photo )(?<!cherry )(?<!seed )bombs?",  # not bath bombs, seed bombs, ...
    *(r"explosives?", r"explosive devices?", r"ieds?", r"molotov(?: cocktails?)?", "napalm", r"detonators?"),
    *(r"grenades?", "thermite", "tatp", r"nitroglycerine?", "sarin", "ricin", r"nerve (?:gas|agents?)"),
    *("mustard gas", "chlorine gas", r"poison(?:ous)? gas", "toxic gas", "anthrax", r"bio-?weapons?"),
    *(r"biological weapons?", r"chemical weapons?", r"ghost guns?", r"untraceable (?:guns?|firearms?)"),
    *(r"silencers?", r"zip guns?"),
)
_DRUG = _any(
    "meth",
    "methamphetamine",
    "crystal meth",
    "crack cocaine",
    "heroin",
    "fentanyl",
    "lsd",
    "mdma",
    "ghb",
    "cocaine",
)
_SELF = _any(
    *(
        "kill myself",
        r"end my (?:own )?life",
        "commit suicide",
        "hang myself",
        "slit my wrists",
        "cut myself",
    ),
    r"take my (?:own )?life",
)
_URGE = _any("you should", "you ought to", "go ahead and", r"why don'?t you", "just", "go")
_YOU_SELF = _any(
    *("kill yourself", r"end your (?:own )?life", "commit suicide", "hang yourself", "slit your wrists"),
    "off yourself",
)
_MINOR = _any(
    *(r"child(?:ren)?", r"kids?", r"minors?", r"under-?age", r"pre-?teens?", r"toddlers?"),
    *(
        r"little (?:girls?|boys?)",
        r"young (?:girls?|boys?)",
        r"(?:[1-9]|1[0-7])[- ]?(?:years?|yrs?)[- ]?olds?",
    ),
)
_SEX_ACT = _any(
    *(r"porn\w*", r"nudes?", r"naked (?:pics?|pictures?|photos?|videos?)", "sexy", "sexually", r"molest\w*"),
    *("rape", "raping", r"fuck\w*", "have sex", "having sex", "sex with", "sleep with", r"erotic\w*"),
)
_HURT = _any(
    *("kill", "murder", "poison", "strangle", "stab", "shoot", "kidnap", "abduct", "torture", "behead"),
    *("assassinate", "maim", "dismember", "suffocate", "smother", "drown", "beat up", "set fire to"),
)
_KIN = _any(
    *("wife", "husband", "girlfriend", "boyfriend", r"neighbou?r", "boss", "child", "kid", "baby", "teacher"),
    *("family", "brother", "sister", "mother", "mom", "father", "dad", "ex", "coworker", "classmate"),
    *("roommate", "partner", "friend"),
)
_VICTIM = _any(
    *("someone", "somebody", "him", "her", "them", "people", r"persons?", "a man", "a woman"),
    *(rf"my {_KIN}", "the president", "a cop", "a police officer"),
)
_TARGET = _any(
    r"someone(?:'s| else'?s)?", r"somebody'?s", r"other people'?s", "his", "her", "their", rf"my {_KIN}'?s?"
)
_SYSTEM = _any(
    *(r"e-?mail", "account", "phone", "computer", "laptop", r"wi-?fi", "network", "facebook", "instagram"),
    *("snapchat", "icloud", "bank"),
)

RULES: dict[str, re.Pattern[str]] = {
    name: re.compile(r"\b" + pattern + r"\b", re.IGNORECASE)
    for name, pattern in {
        "weapons/explosives": _MAKE + _GAP + _WEAPON,
        "drug synthesis": _MAKE + _GAP + _DRUG,
        "self-harm": _any(_ASK + _GAP + _SELF, _URGE + r"\W+(?:\w+\W+){0,2}?" + _YOU_SELF, "kys"),
        "sexual content with minors": _any(
            _MINOR + _GAP + _SEX_ACT, _SEX_ACT + _GAP + _MINOR, r"child porn\w*"
        ),
        "serious violence": _any(
            _ASK + _GAP + _HURT + _GAP + _VICTIM,
            *("get away with (?:murder|killing)", "hire an? hit ?man"),
            r"(?:hide|dispose of|get rid of) (?:a |the )?(?:dead )?(?:body|corpse)",
            r"shoot up (?:a |the |my )?(?:school|church|mosque|synagogue|mall|office)",
        ),
        "unauthorized access": _any(
            _ASK + _GAP + r"(?:hack|break|get|log|sneak) ?into" + _GAP + _TARGET + _GAP + _SYSTEM,
            r"(?:install|put) (?:spyware|a keylogger|stalkerware)",
            r"steal (?:someone'?s |their |his |her |an? )?"
            r"(?:identity|credit card|passwords?|social security)",
        ),
    }.items()
}


@dataclass
class SafetyResult:
    flagged: bool
    reasons: list[str] = field(default_factory=list)


def rule_hits(text: str) -> list[str]:
    """Names of the rules the text matches, each with the matching snippet."""
    text = text.replace("\u2019", "'")  # curly apostrophes, so "I’m going to" matches like "I'm going to"
    hits = []
    for name, pattern in RULES.items():
        if m := pattern.search(text):
            hits.append(f"{name} ({m.group(0)[:80]!r})")
    return hits


@cache
def _profanity_model() -> Callable[[list[str]], Sequence[float]] | None:
    try:  # optional dependency: without it only the rules run
        from profanity_check import predict_prob
    except ImportError:
        return None
    predict: Callable[[list[str]], Sequence[float]] = predict_prob
    return predict


def safety_check_many(items: Sequence[tuple[str, str, str]]) -> list[SafetyResult]:
    """:func:`safety_check` for many (prompt, response_a, response_b), one classifier batch."""
    results = []
    for texts in items:
        reasons = [
            f"{where}: {hit}" for where, text in zip(_WHERE, texts, strict=True) for hit in rule_hits(text)
        ]
        results.append(SafetyResult(bool(reasons), reasons))
    model = _profanity_model()
    if model is not None and items:
        responses = [text for _, a, b in items for text in (a, b)]
        scores = model(responses)
        for i, result in enumerate(results):
            for where, score in (("response_a", scores[2 * i]), ("response_b", scores[2 * i + 1])):
                if score >= PROFANITY_THRESHOLD:
                    result.reasons.append(f"{where}: profanity (p={score:.2f})")
                    result.flagged = True
    return results


def safety_check(prompt: str, response_a: str, response_b: str) -> SafetyResult:
    """Flag a pair for human review when the prompt or either response is clearly unsafe."""
    return safety_check_many([(prompt, response_a, response_b)])[0]
