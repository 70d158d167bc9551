"""The verdict vocabulary shared by every stage.

A verdict is one of five directional labels, or ``invalid`` when a judge's answer could
not be read. ``both_bad`` and ``safety_flag`` are separate booleans, never verdicts.
Verdicts are stored in terms of the ORIGINAL response_a / response_b; judges see the two
responses in a display order ("ab" or "ba") and answer positionally (first / second).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

Verdict = Literal["A>>B", "A>B", "tie", "B>A", "B>>A", "invalid"]
Order = Literal["ab", "ba"]

VERDICTS: tuple[str, ...] = ("A>>B", "A>B", "tie", "B>A", "B>>A")
INVALID = "invalid"
ORDERS: tuple[str, ...] = ("ab", "ba")

# Signed strength: positive prefers A, negative prefers B.
STRENGTH: dict[str, int] = {"A>>B": 2, "A>B": 1, "tie": 0, "B>A": -1, "B>>A": -2}
_FROM_STRENGTH = {v: k for k, v in STRENGTH.items()}

# Mirror image of a verdict: what a verdict about (first, second) means about (second, first).
_SWAP = {"A>>B": "B>>A", "A>B": "B>A", "tie": "tie", "B>A": "A>B", "B>>A": "A>>B", INVALID: INVALID}


def swap(verdict: str) -> str:
    """Mirror a verdict (A<->B). Used to map a positional verdict from order "ba" back."""
    return _SWAP[verdict]


def to_original(positional: str, order: str) -> str:
    """Map a verdict about (first shown, second shown) to one about (response_a, response_b)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    return positional if order == "ab" else swap(positional)


def to_positional(original: str, order: str) -> str:
    """Inverse of :func:`to_original` (swap is its own inverse)."""
    return to_original(original, order)


def strength(verdict: str) -> int | None:
    """Signed strength (+2 .. -2), or None for ``invalid``."""
    return STRENGTH.get(verdict)


def from_strength(value: int) -> str:
    return _FROM_STRENGTH[max(-2, min(2, int(value)))]


def side(verdict: str) -> Literal["A", "B", "tie"] | None:
    """The direction of a verdict: "A", "B", "tie", or None for ``invalid``."""
    s = STRENGTH.get(verdict)
    if s is None:
        return None
    return "A" if s > 0 else "B" if s < 0 else "tie"


def from_side(label: str) -> str:
    """A three-way label ("A", "B", "tie") as the weak five-point verdict."""
    return {"A": "A>B", "B": "B>A", "tie": "tie"}[label]


def order_sensitivity(rows: Iterable[tuple[str, str, str, str | None]]) -> dict[str, dict[str, float | int]]:
    """Per judge, over pairs it judged in both orders: how often the two orders disagree.

    ``rows`` are (judge, pair key, order, five-point verdict or "invalid"/None).
    A pair is order-sensitive for a judge when both orders gave a valid verdict and their
    directions differ; swap-consistent when both are valid and agree. A pair with an
    invalid or failed order is neither (it is counted in ``incomplete``).
    """
    sides: dict[str, dict[str, dict[str, str | None]]] = defaultdict(lambda: defaultdict(dict))
    for judge, pair_key, order, verdict in rows:
        sides[judge][pair_key][order] = side(verdict) if verdict else None
    out: dict[str, dict[str, float | int]] = {}
    for judge in sorted(sides):
        both = [o for o in sides[judge].values() if "ab" in o and "ba" in o]
        complete = [o for o in both if o["ab"] is not None and o["ba"] is not None]
        sensitive = sum(o["ab"] != o["ba"] for o in complete)
        n = len(both)
        out[judge] = {
            "pairs": n,
            "order_sensitive": sensitive,
            "incomplete": n - len(complete),
            "order_sensitive_rate": round(sensitive / n, 4) if n else 0.0,
            "consistent_rate": round((len(complete) - sensitive) / n, 4) if n else 0.0,
        }
    return out
