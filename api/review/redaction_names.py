"""Person names: a dictionary heuristic over the person-name lists that Faker ships.

A capitalised English first name (en_US/en_GB/en_IE/en_NZ) with the capitalised words
after it; a first name that is also a word or place ("Will", "Hope", "Georgia"), or one from
the de/fr/es/it/pt_BR/en_IN/Nigerian lists, only before a surname; an unlisted word before a
listed surname ("Spike Lee"); and a title ("Dr. Okafor"). Why a dictionary and not a model:
see :mod:`api.review.redaction`.

>>> [e.value for e in find_names("Will it rain? Ask Will Jones or Dr. Okafor.")]
['Will Jones', 'Okafor']
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from functools import lru_cache

from api.review.redaction_spans import Entity

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
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Madam|Mme|Mlle|Herr|Frau|Sr|Sra)"
# Latin letters with the accents of European names ("Jürgen", "Łukasz", "Rodríguez").
_UP = "A-ZÀ-ÖØ-ÞĀ-ž"
_LO = "a-zß-öø-ÿĀ-ž"
# A text without a capitalised word has no name: most code and lowercase chat skip the run.
HAS_CAPITALISED = re.compile(rf"[{_UP}][{_LO}]")
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


def find_names(text: str) -> Iterator[Entity]:
    """Person names in ``text`` (only where it has a capitalised word: see HAS_CAPITALISED)."""
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
