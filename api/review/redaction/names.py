"""Person names: a dictionary heuristic over the person-name lists that Faker ships.

A capitalised English first name (en_US/en_GB/en_IE/en_NZ) with the capitalised words
after it; a first name that is also a word or place ("Will", "Hope", "Georgia"), or one from
the de/fr/es/it/pt_BR/en_IN/Nigerian lists, only before a surname; an unlisted word before a
listed surname ("Spike Lee"); and a title ("Dr. Okafor", "Sra. Pérez", "Herr Müller"). In
Latin, Greek and Cyrillic letters, the lists of Faker's 75 other locales add: their first names
before one of their surnames ("Mehmet Yılmaz"), family name first ("Nguyễn Văn An", "Nagy
Zoltán"), and any capitalised pair whose second word has a surname ending (-ović, -enko,
-poulos, -dze, -ovna: "Aigerim Nurlanovna"). Caseless scripts: :mod:`api.review.redaction.names_world`.
Why a dictionary and not a model: see :mod:`api.review.redaction`.

>>> [e.value for e in find_names("Will it rain? Ask Will Jones or Dr. Okafor.")]
['Will Jones', 'Okafor']
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from api.review.redaction.spans import Entity

__all__ = ["HAS_CAPITALISED", "find_names", "learnable_part"]

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
_TITLES = (
    r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Madam|Mme|Mlle|Herr|Frau|Sr|Sra|Srta|Señor|Señora"
    r"|Señorita|Don|Doña|Dona|Signor|Signora|Sig|Sig\.ra|Dott|Dott\.ssa|Monsieur|Madame|Pan|Pani|Sayın"
    r"|Bayan|Shri|Smt|Mevrouw|Meneer|Dhr|Mevr|Fru|Herra|Rouva|Tuan|Puan|Bapak|Ibu|Ông|Bà|Chị"
    r"|Κύριος|Κυρία|господин|госпожа|г-н|г-жа|пан|пані|Sheikh|Sheikha|Ustaz|Hajji?|Alhaji|Mwalimu|Bwana)"
)
# Endings that make a capitalised word a surname in many languages (never English words: the
# pair also needs a capitalised word before it that is not a stop word or a place).
_SURNAME_ENDING = re.compile(
    r"(?:ovich|evich|ovna|evna|ichna|ović|ovic|ević|evic|enko|chuk|czyk|wicz|wski|wska|ński|ńska|sky|skyi|skaya"
    r"|opoulos|poulos|akis|idis|iadis|oglu|oğlu|dze|shvili|ishvili|escu|eanu|lainen|nen|bayev|bekov|bekova"
    r"|uly|kyzy|qizi|ov|ova|ev|eva|yan|yev|yeva|ович|евич|овна|евна|ична|ов|ова|ев|ева|ин|ина|ский|ская|енко"
    r"|ук|юк|швили|дзе|ян)$"
)
# Latin letters with the accents of European names ("Jürgen", "Łukasz", "Rodríguez").


def _letter_class(category: str) -> str:
    """A regex class body of the letters of ``category`` (Lu, Ll) in the cased scripts: Latin
    with every accent (Vietnamese too), Greek, Cyrillic, Armenian."""
    ranges = ((0x41, 0x24F), (0x370, 0x58F), (0x1E00, 0x1FFF))
    codes = (c for lo, hi in ranges for c in range(lo, hi + 1))
    chars = [chr(c) for c in codes if unicodedata.category(chr(c)) == category]
    return "".join(re.escape(c) for c in chars)


_UP = _letter_class("Lu")
_LO = _letter_class("Ll")
# A text without a capitalised word has no name: most code and lowercase chat skip the run.
HAS_CAPITALISED = re.compile(rf"[{_UP}][{_LO}]")
# A hyphenated part may be lower case ("Min-jun"); after an apostrophe only a capital
# ("D'Angelo"), so a possessive ("Miller's") stays outside.
_NAME_TOKEN = rf"(?:(?:Mc|Mac|O['’]|D['’])?[{_UP}][{_LO}]+(?:-[{_UP}]?[{_LO}]+|['’][{_UP}][{_LO}]+)?)"
_PARTICLE = r"(?:van|von|de|da|di|del|della|der|den|du|la|le|dos|das|ter|bin|ibn|al)"
# A run of capitalised words on one line, with optional middle initials ("John F. Kennedy")
# and surname particles ("Theo van Doesburg").
_CAP_RUN = re.compile(
    rf"(?<![\w'’]){_NAME_TOKEN}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*(?:[A-Z]\.[ \t]+)?{_NAME_TOKEN}){{0,5}}"
    r"(?![\w-]|['’][A-Z])"
)
_TOKEN_IN_RUN = re.compile(rf"{_NAME_TOKEN}|[A-Z]\.|\b{_PARTICLE}\b")
_TITLED = re.compile(rf"\b{_TITLES}\.?[ \t]+({_NAME_TOKEN}(?:[ \t]+{_NAME_TOKEN})?)(?![\w-]|['’][A-Z])")
# Not ":": after "Contact:" or "From:" a capitalised pair is a name far more often than a
# sentence's first word.
_SENTENCE_START = re.compile(r"(?:^|[.!?;\"“(\n*#-]|\d\.)[ \t]*$")

# English-speaking locales: a listed first name on its own is taken as a name.
_STRONG_LOCALES = ("en_US", "en_GB", "en_IE", "en_NZ")
# Other locales' first names collide more with English words and places ("Angel",
# "Dolores", "Mercedes"): they count only in front of a surname-like word.
# Every other locale Faker has (86 in all: European, Slavic, Turkic, Indian, African, East
# Asian, Arabic, Persian, Hebrew...) is loaded too: those are the names that leaked.


def _all_locales() -> tuple[str, ...]:
    import faker.providers.person as person

    return tuple(m.name for m in pkgutil.iter_modules(person.__path__) if m.name not in _STRONG_LOCALES)


def _listed(value: object) -> list[str]:
    # Most providers list names; some weight them in a dict; es_CL computes them (skipped).
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value]
    return []


@lru_cache(maxsize=1)
@dataclass(frozen=True)
class _Lists:
    strong: frozenset[str]  # English first names: a name on their own
    weak: frozenset[str]  # de/fr/es/it/pt/Indian/Nigerian first names: before a surname-like word
    lasts: frozenset[str]  # surnames of those locales
    extra: frozenset[str]  # first names of every other locale: only before a listed surname
    extra_lasts: frozenset[str]  # surnames of every other locale


# The locales whose first names count before any surname-like word (measured on the shared
# texts at redact-v2). The other locales' first names are often English words ("Art", "Long",
# "Iron", "Deep", "Job"): they count only before a listed surname or a surname ending.
_WEAK_LOCALES = ("de_DE", "fr_FR", "es_ES", "es_MX", "it_IT", "pt_BR", "en_IN", "yo_NG", "ig_NG", "en_NG")


@lru_cache(maxsize=1)
def _name_lists() -> _Lists:
    """The name lists of Faker's person providers, loaded once on first use (~0.3 s) so
    importing this module stays cheap."""

    def load(locales: tuple[str, ...]) -> tuple[set[str], set[str]]:
        firsts: set[str] = set()
        lasts: set[str] = set()
        for locale in locales:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
            for attr in ("first_names", "first_names_male", "first_names_female"):
                firsts.update(n for n in _listed(getattr(provider, attr, ())) if _usable(n))
            lasts.update(n for n in _listed(getattr(provider, "last_names", ())) if _usable(n))
        return firsts, lasts

    strong, lasts = load(_STRONG_LOCALES)
    weak, weak_lasts = load(_WEAK_LOCALES)
    extra, extra_lasts = load(tuple(loc for loc in _all_locales() if loc not in _WEAK_LOCALES))
    never = _NOT_SURNAME | _PLACE_OR_ORG
    weak -= strong | never
    lasts |= weak_lasts
    lasts -= _AMBIGUOUS_LAST
    extra -= strong | weak | never | _AMBIGUOUS_FIRST
    extra_lasts -= lasts | never | _AMBIGUOUS_LAST | strong
    return _Lists(*map(frozenset, (strong, weak, lasts, extra, extra_lasts)))


def _usable(name: str) -> bool:
    # One-character names are Chinese and Korean given names and surnames: those scripts are
    # handled by redaction_names_cjk, which needs them; here they would match every letter.
    return len(name) >= 2 and " " not in name


def _surname_like(word: str) -> bool:
    return len(word) > 1 and word not in _NOT_SURNAME and word not in _PLACE_OR_ORG


def find_names(text: str) -> Iterator[Entity]:
    """Person names in ``text`` (only where it has a capitalised word: see HAS_CAPITALISED)."""
    lists = _name_lists()
    strong, weak, lasts = lists.strong, lists.weak, lists.lasts
    extra, extra_lasts = lists.extra, lists.extra_lasts
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
                ok = nxt in lasts or (word in weak and _surname_like(nxt) and nxt[:1].isupper())
            elif word in extra:
                # Another locale's first name before a surname: "Mehmet Yılmaz", "Aigerim Nurlanovna".
                ok = nxt in lasts or nxt in extra_lasts or bool(nxt and _SURNAME_ENDING.search(nxt))
            elif (
                (word in extra_lasts or word in lasts)
                and nxt[:1].isupper()
                and _surname_like(nxt)
                and (nxt in strong or nxt in weak or nxt in extra or (i + 2 < len(words) and len(words) <= 4))
            ):
                # Family name first (Vietnamese, Chinese and Korean in Latin letters, Hungarian):
                # "Nguyễn Văn An", "Kim Min-jun", "Nagy Zoltán".
                ok = True
            elif nxt and _surname_like(word) and _SURNAME_ENDING.search(nxt):
                # A surname by its ending (patronymics, Slavic, Greek, Georgian, Armenian,
                # Turkic, Romanian, Finnish forms): "Aigerim Nurlanovna", "Giorgi Beridze".
                ok = not word.endswith(("ian", "ish", "ese"))
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


def learnable_part(part: str) -> bool:
    """Whether one word of a found multi-word name, seen alone later, still names that person
    ("Smith" after "John Smith"); words that are also ordinary words ("Will", "Hope") are not."""
    return (
        len(part) > 2
        and part[0].isupper()
        and part not in _NOT_SURNAME
        and part not in _AMBIGUOUS_FIRST
        and part not in _AMBIGUOUS_LAST
    )
