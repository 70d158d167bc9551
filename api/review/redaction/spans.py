"""Findings of the redaction recognisers and how overlapping ones are resolved.

Every recogniser module (``redaction.secrets``, ``redaction.contact``, ``redaction.payment``,
``redaction.address``, ``redaction.names``) yields :class:`Entity` spans; :func:`resolve` keeps
one per stretch of text.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

__all__ = ["HAS_DIGIT", "PRIORITY", "Entity", "from_match", "non_overlapping", "resolve"]

# Most recognisers need a digit; a text without one skips them (a regex search is much faster
# than a generator over the characters of a long text).
HAS_DIGIT = re.compile(r"\d")

# Higher wins when two findings overlap (a key block contains base64 that looks like a
# secret; an email's local part can look like a name; an IBAN's digit groups look like a
# phone or card number; a street name can hold a person's name).
PRIORITY = {
    "PRIVATE_KEY": 100,
    "AWS_KEY": 90,
    "GITHUB_TOKEN": 90,
    "SLACK_TOKEN": 90,
    "API_KEY": 90,
    "BEARER_TOKEN": 85,
    "SECRET": 80,
    "EMAIL": 70,
    "MAC_ADDRESS": 68,
    "CRYPTO_ADDRESS": 67,
    "IBAN": 65,
    "PASSPORT": 64,
    "NATIONAL_ID": 63,
    "BANK_ACCOUNT": 62,
    "CREDIT_CARD": 60,
    "IP_ADDRESS": 55,
    "STREET_ADDRESS": 52,
    "DATE_OF_BIRTH": 51,
    "PHONE": 50,
    "PERSON": 10,
}


@dataclass(frozen=True)
class Entity:
    """One finding: ``text[start:end]`` is ``value``; ``key`` identifies the same value
    written differently (phone digits, lower-cased email) so both get one token."""

    start: int
    end: int
    type: str
    value: str
    key: str


def from_match(m: re.Match[str], kind: str, key: str | None = None, group: int = 0) -> Entity:
    """The entity for ``m`` (or one of its groups); ``key`` is the normalised value."""
    value = m.group(group)
    norm = key if key is not None else value
    return Entity(m.start(group), m.end(group), kind, value, f"{kind}:{norm}")


def resolve(found: list[Entity]) -> list[Entity]:
    """Overlaps resolved (higher priority, then longer, then earlier wins), sorted by start."""
    found.sort(key=lambda e: (-PRIORITY[e.type], -(e.end - e.start), e.start))
    return non_overlapping(found)


def non_overlapping(ranked: list[Entity], taken: list[Entity] | None = None) -> list[Entity]:
    """Greedy by rank: keep each entity that overlaps nothing kept (nor ``taken``), sorted by
    start. Kept spans are disjoint, so one bisect finds the only neighbours that matter
    (a pairwise check was quadratic on texts with thousands of findings)."""
    kept: list[Entity] = sorted(taken or [], key=lambda e: e.start)
    starts = [e.start for e in kept]
    for e in ranked:
        i = bisect.bisect_right(starts, e.start)
        if i > 0 and kept[i - 1].end > e.start:
            continue
        if i < len(kept) and kept[i].start < e.end:
            continue
        starts.insert(i, e.start)
        kept.insert(i, e)
    return kept
