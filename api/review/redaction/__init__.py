"""Redaction before human review: PII and secrets become stable per-pair tokens.

Reviewers see a pair with personal data and credentials replaced by typed tokens. The
same value gets the same token everywhere in the pair (prompt, response A, response B), so
"<EMAIL_1> wrote to <EMAIL_2>" still reads; ``mapping`` keeps token -> original for the
few people allowed to see it. Numbering follows reading order (prompt, then A, then B).

Types, one recogniser module each (all pure, flat in ``api/review/``):

* ``redaction.secrets``: AWS_KEY, GITHUB_TOKEN, SLACK_TOKEN, API_KEY (the published formats
  of OpenAI, Anthropic, Google, Hugging Face, GitLab, Bitbucket, npm, PyPI, Stripe and
  others), BEARER_TOKEN, PRIVATE_KEY (PEM blocks, also truncated ones), SECRET (``key=value``
  assignments with a high-entropy value, passwords, JWTs, URL credentials);
* ``redaction.contact``: EMAIL (also internationalised), PHONE, IP_ADDRESS (v4 and v6, validated
  by :mod:`ipaddress`), MAC_ADDRESS, CRYPTO_ADDRESS;
* ``redaction.payment``: CREDIT_CARD (Luhn-checked), IBAN (length per country, mod-97-checked);
* ``redaction.address``: STREET_ADDRESS (street line with unit, city and postcode);
* ``redaction.address_world``: STREET_ADDRESS in other languages and scripts;
* ``redaction.ids``: NATIONAL_ID (national id and tax numbers, validated by python-stdnum),
  PASSPORT, DATE_OF_BIRTH and BANK_ACCOUNT (after words that say so, in many languages);
* ``redaction.names``: PERSON (cased scripts); ``redaction.names_world``: PERSON in caseless
  scripts and after "my name is" in many languages.

``redaction.spans`` resolves overlapping findings by type priority (an IBAN beats the phone
number its digit groups look like); ``redaction.checks`` holds the validators. This module
turns findings into per-pair tokens and is the one to import.

Why hand-written recognisers rather than a library (checked on this project's machines,
which reach PyPI but not GitHub or model hubs):

* presidio-analyzer's default engine downloads a spaCy model from GitHub at start-up and
  fails offline; with a blank spaCy pipeline it runs but finds no names, its URL
  recogniser (tldextract) tries to fetch the public-suffix list, and it was several times
  over the per-pair time budget of a request path (figures in the README's measurements).
* spaCy English models are published on GitHub; the PyPI copies are third-party
  re-uploads, and a CNN pipeline would be too slow on a long HH-RLHF pair anyway.

So: compiled regular expressions with validators (Luhn, mod-97, :mod:`ipaddress`, entropy)
for the structured types, and for names a dictionary heuristic over the person-name lists
that the maintained Faker package ships (census-derived for en_US; see ``redaction.names``).
Once "John Smith" is found, a later bare "Smith" gets his token. The heuristic misses names
from lists it does not have (recall per group is printed by ``tests/test_redaction.py``) and
redacts public figures too (it cannot tell them apart): over-redaction was preferred to leaks.
The same holds for street addresses: a public one (the White House's) is redacted like a
private one.

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
>>> redact_text("Pay GB29 NWBK 6016 1331 9268 19 and post it to 221B Baker Street, London NW1 6XE.")[0]
'Pay <IBAN_1> and post it to <STREET_ADDRESS_1>.'
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from api.review.redaction.address import find_addresses
from api.review.redaction.address_world import find_world_addresses
from api.review.redaction.contact import find_contact
from api.review.redaction.ids import find_ids
from api.review.redaction.names import HAS_CAPITALISED, find_names, learnable_part
from api.review.redaction.names_world import find_world_names
from api.review.redaction.payment import find_payment
from api.review.redaction.secrets import find_secrets
from api.review.redaction.spans import Entity, non_overlapping, resolve

__all__ = [
    "REDACTION_VERSION",
    "Entity",
    "RedactedPair",
    "find_entities",
    "redact_many",
    "redact_pair",
    "redact_text",
]

# Bump when recognisers change: labels record which redaction their reviewer saw.
# v2: IBAN, STREET_ADDRESS, more provider key formats.
# v3: NATIONAL_ID, PASSPORT, DATE_OF_BIRTH, BANK_ACCOUNT, MAC_ADDRESS, CRYPTO_ADDRESS,
# internationalised emails, phone words in many languages, more keys,
# names and street addresses in many languages and scripts.
REDACTION_VERSION = "redact-v3"


@dataclass
class RedactedPair:
    """A pair as a reviewer may see it; ``mapping`` is for those allowed the originals."""

    prompt: str
    response_a: str
    response_b: str
    mapping: dict[str, str] = field(default_factory=dict)  # token -> original
    version: str = REDACTION_VERSION


def find_entities(text: str) -> list[Entity]:
    """All findings in ``text``, overlaps resolved (higher priority, then longer, wins),
    sorted by position. Deterministic: same text, same list."""
    found = [
        *find_secrets(text),
        *find_contact(text),
        *find_payment(text),
        *find_ids(text),
        *find_addresses(text),
        *find_world_addresses(text),
        *find_world_names(text),
    ]
    if HAS_CAPITALISED.search(text):
        found.extend(find_names(text))
    return resolve(found)


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
                if learnable_part(part) and "PERSON:" + part.casefold() not in self.name_parts:
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
                entities = non_overlapping(parts, taken=entities)
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
    prompt_text, a_text, b_text = redacted
    return RedactedPair(prompt_text, a_text, b_text, mapping=tokenizer.mapping, version=REDACTION_VERSION)


def redact_many(texts: list[str]) -> tuple[list[str], dict[str, str]]:
    """Redact any number of texts of one item with shared tokens (e.g. a pair plus its
    judges' rationales, which quote it)."""
    tokenizer = _Tokenizer()
    return [tokenizer.redact(t) for t in texts], tokenizer.mapping
