"""Contact data: email addresses, phone numbers and IP addresses (v4 and v6).

Phone numbers need separators, a ``+`` or a trunk ``0`` -- or a phone word in front -- so
quantities and order numbers stay; IP addresses are validated by :mod:`ipaddress`.

>>> [(e.type, e.value) for e in find_contact("Mail jo@example.org or ssh to 10.0.0.12.")]
[('EMAIL', 'jo@example.org'), ('IP_ADDRESS', '10.0.0.12')]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from api.review.redaction_checks import digits
from api.review.redaction_spans import Entity, from_match

__all__ = ["find_contact", "phone_key"]

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

_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
# Candidates only; ipaddress decides. The dotted tail admits IPv4-mapped forms.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?:%\w+)?(?![\w:])"
)


def find_contact(text: str) -> Iterator[Entity]:
    """Emails, IP addresses and phone numbers in ``text``."""
    if "@" in text:
        for m in _EMAIL.finditer(text):
            yield from_match(m, "EMAIL", key=m.group().lower())
    for m in _IPV4.finditer(text):
        yield from_match(m, "IP_ADDRESS")
    if "::" in text or text.count(":") >= 5:
        for m in _IPV6.finditer(text):
            value = m.group()
            try:
                addr = ipaddress.IPv6Address(value.split("%")[0])
            except ValueError:
                continue
            # "a::b" (C++ scopes) and "::1" (loopback) are valid but carry no identity.
            if sum(c in "0123456789abcdefABCDEF" for c in value) >= 5:
                yield from_match(m, "IP_ADDRESS", key=addr.compressed)
    for pattern, min_digits in ((_PHONE_NANP, 10), (_PHONE_INTL, 8), (_PHONE_NATIONAL, 9)):
        for m in pattern.finditer(text):
            number = digits(re.split(r"\s?(?:x|ext)", m.group())[0])
            if min_digits <= len(number) <= 15:
                yield from_match(m, "PHONE", key=phone_key(number))
    for m in _PHONE_CONTEXT.finditer(text):
        number = digits(m.group(1))
        if 7 <= len(number) <= 15:
            yield from_match(m, "PHONE", key=phone_key(number), group=1)


def phone_key(number: str) -> str:
    """One key per line: a +1 / 001 prefix is the same North American line as without it."""
    if len(number) == 11 and number.startswith("1"):
        return number[1:]
    if len(number) == 13 and number.startswith("001"):
        return number[3:]
    return number
