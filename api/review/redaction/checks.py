"""Validators behind the redaction recognisers: a match must also pass its format's check.

Checksums (Luhn for cards, ISO 13616 mod-97 for IBANs) keep random digit runs from being
taken for card or account numbers; the entropy test tells generated secrets from words.

>>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
(True, False)
>>> iban_ok("GB29NWBK60161331926819"), iban_ok("GB29NWBK60161331926818")
(True, False)
"""

from __future__ import annotations

import math
import re
from collections import Counter

__all__ = ["IBAN_LENGTHS", "digits", "entropy", "has_symbol", "iban_ok", "looks_random", "luhn_ok"]

# Length of a full IBAN per country (SWIFT IBAN registry). An IBAN of another length is
# not one, and the length tells where an IBAN ends when words follow it in capitals.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit of card numbers holds."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """``iban`` (upper case, no spaces) has its country's length and passes ISO 13616 mod-97:
    with the first four characters moved to the end and letters as 10..35, the number is 1
    modulo 97. A random string passes with odds of about 1 in 97 after the length check."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit() or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def entropy(s: str) -> float:
    """Shannon entropy per character, in bits."""
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def has_symbol(value: str) -> bool:
    return bool(re.search(r"\d", value) or re.search(r"[^A-Za-z0-9]", value))


def looks_random(value: str) -> bool:
    """Generated secrets mix character classes and have high per-character entropy;
    identifiers in code (``tokenizer``, ``self.api_key``) do not."""
    if len(value) < 12 or not re.fullmatch(r"[!-~]+", value) or "(" in value:
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d"))
    return classes >= 2 and bool(re.search(r"\d", value)) and entropy(value) >= 3.0


def digits(s: str) -> str:
    return re.sub(r"\D", "", s)
