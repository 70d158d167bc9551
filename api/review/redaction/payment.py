"""Payment data: card numbers (Luhn-checked) and IBANs (mod-97-checked).

An IBAN is written compact (``DE89370400440532013000``) or in groups of four
(``GB29 NWBK 6016 1331 9268 19``); its country's length says where it ends, and the
checksum keeps random digit strings out.

>>> [(e.type, e.value) for e in find_payment("IBAN GB29 NWBK 6016 1331 9268 19, BIC NWBKGB2L")]
[('IBAN', 'GB29 NWBK 6016 1331 9268 19')]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from api.review.redaction.checks import IBAN_LENGTHS, digits, iban_ok, luhn_ok
from api.review.redaction.spans import Entity, from_match

__all__ = ["find_payment"]

_CARD = re.compile(r"(?<![\w-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\w-]|\.\d)")
# Candidates: country, check digits, then up to 32 characters with single spaces between
# any of them (groups of four are the print format, but people split where they like).
# Longer than any IBAN on purpose: the country's length decides where it ends.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,32}")


def find_payment(text: str) -> Iterator[Entity]:
    """Card numbers and IBANs in ``text``."""
    for card in _CARD.finditer(text):
        number = digits(card.group())
        if 13 <= len(number) <= 19 and luhn_ok(number):
            yield from_match(card, "CREDIT_CARD", key=number)
    # Not finditer: a candidate that fails its check may have swallowed the start of a real
    # IBAN ("REF AB12 GB29 NWBK ..."), so the search resumes just after a failed start.
    pos = 0
    while (m := _IBAN.search(text, pos)) is not None:
        entity = _iban(text, m)
        if entity is not None:
            yield entity
        pos = entity.end if entity is not None else m.start() + 1


def _iban(text: str, m: re.Match[str]) -> Entity | None:
    length = IBAN_LENGTHS.get(m.group()[:2])
    if length is None:
        return None
    # Walk to the country's length in characters that are not spaces; what follows was
    # swallowed by the candidate pattern and is not part of the IBAN.
    count, end = 0, m.start()
    while count < length and end < m.end():
        if text[end] != " ":
            count += 1
        end += 1
    if count < length or (end < len(text) and text[end].isalnum()):
        return None  # too short, or glued to more characters: part of a longer token
    value = text[m.start() : end]
    compact = value.replace(" ", "")
    if not iban_ok(compact):
        return None
    return Entity(m.start(), end, "IBAN", value, f"IBAN:{compact}")
