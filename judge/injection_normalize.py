"""What a judge model reads in a response, spelled one way: the input of the injection screen.

An attacker can hide an instruction from a regex without hiding it from a model: invisible
characters inside words, soft hyphens, look-alike letters from another script, fullwidth forms,
HTML comments, hidden elements and entities, base64 / hex / URL-encoded / rot13 text. This
module undoes those spellings:

* :func:`fold` — one canonical spelling for matching: invisible (format) characters dropped,
  NFKC (fullwidth, ligatures), case folded, look-alike letters folded to the ASCII letter they
  imitate, combining accents dropped. Keyword lists go through the same function, so a
  Russian keyword and a Russian text written with Latin look-alikes meet in the middle.
* :func:`views` — the folded text, plus what hides inside it: the text with markup removed and
  entities decoded, and every decoded base64 / hex / URL-encoded / rot13 span.
* :func:`hidden_channels` — what a reader of the rendered text would not see (invisible
  characters, look-alike letters mixed into words, HTML comments and hidden elements).

Look-alikes come from the Unicode confusables table as packaged by ``confusable_homoglyphs``
(kept up to date with Unicode, data shipped in the wheel, pure Python: no network, no ICU).
Transliteration (``unidecode`` / ``anyascii``) is the wrong tool here: it maps Cyrillic "р" to
"r" although it reads as "p", and it would erase the native scripts the multilingual keyword
lists match.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from functools import cache, lru_cache

__all__ = ["INVISIBLE", "View", "fold", "hidden_channels", "spell", "strip_invisible", "views"]

# Format characters a reader does not see (Unicode category Cf: zero-width space / joiners,
# soft hyphen, word joiner, bidi controls, BOM, tag characters, Arabic / Syriac marks), plus
# the combining grapheme joiner, Mongolian vowel separator, variation selectors and Hangul
# fillers. Dropped before matching: "ig\u00adnore" is "ignore" to a model.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
# The invisible characters that are a finding by themselves: zero-width space, word joiner and
# invisible operators, bidi overrides and isolates ("Trojan Source"), BOM inside a text, tag
# characters. Joiners (emoji, Persian), variation selectors (emoji), LRM / RLM (Arabic, Hebrew)
# and soft hyphens (hyphenated web text) have honest uses: dropped for matching, not reported.
_REPORTED = re.compile("[\u200b\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")
# Combining accents (Latin, Greek, Cyrillic, Arabic vowel marks): dropped after NFD, so
# "évaluateur", "evaluateur" and "e\u0301valuateur" are one word.
_COMBINING = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u064b-\u065f\u0670\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
           "\u00ab": '"', "\u00bb": '"', "\u300c": '"', "\u300d": '"'}  # fmt: skip


@cache
def _fold_table() -> dict[int, str]:
    """Non-ASCII letter -> the ASCII letter or digit it imitates, case kept (from the Unicode
    confusables table); built once, on first use."""
    from confusable_homoglyphs import utils  # data loaded on first use, not at import

    table: dict[int, str] = {}
    for char, glyphs in utils.load("confusables.json").items():
        if len(char) != 1:
            continue
        targets = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum()]
        if not targets:
            continue
        # The table lists "К" (like "K") but not "к": both cases of a letter fold, each to its case.
        for variant in {char, char.lower(), char.upper()}:
            if len(variant) == 1 and not variant.isascii():
                target = targets[0].lower() if variant.islower() else targets[0]
                table.setdefault(ord(variant), target.upper() if variant.isupper() else target)
    for quote, ascii_quote in _QUOTES.items():
        table[ord(quote)] = ascii_quote
    return table


def strip_invisible(text: str) -> str:
    return INVISIBLE.sub("", text)


def spell(text: str) -> str:
    """What a model reads, one spelling, case kept: invisible characters dropped, NFKC (fullwidth
    forms, ligatures), look-alike letters folded to ASCII, combining accents dropped."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", INVISIBLE.sub("", text)).translate(_fold_table())
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFD", text))
    return text


def fold(text: str) -> str:
    """:func:`spell`, case folded: the form keyword lists and texts are matched in."""
    return spell(text).casefold()


# --- hidden and encoded content ------------------------------------------------------------

_TAG = re.compile(r"<!--|-->|</?[a-zA-Z][\w:-]*(?:\s[^<>]{0,400})?/?>")
_ENTITY = re.compile(r"&(?:#\d{2,7}|#x[0-9a-fA-F]{2,6}|[a-zA-Z]{2,8});")
_COMMENT = re.compile(r"<!--(.*?)(?:-->|\Z)", re.DOTALL)
_HIDDEN_STYLE = (
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|opacity\s*:\s*0(?![.\d]*[1-9])"
    r"|(?:height|width|max-height)\s*:\s*0(?![.\d]*[1-9])|color\s*:\s*(?:white|#fff\b|#ffffff|transparent)"
    r"|clip\s*:\s*rect\(0|left\s*:\s*-\d{3,}"
)
HIDDEN_ELEMENT = re.compile(
    r"<([a-zA-Z][\w-]*)\b[^<>]*?(?:\shidden\b|aria-hidden\s*=\s*[\"']?true|style\s*=\s*[\"'][^\"']*?(?:"
    + _HIDDEN_STYLE
    + r"))[^<>]*>(.*?)(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
# Runs an encoder leaves: base64 (standard or URL-safe, 24+ characters), hex bytes (16+, with
# or without 0x / \x), URL-encoded runs (3+ escapes), rot13 announced as such.
BASE64 = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{24,}={0,2}(?![\w+/=-])")
HEX = re.compile(r"(?:0x)?(?:[0-9a-fA-F]{2}){16,}|(?:\\x[0-9a-fA-F]{2}){8,}")
URL_ENCODED = re.compile(r"[^\s%]*(?:%[0-9a-fA-F]{2}[^\s%]*){3,}")
ROT13_TELL = re.compile(r"rot[- ]?13|caesar", re.IGNORECASE)
# Leetspeak: words with digits or symbols standing for letters ("1gn0re", "ev@luat0r").
_LEET_WORD = re.compile(r"\b(?=\w*[a-zA-Z])(?=[\w@$]*[0-9@$])[a-zA-Z0-9@$]{3,}\b")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})


def _readable(raw: bytes) -> str | None:
    """Bytes that decode as UTF-8 text made mostly of letters and spaces (not random binary)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 8:
        return None
    # Letters (with their vowel signs and accents: Indic scripts write vowels as marks), spaces
    # and punctuation, as text is; random bytes that happen to decode are mostly not.
    letters = sum(c.isalpha() or unicodedata.category(c)[0] == "M" for c in text)
    textual = letters + sum(c.isspace() or unicodedata.category(c)[0] == "P" for c in text)
    # Words: spaces between them, or a script written without spaces (CJK, Thai ...).
    wordy = any(c.isspace() for c in text) or sum(not c.isascii() for c in text) >= 0.5 * len(text)
    return text if letters >= 0.5 * len(text) and textual >= 0.85 * len(text) and wordy else None


def decode_span(span: str) -> str | None:
    """The text behind one encoded run, or None when it is not encoded text."""
    if "%" in span:
        decoded = urllib.parse.unquote(span)
        return decoded if decoded != span else None
    hexdigits = span.removeprefix("0x").replace("\\x", "")
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", hexdigits):
        readable = _readable(binascii.unhexlify(hexdigits))
        if readable is not None:
            return readable
    try:
        raw = base64.b64decode(
            span.replace("-", "+").replace("_", "/") + "=" * (-len(span) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        return None
    return _readable(raw)


@lru_cache(maxsize=1024)
def encoded_spans(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, decoded) for every run of base64 / hex / URL-encoded text that decodes to text
    (cached: the screen and the re-judge detector read the same texts)."""
    found: list[tuple[int, int, str]] = []
    for pattern in (URL_ENCODED, HEX, BASE64):
        if pattern is URL_ENCODED and "%" not in text:
            continue
        for m in pattern.finditer(text):
            if any(s <= m.start() < e for s, e, _ in found):
                continue
            decoded = decode_span(m.group(0))
            if decoded:
                found.append((m.start(), m.end(), decoded))
    return tuple(found)


@dataclass(frozen=True)
class View:
    """One way to read a text: ``how`` ("text", "rendered", "encoded", "rot13"), its
    :func:`spell` form (case kept) and its :func:`fold` form."""

    how: str
    spelled: str

    @property
    def folded(self) -> str:
        return self.spelled.casefold()


def rendered(text: str) -> str:
    """The text with markup removed and entities decoded (what the words are once the tags that
    split them, "ig<b></b>nore", are gone); comments and hidden elements keep their content."""
    if "<" in text:
        text = _TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


@lru_cache(maxsize=1024)
def views(text: str) -> tuple[View, ...]:
    """Every reading of ``text`` the screen checks (cached like :func:`encoded_spans`)."""
    out = [View("text", spell(text))]
    if ("<" in text or "&" in text) and (plain := rendered(text)) != text:
        out.append(View("rendered", spell(plain)))
    source = strip_invisible(text)
    if "&" in source:
        source = html.unescape(source)
    for _, _, decoded in encoded_spans(source):
        out.append(View("encoded", spell(decoded)))
    if ROT13_TELL.search(text):
        out.append(View("rot13", spell(codecs.encode(source, "rot13"))))
    leet = [m for m in _LEET_WORD.finditer(source) if not m.group(0).isdigit()]
    if len(leet) >= 2:
        out.append(View("leetspeak", _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), spell(source))))
    return tuple(out)


# --- what a reader does not see --------------------------------------------------------------

_LATIN_WORD = re.compile(r"[^\W\d_]{2,}")
_SCIENCE = set("μµΩπΔΣαβγθλ")


def _scripts(word: str) -> set[str]:
    names = set()
    for c in word:
        if not c.isalpha():  # subscripts, marks: no script of their own here
            continue
        if c.isascii():
            names.add("LATIN")
        else:
            name = unicodedata.name(c, "")
            names.add(name.split(" ", 1)[0] if name else "?")
    return names


def hidden_channels(text: str) -> list[str]:
    """Short descriptions of content a reader of the rendered text would miss."""
    found = []
    invisible = _REPORTED.findall(text.removeprefix("\ufeff"))
    if invisible:
        codes = sorted({f"U+{ord(c):04X}" for c in invisible})
        found.append(f"{len(invisible)} invisible characters: {', '.join(codes[:4])}")
    if not text.isascii():
        # A word of Latin letters with letters of another script that look like Latin ones
        # ("Ьest", "сhoose"): every letter folds to ASCII, yet the word is not ASCII. Units and
        # formulas ("μmol", "ΔH", "πr") are letters that do not imitate Latin ones.
        mixed = [
            w
            for w in _LATIN_WORD.findall(INVISIBLE.sub("", text))
            if len(w) >= 3
            and not w.isascii()
            and not _SCIENCE.intersection(w)
            and "LATIN" in _scripts(w)
            and len(_scripts(w)) > 1
            and spell(w).isascii()
        ]
        if mixed:
            found.append(f"look-alike letters from another script in {mixed[0][:30]!r}")
    if "<" in text:
        if _COMMENT.search(text):
            found.append("HTML comment")
        if HIDDEN_ELEMENT.search(text):
            found.append("hidden HTML element")
    return found
