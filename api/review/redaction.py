"""Redaction before human review: PII and secrets become stable per-pair tokens.

Reviewers see a pair with personal data and credentials replaced by typed tokens. The
same value gets the same token everywhere in the pair (prompt, response A, response B), so
"<EMAIL_1> wrote to <EMAIL_2>" still reads; ``mapping`` keeps token -> original for the
few people allowed to see it. Numbering follows reading order (prompt, then A, then B).

Types: EMAIL, PHONE, CREDIT_CARD (Luhn-checked), IP_ADDRESS (v4 and v6, validated by
:mod:`ipaddress`), AWS_KEY, GITHUB_TOKEN, SLACK_TOKEN, API_KEY (OpenAI/Anthropic ``sk-``,
Stripe, Google), BEARER_TOKEN, PRIVATE_KEY (PEM blocks, also truncated ones), SECRET
(``key=value`` assignments with a high-entropy value, passwords, JWTs, URL credentials)
and PERSON.

Why hand-written recognisers rather than a library (checked on this project's machines,
which reach PyPI but not GitHub or model hubs):

* presidio-analyzer's default engine downloads a spaCy model from GitHub at start-up and
  fails offline; with a blank spaCy pipeline it runs but finds no names, its URL
  recogniser (tldextract) tries to fetch the public-suffix list, and it was several times
  over the per-pair time budget of a request path (figures in the README's measurements).
* spaCy English models are published on GitHub; the PyPI copies are third-party
  re-uploads, and a CNN pipeline would be too slow on a long HH-RLHF pair anyway.

So: compiled regular expressions with validators (Luhn, :mod:`ipaddress`, entropy) for the
structured types, and for names a dictionary heuristic over the person-name lists that the
maintained Faker package ships (census-derived for en_US): a capitalised English first
name (en_US/en_GB/en_IE/en_NZ) with the capitalised words after it; a first name that is
also a word or place ("Will", "Hope", "Georgia"), or one from the de/fr/es/it/pt_BR/en_IN/
Nigerian lists, only before a surname; an unlisted word before a listed surname ("Spike
Lee"); a title ("Dr. Okafor"); and, once "John Smith" is found, a later bare "Smith" gets
his token. It misses names from lists it does not have (recall per group is printed by
``tests/test_redaction.py``) and redacts public figures too (it cannot tell them apart):
over-redaction was preferred to leaks.

Example
-------
>>> pair = redact_pair(
...     "Email jane.doe@example.com or call (415) 555-0132.",
...     "Sure, I wrote to jane.doe@example.com.",
...     "Sarah Miller's key is AKIAIOSFODNN7EXAMPLE.",
... )
>>> pair.prompt
'Email <EMAIL_1> or call <PHONE_1>.'
>>> pair.response_a
'Sure, I wrote to <EMAIL_1>.'
>>> pair.response_b
"<PERSON_1>'s key is <AWS_KEY_1>."
>>> pair.mapping["<PHONE_1>"]
'(415) 555-0132'
>>> redact_text("card 4111 1111 1111 1111, server 10.0.0.12")[0]
'card <CREDIT_CARD_1>, server <IP_ADDRESS_1>'
"""

from __future__ import annotations

import bisect
import importlib
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

# Bump when recognisers change: labels record which redaction their reviewer saw.
REDACTION_VERSION = "redact-v1"

# Higher wins when two findings overlap (a key block contains base64 that looks like a
# secret; an email's local part can look like a name).
_PRIORITY = {
    "PRIVATE_KEY": 100,
    "AWS_KEY": 90,
    "GITHUB_TOKEN": 90,
    "SLACK_TOKEN": 90,
    "API_KEY": 90,
    "BEARER_TOKEN": 85,
    "SECRET": 80,
    "EMAIL": 70,
    "CREDIT_CARD": 60,
    "IP_ADDRESS": 55,
    "PHONE": 50,
    "PERSON": 10,
}


@dataclass(frozen=True)
class Entity:
    """One finding: ``text[start:end]`` is ``value``; ``key`` identifies the same value
    written differently (phone digits, lower-cased email) so both get one token."""

    start: int
    end: int
    type: str
    value: str
    key: str


@dataclass
class RedactedPair:
    """A pair as a reviewer may see it; ``mapping`` is for those allowed the originals."""

    prompt: str
    response_a: str
    response_b: str
    mapping: dict[str, str] = field(default_factory=dict)  # token -> original
    version: str = REDACTION_VERSION


# --- structured recognisers ----------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

# North American numbers need separators or parentheses: bare 10-digit runs are too often
# order numbers or quantities, so those only count next to a phone word (_PHONE_CONTEXT).
_PHONE_NANP = re.compile(
    r"(?<![\w+.-])(?:(?:\+?1|001)[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?(?![\w-]|\.\d)"
)
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?:[ ]?x\d{1,5})?(?![\w-]|\.\d)")
# National numbers with a trunk 0, as written in the UK and most of Europe and Asia.
# Not inside a longer digit sequence ("Order 4539 1488 0343 ...").
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+.-])(?<!\d[ -])(?:\(0\d{1,4}\)|0\d{1,4})(?:[ /-]\d{2,8}){1,4}(?![\w-]|\.\d|[ -]\d)"
)
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|call|cell|mobile|fax|text|whatsapp|sms|number|contact)\b"
    r"[^\n\d]{0,25}(\+?\d[\d .()-]{6,18}\d)(?![\w-]|\.\d)"
)

_CARD = re.compile(r"(?<![\w-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\w-]|\.\d)")

_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
# Candidates only; ipaddress decides. The dotted tail admits IPv4-mapped forms.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?:%\w+)?(?![\w:])"
)

_AWS_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}(?![A-Za-z0-9])"
)
_GITHUB = re.compile(
    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})(?![A-Za-z0-9_])"
)
_SLACK = re.compile(
    r"(?<![A-Za-z0-9-])(?:xox[abposr]-[A-Za-z0-9-]{10,250}"
    r"|https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,})"
)
_API_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])(?:sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])"
)
_BEARER = re.compile(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/-]{16,}=*)")
# A PEM private key: BEGIN line, base64 body and header lines, END line -- or, pasted
# truncated, as much base64 as follows the BEGIN line. The body's character set excludes
# nothing of a BEGIN line, so the body is bounded (a 4096-bit RSA key is ~3.3 kB) to keep
# text with many BEGIN lines linear.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[A-Za-z0-9+/=\s:,.-]{0,16384}?-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"|(?:\s*[A-Za-z0-9+/=:,-]{8,})*)"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://[^\s:/@]{1,64}:([^\s:/@]{3,128})@")
# `name = value`, `"name": "value"`, `NAME=value`, "my password is: x" where the name
# mentions a secret. Values of key/token names must look random; password values need not
# (people choose words), but without ":" or "=" they need a digit or symbol ("is strong").
_SECRET_NAME = re.compile(
    r"(?i)(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|access[_-]?key|auth[_-]?key"
    r"|credentials?|private[_-]?key)"
)
# Matched from the end of a secret word. Every part is bounded, so text crafted to be full
# of secret words stays linear (a lazy `\w*?secret` prefix was quadratic on "a.a.a...").
_ASSIGNMENT_TAIL = re.compile(
    r"[A-Za-z0-9_-]{0,40}[\"']?(?P<is>[ \t]{1,4}(?:is|was)\b)?[ \t]{0,4}(?P<sep>:=|=>|[:=])?[ \t]{0,4}[\"']?"
    r"(?P<value>[^\s\"'`,;()\[\]{}<>]{4,256})"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|none|null|nil|true|false|undefined|changeme|example|your[_-]?\w*|<.*>|\$\{?\w+\}?"
    r"|os\.\w+.*|process\.env.*|env\[.*|password|secret|token|\w+_(?:here|placeholder))$"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _entropy(s: str) -> float:
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _has_symbol(value: str) -> bool:
    return bool(re.search(r"\d", value) or re.search(r"[^A-Za-z0-9]", value))


def _looks_random(value: str) -> bool:
    """Generated secrets mix character classes and have high per-character entropy;
    identifiers in code (``tokenizer``, ``self.api_key``) do not."""
    if len(value) < 12 or not re.fullmatch(r"[!-~]+", value) or "(" in value:
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d"))
    return classes >= 2 and bool(re.search(r"\d", value)) and _entropy(value) >= 3.0


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _structured(text: str) -> Iterator[Entity]:
    def ent(m: re.Match[str], kind: str, key: str | None = None, group: int = 0) -> Entity:
        value = m.group(group)
        norm = key if key is not None else value
        return Entity(m.start(group), m.end(group), kind, value, f"{kind}:{norm}")

    if "-----BEGIN" in text:
        for m in _PRIVATE_KEY.finditer(text):
            yield ent(m, "PRIVATE_KEY")
    for m in _AWS_KEY.finditer(text):
        yield ent(m, "AWS_KEY")
    for m in _GITHUB.finditer(text):
        yield ent(m, "GITHUB_TOKEN")
    if "xox" in text or "hooks.slack" in text:
        for m in _SLACK.finditer(text):
            yield ent(m, "SLACK_TOKEN")
    for m in _API_KEY.finditer(text):
        yield ent(m, "API_KEY")
    for m in _BEARER.finditer(text):
        # "Bearer" in prose ("basic understanding of...") is followed by words, not tokens.
        token = m.group(1)
        if _looks_random(token.rstrip("=")) or (len(token) >= 24 and re.search(r"\d", token)):
            yield ent(m, "BEARER_TOKEN", group=1)
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            yield ent(m, "SECRET")
    if "://" in text:
        for m in _URL_CREDENTIALS.finditer(text):
            yield ent(m, "SECRET", group=1)
    for name_match in _SECRET_NAME.finditer(text):
        m = _ASSIGNMENT_TAIL.match(text, name_match.end())
        if m is None:
            continue
        value, sep = m["value"], m["sep"]
        if not sep and not m["is"]:
            continue
        if not sep:
            value = value.rstrip(".!?")  # "my password is hunter2." ends a sentence
        if _PLACEHOLDER.match(value) or text[m.end("value") : m.end("value") + 1] in ("(", "["):
            continue
        if re.search(r"passw|pwd", name_match.group().lower()):
            # A dotted/underscored identifier is code, not a password; after a bare "is"
            # a plain word is prose ("the password is strong").
            ok = not re.fullmatch(r"[A-Za-z]+(?:[._][A-Za-z]+)+", value) and (bool(sep) or _has_symbol(value))
        else:
            ok = _looks_random(value)
        if ok:
            start = m.start("value")
            yield Entity(start, start + len(value), "SECRET", value, f"SECRET:{value}")
    if "@" in text:
        for m in _EMAIL.finditer(text):
            yield ent(m, "EMAIL", key=m.group().lower())
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            yield ent(m, "CREDIT_CARD", key=digits)
    for m in _IPV4.finditer(text):
        yield ent(m, "IP_ADDRESS")
    if "::" in text or text.count(":") >= 5:
        for m in _IPV6.finditer(text):
            value = m.group()
            try:
                addr = ipaddress.IPv6Address(value.split("%")[0])
            except ValueError:
                continue
            # "a::b" (C++ scopes) and "::1" (loopback) are valid but carry no identity.
            if sum(c in "0123456789abcdefABCDEF" for c in value) >= 5:
                yield ent(m, "IP_ADDRESS", key=addr.compressed)
    for pattern, min_digits in ((_PHONE_NANP, 10), (_PHONE_INTL, 8), (_PHONE_NATIONAL, 9)):
        for m in pattern.finditer(text):
            digits = _digits(re.split(r"\s?(?:x|ext)", m.group())[0])
            if min_digits <= len(digits) <= 15:
                yield ent(m, "PHONE", key=_phone_key(digits))
    for m in _PHONE_CONTEXT.finditer(text):
        digits = _digits(m.group(1))
        if 7 <= len(digits) <= 15:
            yield ent(m, "PHONE", key=_phone_key(digits), group=1)


def _phone_key(digits: str) -> str:
    # A +1 / 001 prefix is the same North American line as without it.
    if len(digits) == 11 and digits.startswith("1"):
        return digits[1:]
    if len(digits) == 13 and digits.startswith("001"):
        return digits[3:]
    return digits


# --- names -----------------------------------------------------------------------------------

# First names that are also common words, places or religious terms: they only count as a
# name before a listed surname ("Will Smith", not "Will it work?"). Chosen by looking at
# which listed names occur as ordinary words in the HH-RLHF, PandaLM and LLMBar texts.
_AMBIGUOUS_FIRST = frozenset(
    """
    Will May June April August Don Hope Guy Summer Bill Max Harmony Gene Crystal Faith Sue Melody
    Mark Drew Rose Chase Pierce Penny Olive Angel India Destiny Eden Grace Joy Ivy Dawn Amber Ruby
    Pearl Jade Autumn Sky Skye Brook Rob Pat Art Frank Grant Dean Ray Rich Sage Storm Jordan Paris
    Georgia Virginia Austin Sydney Phoenix Chelsea Israel Christian Jesus Christ Carolina Dakota
    Florence Savannah Dallas Houston Denver Madison Lincoln Washington Victoria Charlotte Brooklyn
    Sierra Jersey Kent Clay Cliff Glen Heath Forrest Hunter Mason Miles Royal Star Bob Jack Sunny
    Cherry Harley Carter Page Lane Bay Wade Beau Major Noble Price Young Golden Gay Early Baby
    Precious Unique Justice Marshall Bishop Deacon Chance Spencer Rock Sandy Misty Candy Holly
    Iris Violet Lily Poppy Daisy Fern Heather Hazel Ginger Willow Rain Journey Lucky Sonny Prince
    Regina Trinity Unity Reagan Raven Robin Dove Bunny Honey Mercy Patience Charity Constance
    Temperance Verity Felicity Liberty Ivory Jasmine Jewel Coral Sterling Tristan Shelby
    """.split()
)
# Surnames that are also common words ("May Day", "Hope Street").
_AMBIGUOUS_LAST = frozenset(
    """
    Way Good Best May Long Day Story Black Case White Little House Small Hope Love Law Strong Read
    Power Key Clear Price Short Green Low Branch Young Street Field Fair Guy Park Early Fall Rich West
    Carry Page Smart Stack Bridge Wall Golden Wood Winter Convey Glass Judge Snow Hook Ring Cross Gross
    Fresh Ball Banks French Hay Brick Foot Sharp Guard Rock Stone Cook Fields Le Church Powers Reader
    Bird Hunt Bright Wise North Mountain Miles Victory Ferry Fee Hills Knight English Melody Bones Lord
    Woods Bridges Marry Rush Sellers Rice Booth Hood Walls Gates Noble Fry Drew Herd Flowers Divine
    Waters Holder Bond Crane Silk Chambers Rose Moon Savage Ham King Monk Bush Cannon Cherry Hart
    Butcher Chase Pierce Cousins Bell Gore Beard Buck Prince Hull Freely Burns Graves Lane Heath Swift
    Eden Will Hill Lake River Land Summer Spring Grant Dean Major Bishop Marshall Mason Hunter Carter
    """.split()
)
# Capitalised words that are never part of a name; a first name's run of surname-like
# words stops at them ("Sarah And Tom", "Dear Tom").
_NOT_SURNAME = frozenset(
    """
    The A An And Or But Of In On At To For From With By As Is Are Was Were Be I You He She We They It
    My Your His Her Our Their This That These Those What Who When Where Why How Yes No Not Hi Hello Dear
    Thanks Thank Please Mr Mrs Ms Dr Monday Tuesday Wednesday Thursday Friday Saturday Sunday January
    February March April May June July August September October November December Human Assistant
    Christmas Easter English American British Said Says Also Then So If
    """.split()
)
# A run holding one of these is a place, an organisation or a named thing, not a person
# ("Jackson Street", "Austin Community College", "Roman Empire", "Calvin Cycle").
_PLACE_OR_ORG = frozenset(
    """
    Street St Avenue Ave Road Rd Boulevard Blvd Lane Drive Way Court Place Square Park Bridge River
    Lake Mountain Mount Island Islands County City Town Village State Valley Beach Bay Harbor Hills
    University College School Academy Institute Hospital Clinic Center Centre Church Cathedral Museum
    Library Airport Station Hotel Inc Corp Corporation Company Co Ltd LLC Foundation Group Bank
    Studios Records Press Times Post Journal News Award Prize Act Law Day Cup League Stadium House Hall
    Palace Castle Tower Empire Kingdom Republic Dynasty Show Experience Podcast Cycle Theorem Effect
    Principle Syndrome Disease Street San Santa Los Las New Fort Port Saint Cape Sea Ocean Gulf Falls
    Puerto Costa Rio El Buenos Sri Global Management Capital Partners Holdings Systems Technologies
    Airlines Motors Energy Pharmaceuticals Ventures Media Entertainment Games Labs Software Network
    """.split()
)
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Madam|Mme|Mlle|Herr|Frau|Sr|Sra)"
# Latin letters with the accents of European names ("Jürgen", "Łukasz", "Rodríguez").
_UP = "A-ZÀ-ÖØ-ÞĀ-ž"
_LO = "a-zß-öø-ÿĀ-ž"
_NAME_TOKEN = rf"(?:(?:Mc|Mac|O['’]|D['’])?[{_UP}][{_LO}]+(?:[-'’][{_UP}][{_LO}]+)?)"
_PARTICLE = r"(?:van|von|de|da|di|del|della|der|den|du|la|le|dos|das|ter|bin|ibn|al)"
# A run of capitalised words on one line, with optional middle initials ("John F. Kennedy")
# and surname particles ("Theo van Doesburg").
_CAP_RUN = re.compile(
    rf"(?<![\w'’]){_NAME_TOKEN}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*(?:[A-Z]\.[ \t]+)?{_NAME_TOKEN}){{0,5}}"
    r"(?![\w-]|['’][A-Z])"
)
_TOKEN_IN_RUN = re.compile(rf"{_NAME_TOKEN}|[A-Z]\.|\b{_PARTICLE}\b")
_TITLED = re.compile(rf"\b{_TITLES}\.?[ \t]+({_NAME_TOKEN}(?:[ \t]+{_NAME_TOKEN})?)(?![\w-]|['’][A-Z])")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(\n*#-]|\d\.)[ \t]*$")

# English-speaking locales: a listed first name on its own is taken as a name.
_STRONG_LOCALES = ("en_US", "en_GB", "en_IE", "en_NZ")
# Other locales' first names collide more with English words and places ("Angel",
# "Dolores", "Mercedes"): they count only in front of a surname-like word.
_WEAK_LOCALES = ("de_DE", "fr_FR", "es_ES", "es_MX", "it_IT", "pt_BR", "en_IN", "yo_NG", "ig_NG", "en_NG")


@lru_cache(maxsize=1)
def _name_lists() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(strong first names, weak first names, last names) from Faker's person providers,
    loaded once on first use (~0.3 s) so importing this module stays cheap."""

    def load(locales: tuple[str, ...]) -> tuple[set[str], set[str]]:
        firsts: set[str] = set()
        lasts: set[str] = set()
        for locale in locales:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
            for attr in ("first_names", "first_names_male", "first_names_female"):
                firsts.update(n for n in getattr(provider, attr, ()) if len(n) >= 2 and " " not in n)
            lasts.update(n for n in getattr(provider, "last_names", ()) if len(n) >= 2 and " " not in n)
        return firsts, lasts

    strong, lasts = load(_STRONG_LOCALES)
    weak, weak_lasts = load(_WEAK_LOCALES)
    weak -= strong
    weak -= _NOT_SURNAME | _PLACE_OR_ORG
    lasts |= weak_lasts
    lasts -= _AMBIGUOUS_LAST
    return frozenset(strong), frozenset(weak), frozenset(lasts)


def _surname_like(word: str) -> bool:
    return len(word) > 1 and word not in _NOT_SURNAME and word not in _PLACE_OR_ORG


def _names(text: str) -> Iterator[Entity]:
    strong, weak, lasts = _name_lists()
    for m in _CAP_RUN.finditer(text):
        tokens = [(t.start(), t.end(), t.group()) for t in _TOKEN_IN_RUN.finditer(m.group())]
        words = [w.rstrip(".") for _, _, w in tokens]
        if any(w in _PLACE_OR_ORG for w in words):
            continue
        at_sentence_start = bool(_SENTENCE_START.search(text, max(0, m.start() - 12), m.start()))
        i = 0
        while i < len(tokens):
            word = words[i]
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if word in _NOT_SURNAME or word[0].islower():
                i += 1
                continue
            if word in strong and word not in _AMBIGUOUS_FIRST:
                ok = True
            elif word in strong or word in weak:
                # "Will Smith" yes, "Will it" / "Angel Falls" no.
                ok = nxt in lasts or (word in weak and _surname_like(nxt) and nxt[0].isupper())
            else:
                # An unlisted first name before a listed surname ("Hillary Clinton", "Spike
                # Lee"), unless the first word only has its capital from starting a sentence.
                ok = nxt in lasts and not (i == 0 and at_sentence_start) and i + 2 >= len(words)
            if not ok:
                i += 1
                continue
            # Extend over particles, middle initials and surname-like capitalised words.
            j = i + 1
            while j < len(tokens) and j - i <= 4 and (_surname_like(words[j]) or len(words[j]) == 1):
                j += 1
            while j > i + 1 and (len(words[j - 1]) == 1 or words[j - 1][0].islower()):
                j -= 1  # never end on a dangling initial or particle
            start, end = m.start() + tokens[i][0], m.start() + tokens[j - 1][1]
            value = text[start:end]
            yield Entity(start, end, "PERSON", value, "PERSON:" + value.casefold())
            i = j
    for m in _TITLED.finditer(text):
        words = m.group(1).split()
        if not _surname_like(words[0]):
            continue
        end = m.end(1) if len(words) == 1 or _surname_like(words[1]) else m.start(1) + len(words[0])
        value = text[m.start(1) : end]
        yield Entity(m.start(1), end, "PERSON", value, "PERSON:" + value.casefold())


# --- resolution and tokens -----------------------------------------------------------------


_HAS_CAPITALISED = re.compile(rf"[{_UP}][{_LO}]")


def find_entities(text: str) -> list[Entity]:
    """All findings in ``text``, overlaps resolved (higher priority, then longer, wins),
    sorted by position. Deterministic: same text, same list."""
    found = list(_structured(text))
    if _HAS_CAPITALISED.search(text):
        found.extend(_names(text))
    found.sort(key=lambda e: (-_PRIORITY[e.type], -(e.end - e.start), e.start))
    return _non_overlapping(found)


def _non_overlapping(ranked: list[Entity], taken: list[Entity] | None = None) -> list[Entity]:
    """Greedy by rank: keep each entity that overlaps nothing kept (nor ``taken``), sorted by
    start. Kept spans are disjoint, so one bisect finds the only neighbours that matter
    (a pairwise check was quadratic on texts with thousands of findings)."""
    kept: list[Entity] = sorted(taken or [], key=lambda e: e.start)
    starts = [e.start for e in kept]
    for e in ranked:
        i = bisect.bisect_right(starts, e.start)
        if i > 0 and kept[i - 1].end > e.start:
            continue
        if i < len(kept) and kept[i].start < e.end:
            continue
        starts.insert(i, e.start)
        kept.insert(i, e)
    return kept


class _Tokenizer:
    """Hands out ``<TYPE_n>`` tokens, one per distinct value across all texts it sees."""

    def __init__(self) -> None:
        self.token_of: dict[str, str] = {}
        self.mapping: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        # Words of multi-word names seen so far -> (key, value) of the full name: "Smith"
        # after "John Smith" is the same person to a reader, and leaks as much, so it is
        # redacted too (even where the recogniser alone would not know it) with that token.
        self.name_parts: dict[str, tuple[str, str]] = {}
        self._parts_re: re.Pattern[str] | None = None

    def token(self, e: Entity) -> str:
        key, value = e.key, e.value
        if e.type == "PERSON" and " " not in value and key in self.name_parts:
            key, value = self.name_parts[key]
        tok = self.token_of.get(key)
        if tok is None:
            self.counts[e.type] += 1
            tok = f"<{e.type}_{self.counts[e.type]}>"
            self.token_of[key] = tok
            self.mapping[tok] = value
        return tok

    def _learn_parts(self, entities: list[Entity]) -> None:
        learned = False
        for e in entities:
            if e.type != "PERSON" or " " not in e.value:
                continue
            for part in e.value.split():
                if (
                    len(part) > 2
                    and part[0].isupper()
                    and part not in _NOT_SURNAME
                    and part not in _AMBIGUOUS_FIRST
                    and part not in _AMBIGUOUS_LAST
                    and "PERSON:" + part.casefold() not in self.name_parts
                ):
                    self.name_parts["PERSON:" + part.casefold()] = (e.key, e.value)
                    learned = True
        if learned:
            # Longest first, so "Anne-Marie" wins over "Anne".
            parts = sorted(self._surface_parts(), key=lambda p: (-len(p), p))
            self._parts_re = re.compile(
                r"(?<![\w'’-])(?:" + "|".join(map(re.escape, parts)) + r")(?![\w-]|['’][A-Z])"
            )

    def _surface_parts(self) -> set[str]:
        return {
            part
            for _, value in self.name_parts.values()
            for part in value.split()
            if "PERSON:" + part.casefold() in self.name_parts
        }

    def redact(self, text: str) -> str:
        entities = find_entities(text)
        self._learn_parts(entities)
        if self._parts_re is not None:
            parts = [
                Entity(m.start(), m.end(), "PERSON", m.group(), "PERSON:" + m.group().casefold())
                for m in self._parts_re.finditer(text)
            ]
            if parts:
                entities = _non_overlapping(parts, taken=entities)
        out: list[str] = []
        pos = 0
        for e in entities:
            out.append(text[pos : e.start])
            out.append(self.token(e))
            pos = e.end
        out.append(text[pos:])
        return "".join(out)


def redact_text(text: str) -> tuple[str, dict[str, str]]:
    """Redact one text on its own: (redacted text, token -> original)."""
    tokenizer = _Tokenizer()
    return tokenizer.redact(text), tokenizer.mapping


def redact_pair(prompt: str, response_a: str, response_b: str) -> RedactedPair:
    """Redact a pair with tokens shared across its three texts."""
    tokenizer = _Tokenizer()
    redacted = [tokenizer.redact(t) for t in (prompt, response_a, response_b)]
    return RedactedPair(*redacted, mapping=tokenizer.mapping, version=REDACTION_VERSION)


def redact_many(texts: list[str]) -> tuple[list[str], dict[str, str]]:
    """Redact any number of texts of one item with shared tokens (e.g. a pair plus its
    judges' rationales, which quote it)."""
    tokenizer = _Tokenizer()
    return [tokenizer.redact(t) for t in texts], tokenizer.mapping
