"""Contact data: email addresses (also internationalised), phone numbers, IP addresses (v4
and v6), MAC addresses and cryptocurrency wallet addresses.

Phone numbers need separators, a ``+`` or a trunk ``0`` -- or a phone word in front -- so
quantities and order numbers stay; IP addresses are validated by :mod:`ipaddress`.

>>> [(e.type, e.value) for e in find_contact("Mail jo@example.org or ssh to 10.0.0.12.")]
[('EMAIL', 'jo@example.org'), ('IP_ADDRESS', '10.0.0.12')]
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterator

from api.review.redaction.checks import digits
from api.review.redaction.spans import Entity, from_match

__all__ = ["find_contact", "phone_key"]

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
# Internationalised addresses (RFC 6531/IDN): a local part and domain labels in any script
# ("josé.müller@bücher.de", "用户@例子.中国", "почта@пример.рф"), a fullwidth at sign, and
# the spelled-out forms people use to dodge scrapers ("jane (at) example (dot) org").
_EMAIL_INTL = re.compile(
    r"(?<![\w.+%-])[\w\u0300-\u036f\u0900-\u0dff\u0e00-\u0e7f.%+'-]{1,64}[@＠]"
    r"(?:[\w\u0900-\u0dff\u0e00-\u0e7f](?:[\w\u0900-\u0dff\u0e00-\u0e7f-]{0,61})?[.．。])+"
    r"(?:[^\W\d_][\w\u0900-\u0dff]{1,23}|xn--[a-z0-9-]{2,59})(?![\w-])"
)
# Spelled out: "jane [at] example [dot] org", "jane (at) example.org", "jane at example dot org".
# A bare " at " needs a spelled " dot " too, or prose ("me at вул. ...") would be an address.
_EMAIL_SPELLED = re.compile(
    r"(?i)(?<![\w.+%-])[\w.%+-]{1,64}\s*(?P<at>[\[(<{]\s*(?:at|arroba|chez|bei)\s*[\])>}]|\s(?:at|arroba)\s)\s*"
    r"(?:[A-Za-z0-9-]{1,63}\s*(?P<dot>[\[(<{]\s*(?:dot|punto|point|punkt)\s*[\])>}]|\s(?:dot|punto|punkt)\s|\.)\s*)+"
    # A top-level domain: two letters (a country) or a common generic one, so prose ("at knife
    # point better") is not an address.
    r"(?:[A-Za-z]{2}|com|org|net|edu|gov|info|biz|io|app|dev|mail)(?![\w-])"
)
# MAC addresses: six pairs with ":" or "-" (one separator throughout), or Cisco's dotted
# three groups of four.
_MAC = re.compile(
    r"(?<![\w:.-])(?:[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![\w:-]|\.\w)"
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
# Phone words in many languages; tried only where a word starts (or anywhere for the CJK
# ones, which run into the text around them).
_PHONE_CONTEXT = re.compile(
    r"(?i)(?:(?<![^\W\d_])(?:phone|tel|telephone|call|cell|mobile|fax|text|whatsapp|sms|number|contact"
    r"|t[ée]l[ée]phone|t[ée]l|portable|telefon|handy|mobil|tel[ée]fono|m[óo]vil|celular|telefone|telemóvel"
    r"|cellulare|telefono|телефон|тел|моб|τηλέφωνο|τηλ|telefoon|mobiel|puhelin|điện\s+thoại|sđt|nomor\s+hp"
    r"|ponsel|फ़ोन|फोन|मोबाइल|هاتف|جوال|موبايل|טלפון|נייד|cep|gsm)(?![^\W\d_])|电话|手机|電話|携帯|전화|휴대폰)"
    r"[^\n\d]{0,25}(\+?\d[\d .()-]{6,18}\d)(?![\w-]|\.\d)"
)
# Cryptocurrency addresses (a wallet identifies its owner): Ethereum, Bitcoin bech32, and
# Bitcoin base58 addresses, the last checked by their base58check checksum.
_CRYPTO = re.compile(
    r"(?<![\w])(?:0x[0-9a-fA-F]{40}|bc1[ac-hj-np-z02-9]{25,87}|[13][1-9A-HJ-NP-Za-km-z]{25,34})(?![\w])"
)
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

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
    if "@" in text or "＠" in text:
        for m in _EMAIL.finditer(text):
            yield from_match(m, "EMAIL", key=m.group().lower())
        if not text.isascii():
            for m in _EMAIL_INTL.finditer(text):
                yield from_match(m, "EMAIL", key=m.group().casefold())
    for m in _EMAIL_SPELLED.finditer(text):
        if m["at"].strip()[0] in "[(<{" or m["dot"] != ".":
            yield from_match(m, "EMAIL", key=m.group().casefold())
    for m in _CRYPTO.finditer(text):
        value = m.group()
        if value[0] in "13" and not _base58check(value):
            continue
        yield from_match(m, "CRYPTO_ADDRESS")
    for m in _MAC.finditer(text):
        if sum(c.isdigit() for c in m.group()) >= 2:  # "dead.beef.cafe" is a word game, not a NIC
            yield from_match(m, "MAC_ADDRESS", key=re.sub(r"[^0-9a-f]", "", m.group().lower()))
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


def _base58check(value: str) -> bool:
    """A base58 Bitcoin address: its last four bytes are the double SHA-256 of the rest."""
    n = 0
    for ch in value:
        n = n * 58 + _B58.index(ch)
    raw = n.to_bytes(25, "big") if n < 1 << 200 else b""
    return len(raw) == 25 and hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def phone_key(number: str) -> str:
    """One key per line: a +1 / 001 prefix is the same North American line as without it."""
    if len(number) == 11 and number.startswith("1"):
        return number[1:]
    if len(number) == 13 and number.startswith("001"):
        return number[3:]
    return number
