"""Street addresses in other languages and scripts than ``redaction.address`` covers.

A street type word of the language, the street's name, and a house number, in either order,
then optionally the unit, postcode and city (comma-separated parts that hold a digit, a unit
word or capitalised words). Shapes:

* type first: ``ul. Marszałkowska 84/92``, ``ул. Тверская, д. 13``, ``Οδός Ερμού 15``,
  ``Jl. Sudirman No. 5``, ``شارع الملك فهد 123``, ``רחוב הרצל 12``, ``Calea Victoriei 12``;
* type last: ``Andrássy út 60``, ``Atatürk Caddesi No: 25``, ``Karl Johans gate 22``,
  ``Mannerheimintie 12 B``, ``Nehru Marg 14``;
* number first: ``123 Đường Lê Lợi``, ``12, MG Road`` is English (``redaction.address``);
* Chinese and Japanese: a run with an administrative or street character and a house
  number (``北京市朝阳区建国路88号``, ``東京都千代田区丸の内1-9-1``); Korean road names
  (``테헤란로 152``).

>>> [e.value for e in find_world_addresses("Mieszkam przy ul. Marszałkowskiej 84/92, 00-514 Warszawa.")]
['ul. Marszałkowskiej 84/92, 00-514 Warszawa']
>>> [e.value for e in find_world_addresses("我住在北京市朝阳区建国路88号。")]
['北京市朝阳区建国路88号']
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from api.review.redaction.spans import HAS_DIGIT, Entity

__all__ = ["find_world_addresses"]

_NAME_WORD = r"[^\W\d_][\w'’.\-]*"  # a word of the street's name, in any script
_NUMBER_MARK = (
    r"(?:No\.?\s?:?\s?|Nr\.?\s?|n[º°o]\.?\s?|N[º°]\.?\s?|№\s?|д\.\s?|дом\s|буд\.\s?|číslo\s|Kapı\s+No\s?:?\s?"
    r"|Số\s|số\s|رقم\s|מס['׳]?\s)?"
)
_NUMBER = r"\d{1,5}[A-Za-zА-Яа-я]?(?:\s?[/-]\s?\d{1,5}[A-Za-zА-Яа-я]?)?(?:\s[A-H](?:\s\d{1,4})?(?![\w]))?"
_PREFIX_TYPES = (
    r"ul\.|ulica|al\.|aleja|pl\.|plac|os\.|ulice|nám\.|náměstí|tř\.|třída|Jl\.|Jln\.|Jalan|Đường|đường|Phố|phố"
    r"|улица|ул\.|проспект|просп\.|пр-т|пр\.|переулок|пер\.|бульвар|б-р|шоссе|набережная|наб\.|площадь|пл\."
    r"|вул\.|вулиця|пров\.|Οδός|οδός|Οδ\.|οδ\.|Λεωφόρος|Λεωφ\.|شارع|طريق|ش\.|רחוב|רח['׳]|שדרות|Calea|Strada"
    r"|Str\.|Bulevardul|Bd\.|Bulevar|Rruga|Carrera|Cra\.|Calzada|Av\.|Avda\.|Avenida|Calle|C/|Rua|Travessa"
    r"|ถนน|ซอย|Sokak|Cadde"
)
_SUFFIX_TYPES = (
    r"út|utca|u\.|körút|tér|tie|katu|kuja|polku|gatan|gata|gate|gaten|gade|vej|veien|vegen|vägen|straat|laan"
    r"|gracht|weg|plein|Caddesi|Cad\.|Cd\.|Sokak|Sokağı|Sok\.|Sk\.|Bulvarı|Blv\.|Marg|Nagar|Gali|Chowk|Salai"
    r"|Veedhi|iela|gatvė|tänav|ulica|ulice|köz|sor|prospekt|ulitsa|pereulok|shosse|naberezhnaya|vulytsia"
)
_GLUED_TYPES = (
    r"(?:tie|katu|kuja|gatan|gata|vägen|gade|vej|veien|vegen|straat|laan|gracht|utca|iela|gatvė|tänav)"
)
_UNIT = (
    r"(?:кв\.|квартира|оф\.|офис|корп\.|стр\.|Dpto\.|Depto\.|Piso|piso|D\s?:|Daire|Kat|lok\.|m\.|apt\.?|Apt\.?"
    r"|Flat|flat|Wohnung|Whg\.|et\.|étage|appartement|Appt|bt\.|tầng|Phòng|dirección|דירה|شقة|〒)"
)
_CAP = "[A-ZÀ-ÞĀ-ŽА-ЯЁΑ-Ω]"  # a capital letter (Latin, Cyrillic, Greek): a city's name
_TAIL_PART = (
    rf"(?:{_UNIT}\s?\S{{1,6}}"  # a unit
    r"|(?:[A-Z]{1,2}-)?\d{2,3}[ -]?\d{2,4}(?:\s+[^\W\d_][\w'’.\-]*){0,3}"  # a postcode and its city
    r"|\d{1,5}[A-Za-z]?"  # a bare unit number
    r"|[^\W\d_][\w'’.]*\s\d{1,3}"  # a district ("Quận 1", "Praha 1")
    r"|[\u0590-\u06ff]+(?:\s[\u0590-\u06ff]+)?"  # a Hebrew or Arabic city
    rf"|{_CAP}[\w'’.\-]*(?:\s{_CAP}[\w'’.\-]*){{0,2}}(?:\s(?:[A-Z]{{1,2}}-)?\d{{2,3}}[ -]?\d{{2,4}})?"
    r")"
)
_TAIL = rf"(?:\s?[,،]\s?{_TAIL_PART}(?![\w])){{0,4}}"

# A type word ends at a full stop or apostrophe of its own ("ul.", "רח'") or at a word's end
# ("plac" is not the start of "place").
_TYPE_END = r"(?:(?<=[.'׳/])|(?![\w]))"
_TYPE_FIRST = re.compile(
    rf"(?<![\w])(?:{_PREFIX_TYPES}){_TYPE_END}\s?(?:{_NAME_WORD}\s){{0,3}}{_NAME_WORD},?\s{_NUMBER_MARK}{_NUMBER}(?![\w]){_TAIL}"
)
# The name's first word is not a lower-case Latin word (an article: "in der ...").
_TYPE_LAST = re.compile(
    rf"(?<![\w])(?![a-z])(?:{_NAME_WORD}\s){{0,2}}{_NAME_WORD}\s(?:{_SUFFIX_TYPES})(?![\w]),?\s{_NUMBER_MARK}{_NUMBER}(?![\w])"
    + _TAIL
)
_GLUED = re.compile(
    rf"(?<![\w])[^\W\d_][\w'’\-]{{1,40}}?{_GLUED_TYPES},?\s{_NUMBER_MARK}{_NUMBER}(?![\w]){_TAIL}"
)
# Number first is the Vietnamese, Indonesian and Thai order ("123 Đường Lê Lợi").
_NUMBER_FIRST = re.compile(
    rf"(?<![\w.,/])\d{{1,5}}[A-Za-z]?,?\s(?:Đường|đường|Phố|phố|Jl\.|Jalan|ถนน|ซอย){_TYPE_END}\s?(?:{_NAME_WORD}\s){{0,3}}{_NAME_WORD}{_TAIL}"
)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff々"
_KANA = "\u3040-\u30ff"
_CJK_ADDRESS = re.compile(
    rf"(?:〒\s?\d{{3}}-?\d{{4}}\s*)?[{_HAN}{_KANA}]{{0,14}}?[市区區路街道省县縣都府県町村巷弄里]"
    rf"[{_HAN}{_KANA}0-9０-９]{{0,16}}?"
    r"[0-9０-９]{1,5}(?:(?:[-−ー－][0-9０-９]{1,5}){1,3}|\s?(?:号|號|番地|番|丁目)(?:\s?[0-9０-９]{1,5}\s?(?:号|號|番地?|室|楼|樓))*)"
)
_CJK_LEAD = re.compile(r"^(?:我住在|我家在|住在|地址是|地址[:：]|位于|位於|在|住所は|私は|自宅は)")
_KOREAN_ROAD = re.compile(
    r"(?:[가-힣]+(?:특별시|광역시|특별자치시|시|도|구|군)\s){0,3}[가-힣0-9]+(?:대로|로|길)\s?\d{1,5}(?:-\d{1,5})?"
    r"(?:번길\s?\d{1,5})?(?:,?\s?\d{1,4}호)?"
)


def find_world_addresses(text: str) -> Iterator[Entity]:
    """Street addresses in the shapes above (every one needs a house number)."""
    if HAS_DIGIT.search(text) is None:
        return
    for pattern in (_TYPE_FIRST, _TYPE_LAST, _GLUED, _NUMBER_FIRST):
        for m in pattern.finditer(text):
            yield _entity(m.start(), m.group())
    if not text.isascii():
        for m in _CJK_ADDRESS.finditer(text):
            lead = _CJK_LEAD.match(m.group())
            skip = lead.end() if lead else 0
            yield _entity(m.start() + skip, m.group()[skip:])
        for m in _KOREAN_ROAD.finditer(text):
            yield _entity(m.start(), m.group())


def _entity(start: int, value: str) -> Entity:
    trimmed = value.rstrip(" ,.")
    key = " ".join(trimmed.split()).casefold()
    return Entity(start, start + len(trimmed), "STREET_ADDRESS", trimmed, f"STREET_ADDRESS:{key}")
