"""Street addresses: the street line with its number, and the unit, city and postcode that
follow it.

Three shapes cover the common Western formats:

* number first, street type last: ``221B Baker Street``, ``1600 Pennsylvania Avenue NW``,
  ``Flat 3, 12 High St`` (UK, US, Ireland, Australia), and French ``12, rue de la Paix``;
* street type first, number last: ``Calle Mayor 5``, ``Via Roma 10``, ``Rua Augusta 100``
  (Spain, Italy, Portugal);
* a compound street name, number last: ``Musterstraße 12``, ``Keizersgracht 123``,
  ``Berliner Straße 5`` (German, Dutch, Swedish).

Then, each optional: a unit (``Apt. 4B``, ``Suite 200``, ``Piso 3``) and a city line with a
postcode (``London NW1 6XE``, ``Washington, DC 20500``, ``10115 Berlin``, ``1012 LG
Amsterdam``). A postcode alone is not taken: without the street it names an area.

Street types that are also ordinary words ("Court", "Park", "Way", "Square") count only with
more evidence -- a unit, a postcode, a compass direction, or "at" / "live" / "address" just
before -- so "the 9 Supreme Court justices" stays. A year before a street name ("in 1969
Abbey Road ...") is not a house number.

>>> [e.value for e in find_addresses("Ship it to 221B Baker Street, London NW1 6XE by Monday.")]
['221B Baker Street, London NW1 6XE']
>>> [e.value for e in find_addresses("Ufficio: Via Roma 10, 00184 Roma. Nine Supreme Court judges.")]
['Via Roma 10, 00184 Roma']
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from api.review.redaction.spans import HAS_DIGIT, Entity

__all__ = ["find_addresses"]

_UP = "A-ZÀ-ÖØ-ÞĀ-ž"  # as in redaction.names: Latin letters with European accents
_LO = "a-zß-öø-ÿĀ-ž"
_WORD = rf"[{_UP}][{_LO}'’]+(?:[{_UP}][{_LO}]+)?"  # a capitalised word ("McKinley", "LacroixBourg")
_NUM = r"\d{1,5}[A-Za-z]?(?:[-/]\d{1,5}[A-Za-z]?)?"  # 221B, 12-14, 3/5

# English street types. Strong ones name a street on their own; weak ones are also ordinary
# words and need more evidence (see the module docstring).
_STRONG = (
    "Street St Avenue Ave Road Rd Boulevard Blvd Lane Ln Drive Dr Terrace Terr Parkway Pkwy "
    "Crescent Cres Highway Hwy Mews Turnpike Tpke Expressway Expy Freeway Fwy Alley Embankment "
    "Esplanade Wynd"
).split()
_WEAK = (
    "Way Court Ct Place Pl Square Sq Circle Cir Plaza Close Gardens Gdns Grove Row Hill Park Walk "
    "Trail Trl Loop Parade Pde Path Pike Green Rise Vale View Wharf Quay Heights Point Ridge "
    "Crossing Run Cove Bend Gate Yard Passage Circus Causeway Commons Landing Meadows Hollow"
).split()
# Abbreviations may take a full stop ("Baker St."); a full word's full stop ends the sentence.
_ABBREVIATIONS = frozenset(
    "St Ave Rd Blvd Ln Dr Terr Pkwy Cres Hwy Tpke Expy Fwy Ct Pl Sq Cir Gdns Trl Pde".split()
)
_FULL = "|".join(sorted(set(_STRONG + _WEAK) - _ABBREVIATIONS, key=len, reverse=True))
_ABBREVIATED = "|".join(sorted(_ABBREVIATIONS, key=len, reverse=True))
_DIRECTION = r"(?:NE|NW|SE|SW|N|S|E|W|North|South|East|West)"
# Flat 3 / Apt. 4B / Suite 200 / #12; Piso 3, Puerta 8, Appartamento 4, Scala B, Interno 5.
_UNIT_WORD = (
    r"(?:Flat|Apartment|Apt\.?|Unit|Suite|Ste\.?|Studio|Room|Rm\.?|Floor|Fl\.?|Piso|Puerta|Planta"
    r"|Appartamento|Interno|Int\.|Scala|Piano)"
)
_UNIT = rf"(?:{_UNIT_WORD}[ \t]*#?|#[ \t]*)[A-Za-z0-9-]{{1,6}}\b"
_STREET_WORD = rf"(?:{_WORD}(?:-{_WORD})*\.?|\d{{1,3}}(?:st|nd|rd|th)|O['’]{_WORD}|Mc{_WORD})"

# What may follow the street line: city and postcode, on the same line after a comma or on
# the next line. Postcodes: US ZIP, UK, Canada, most of Europe (4-5 digits, "D-" prefix allowed),
# Netherlands ("1012 LG"), Portugal ("1100-148").
_SEP = r"[ \t]*(?:,[ \t]*\r?\n?|\r?\n)[ \t]*"
_CITY = (
    rf"(?:['’]s-)?{_WORD}(?:[ \t-](?:{_WORD}|upon|on|sur|sous|am|an|im|der|de|la|le|les|del|di|do|da"
    rf"|dos|das|o|a|e|y|aan|den|op)){{0,3}}"
)
_US_STATE = (
    r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH"
    r"|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI)"
)
_US_STATE_NAME = (
    r"(?:Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia"
    r"|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts"
    r"|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New[ \t]Hampshire|New[ \t]Jersey"
    r"|New[ \t]Mexico|New[ \t]York|North[ \t]Carolina|North[ \t]Dakota|Ohio|Oklahoma|Oregon|Pennsylvania"
    r"|Rhode[ \t]Island|South[ \t]Carolina|South[ \t]Dakota|Tennessee|Texas|Utah|Vermont|Virginia"
    r"|Washington|West[ \t]Virginia|Wisconsin|Wyoming)"
)
_CA_PROVINCE = r"(?:AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT)"
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"
_EU_POSTCODE = r"(?:(?:[A-Z]{1,2}-)?\d{4,5}|\d{4}[ \t]?[A-Z]{2}|\d{4}-\d{3})"
_COUNTRY = (
    r"(?:USA|U\.S\.A\.|United States|UK|U\.K\.|United Kingdom|England|Scotland|Wales|Ireland|Germany"
    r"|Deutschland|France|Spain|España|Italy|Italia|Netherlands|Nederland|Portugal|Belgium|Austria"
    r"|Österreich|Switzerland|Schweiz|Suisse)"
)
_TAIL = (
    rf"(?:{_SEP}(?:"
    rf"{_CITY},?[ \t]+(?:{_US_STATE}|{_US_STATE_NAME})(?:,?[ \t]+\d{{5}}(?:-\d{{4}})?)?"
    rf"|(?:{_CITY}(?:,?[ \t]+|{_SEP}))?{_UK_POSTCODE}"
    rf"|{_CITY},?[ \t]+{_CA_PROVINCE}[ \t]+[A-Z]\d[A-Z][ \t]?\d[A-Z]\d"
    rf"|{_EU_POSTCODE},?[ \t]+{_CITY}(?:[ \t]+\([A-Z]{{2}}\))?"
    rf"|{_CITY},?[ \t]+\d{{5}}"
    rf")(?![\w-])(?:,[ \t]*{_COUNTRY}\b)?)"
)
_AFTER_STREET = rf"(?P<unit>[ \t]*,?[ \t]*{_UNIT})?(?P<tail>{_TAIL})?"

_NUMBER_FIRST = re.compile(
    rf"(?<![\w.,/$€£%:#+-])(?P<pre>{_UNIT_WORD}[ \t]+[A-Za-z0-9]{{1,5}},?[ \t]+)?"
    rf"(?P<num>{_NUM}),?[ \t]+(?P<dir0>{_DIRECTION}\.?[ \t]+)?"
    rf"(?:{_STREET_WORD}[ \t]+){{1,4}}(?:(?P<suffix>{_FULL})\b|(?P<abbr>{_ABBREVIATED})\b\.?)"
    rf"(?P<dir>[ \t]+{_DIRECTION}\b)?" + _AFTER_STREET
)
_FRENCH = re.compile(
    rf"(?<![\w.,/$€£%:#+-])(?P<num>\d{{1,4}}(?:[ \t]?(?:bis|ter))?),?[ \t]+"
    r"(?:[Rr]ue|[Aa]venue|[Bb]oulevard|[Bb]d\.?|[Pp]lace|[Aa]ll[ée]e|[Cc]hemin|[Ii]mpasse|[Qq]uai|[Cc]ours"
    r"|[Rr]oute|[Pp]assage|[Ff]aubourg)[ \t]+"
    rf"(?:(?:de[ \t]+la|de[ \t]+l['’]|des|du|de|d['’]|la|le|les|l['’])[ \t]*)?{_WORD}"
    rf"(?:[ \t-](?:{_WORD}|de|du|des|la|le|les|[dl]['’]{_WORD}|[IVX]+\b)){{0,4}}" + _AFTER_STREET
)
_TYPE_FIRST = re.compile(
    r"(?<![\w])(?P<type>Calle|C/|Avenida|Avda\.|Paseo|Plaza|Pza\.|Plaça|Carrer|Camino|Ronda|Travesía|Rambla"
    r"|Via|Viale|Vicolo|Piazza|Piazzale|Corso|Largo|Strada|Borgo|Rua|Travessa|Praça|Alameda|Estrada)"
    r"[ \t]*(?P<particle>(?:de[ \t]+la|de[ \t]+las|de[ \t]+los|de|del|la|el|di|della|dei|degli|delle"
    r"|da|do|dos|das)[ \t]+)?"
    rf"{_WORD}(?:[ \t-](?:{_WORD}|de|del|la|las|los|di|della|dei|da|do|dos|das|[IVX]+\b)){{0,4}}"
    rf",?[ \t]+(?:n\.?[ºo°]\.?[ \t]*)?(?P<num>\d{{1,4}}[A-Za-z]?(?:[-/]\d{{1,4}})?)(?![\w.,]\d|\w)"
    + _AFTER_STREET
)
_COMPOUND = re.compile(
    rf"(?<![\w-])(?:[{_UP}][\w'’.-]{{1,40}}?"
    r"(?i:straße|strasse|str\.|gasse|weg|allee|platz|damm|ufer|chaussee|steig|pfad|markt|straat|laan"
    r"|gracht|plein|kade|singel|dijk|steeg|hof|gatan|vägen)"
    rf"|{_WORD}[ \t]+(?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Damm|Ufer|Chaussee|Markt))"
    rf"[ \t]+(?P<num>\d{{1,4}}[ \t]?[a-z]?(?:[-/]\d{{1,4}}[a-z]?)?)(?![\w.,]\d|\w)" + _AFTER_STREET
)

_STRONG_SET = frozenset(_STRONG)
# Street types of the type-first shape that are also English words ("Plaza Hotel 5 stars"):
# taken with the evidence a weak English street type needs, or a particle ("Plaza de ...").
_WEAK_TYPES = frozenset({"Plaza", "Alameda"})
# A house number usually follows one of these; a weak street type is taken after them.
_CUE = (
    r"at|address(?:\s+is)?|live[sd]?|living|located|moved\s+to|resides?|resided|stay(?:ing)?\s+at"
    r"|deliver(?:ed)?\s+to|ship(?:ped)?\s+to|send\s+(?:it|them)\s+to"
)
_CUE_BEFORE = re.compile(rf"(?i)\b(?:{_CUE})[\s:]*$")
# Before a type-first street the cue is often a preposition of its own language ("abito in
# Via Roma 10", "vivo en Plaza Mayor 3", "moro na Rua Augusta 5").
_CUE_BEFORE_TYPE = re.compile(rf"(?i)\b(?:{_CUE}|in|en|em|na|no|à|indirizzo|direcci[oó]n|endereço)[\s:]*$")
# Before a year, not a house number: "in 1969 Abbey Road was released".
_YEAR_BEFORE = re.compile(r"(?i)\b(?:in|since|until|till|during|circa|year|the|early|late|mid)\W*$")


def find_addresses(text: str) -> Iterator[Entity]:
    """Street addresses in ``text``. Every shape needs a house number, so a text without a
    digit is skipped at once (most are)."""
    if HAS_DIGIT.search(text) is None:
        return
    for m in _NUMBER_FIRST.finditer(text):
        if _number_first_ok(text, m):
            yield _entity(text, m)
    for m in _TYPE_FIRST.finditer(text):
        if m["type"] not in _WEAK_TYPES or m["particle"] or m["unit"] or m["tail"]:
            yield _entity(text, m)
        elif _CUE_BEFORE_TYPE.search(text, max(0, m.start() - 30), m.start()):
            yield _entity(text, m)
    for pattern in (_FRENCH, _COMPOUND):
        for m in pattern.finditer(text):
            yield _entity(text, m)


def _number_first_ok(text: str, m: re.Match[str]) -> bool:
    evidence = bool(m["pre"] or m["dir0"] or m["dir"] or m["unit"] or m["tail"])
    if evidence:
        return True
    before = text[max(0, m.start() - 30) : m.start()]
    num = m["num"]
    if len(num) == 4 and num.isdigit() and 1000 <= int(num) <= 2099 and _YEAR_BEFORE.search(before):
        return False
    return (m["suffix"] or m["abbr"]) in _STRONG_SET or bool(_CUE_BEFORE.search(before))


def _entity(text: str, m: re.Match[str]) -> Entity:
    value = m.group()
    end = m.end()
    if value.endswith(",") or value.endswith(" "):  # never end on the separator
        value = value.rstrip(", ")
        end = m.start() + len(value)
    key = " ".join(value.rstrip(".").split()).casefold()
    return Entity(m.start(), end, "STREET_ADDRESS", value, f"STREET_ADDRESS:{key}")
