"""The verdict vocabulary shared by every stage.

A verdict is one of five directional labels, or ``invalid`` when a judge's answer could
not be read. ``both_bad`` and ``safety_flag`` are separate booleans, never verdicts.
Verdicts are stored in terms of the ORIGINAL response_a / response_b; judges see the two
responses in a display order ("ab" or "ba") and answer positionally (first / second).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Literal, cast

Verdict = Literal["A>>B", "A>B", "tie", "B>A", "B>>A", "invalid"]
Order = Literal["ab", "ba"]
Side = Literal["A", "B", "tie"]

VERDICTS: tuple[str, ...] = ("A>>B", "A>B", "tie", "B>A", "B>>A")
INVALID = "invalid"
ORDERS: tuple[str, ...] = ("ab", "ba")
# The three-way labels (gold files, human shorthand, panel and calibrator sides), in ordinal
# order: ordinal agreement statistics and confusion matrices rely on "tie" sitting between.
SIDES: tuple[str, str, str] = ("A", "tie", "B")

# Signed strength: positive prefers A, negative prefers B.
STRENGTH: dict[str, int] = {"A>>B": 2, "A>B": 1, "tie": 0, "B>A": -1, "B>>A": -2}
_FROM_STRENGTH = {v: k for k, v in STRENGTH.items()}

# Mirror image of a verdict: what a verdict about (first, second) means about (second, first).
_SWAP = {"A>>B": "B>>A", "A>B": "B>A", "tie": "tie", "B>A": "A>B", "B>>A": "A>>B", INVALID: INVALID}


# Which display orders a judge is asked in (its config's "orders"): both, one fixed order,
# one order per pair drawn from a hash of the pair and judge (position bias then averages out
# over pairs at half the calls), or -- replay judges only -- the orders its file recorded for
# the pair (a recorded judge shown one order per pair, not always the same one).
OrderSetting = Literal["both", "ab", "ba", "random", "recorded"]
ORDER_SETTINGS: tuple[str, ...] = ("both", "ab", "ba", "random", "recorded")


def orders_to_ask(
    setting: str, judge: str, content_hash: str, recorded: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The display orders a judge configured with ``setting`` is asked on one pair.

    ``recorded``: for ``"recorded"``, the orders the judge's file holds for this pair; a pair
    it holds none for is asked in "ab", which then fails like any missing judgment.
    """
    if setting == "both":
        return ORDERS
    if setting == "recorded":
        return tuple(o for o in ORDERS if o in recorded) or ("ab",)
    if setting in ORDERS:
        return (setting,)
    if setting == "random":
        draw = hashlib.blake2b(f"{judge}\x1f{content_hash}".encode(), digest_size=1).digest()[0]
        return (ORDERS[draw & 1],)
    raise ValueError(f"orders must be one of {ORDER_SETTINGS}, got {setting!r}")


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


def strength(verdict: str | None) -> int | None:
    """Signed strength (+2 .. -2), or None for ``invalid`` or no verdict."""
    return STRENGTH.get(verdict) if verdict is not None else None


def from_strength(value: int) -> str:
    return _FROM_STRENGTH[max(-2, min(2, int(value)))]


def side(verdict: str | None) -> Side | None:
    """The direction of a five-point verdict: "A", "B", "tie"; None for ``invalid``, no verdict
    or anything else.

    Strict on purpose: a judge answers in five points, so routing treats any other string from
    a judge as unreadable. Labels that may be written as sides go through :func:`to_side`.
    """
    s = strength(verdict)
    if s is None:
        return None
    return "A" if s > 0 else "B" if s < 0 else "tie"


def _missing(label: object) -> bool:
    return label is None or (isinstance(label, float) and math.isnan(label))


def to_side(label: object, *, strict: bool = True) -> Side | None:
    """The side of a label in any spelling: a five-point verdict or a side ("A", "B", "tie").

    None for ``invalid``, None and NaN (a missing label or an unreadable verdict has no side).
    Any other value raises ``ValueError`` -- a typo in a label source would otherwise look like
    a judge failure -- unless ``strict=False``, which reads it as no side (for stored rows,
    where one unreadable value must not fail a whole refit or dashboard).
    """
    if _missing(label) or label == INVALID:
        return None
    if label in SIDES:
        return cast(Side, label)  # a member of SIDES
    if label in VERDICTS:
        return side(label)
    if strict:
        raise ValueError(f"unknown label {label!r}: expected one of {SIDES + VERDICTS} or {INVALID!r}")
    return None


def from_side(label: str, *, strong: bool = False) -> str:
    """A side ("A", "B", "tie") as a five-point verdict: the weak one ("A>B"), or with
    ``strong=True`` the strong one ("A>>B"). A tie is "tie" either way."""
    return {"A": "A>>B" if strong else "A>B", "B": "B>>A" if strong else "B>A", "tie": "tie"}[label]


def to_five_point(label: object) -> str:
    """Any accepted spelling as a five-point verdict: five-point verdicts and ``invalid`` are
    kept, a side becomes its weak verdict (:func:`from_side`), anything else is ``invalid``."""
    if not isinstance(label, str):
        return INVALID
    if label in STRENGTH or label == INVALID:
        return label
    if label in SIDES:
        return from_side(label)
    return INVALID


def order_flip(side_ab: str | None, side_ba: str | None) -> bool:
    """One judge's order sensitivity -- the per-judge definition every part of prelabel uses
    (the panel's is :func:`panel_order_flip`).

    A judge is *order-sensitive* on a pair when its verdicts in both display orders ("ab" and
    "ba", mapped back to the original A/B) are valid and name different sides. Sides, not
    strengths: "A>B" vs "A>>B" is consistent, "A>B" vs "tie" IS a flip. An order with no valid
    verdict (invalid, failed or never asked; pass None) makes the pair neither sensitive nor
    swap-consistent: nothing can be said about position bias from one order.

    The same rule, vectorised, gives the ``{judge}|order_sensitive`` and
    ``panel|n_order_sensitive`` features (:func:`calibration.features.build_features`);
    ``tests/test_definitions.py`` checks that they agree.

    >>> order_flip("A", "tie"), order_flip("A", "A"), order_flip("A", None)
    (True, False, False)
    """
    return side_ab is not None and side_ba is not None and side_ab != side_ba


def majority_side(sides: Iterable[str | None]) -> str | None:
    """The side most of ``sides`` name ("A", "B" or "tie"); a split top is "tie"; None if
    no side is given (Nones are skipped).

    >>> majority_side(["A", "A", "B"]), majority_side(["A", "B"]), majority_side([None])
    ('A', 'tie', None)
    """
    counts = Counter(s for s in sides if s is not None)
    if not counts:
        return None
    (top, n), *rest = counts.most_common()
    return "tie" if rest and rest[0][1] == n else str(top)


def panel_order_flip(judge_sides: Iterable[tuple[str | None, str | None]]) -> bool:
    """Order sensitivity of a panel -- the definition the hard flag ``order_sensitive`` uses.

    ``judge_sides``: one (side in "ab", side in "ba") per judge, mapped back to the original
    A/B, None where that order has no valid verdict. Among the judges valid in both orders,
    the pair is order-sensitive when the majority of the "ab" verdicts and the majority of
    the "ba" verdicts (:func:`majority_side`) name opposite sides: shown one way the panel
    picks A, shown the other way B. A panel split or tied in one order is weaker evidence,
    not a reversal: the calibrated confidence prices it. One judge's flip
    (:func:`order_flip`) is a feature, and a hard flag only for judges a project names;
    judges asked in one order cannot show a reversal and are left out.

    >>> panel_order_flip([("A", "B"), ("A", "A"), ("A", "A")])  # one judge flips, the panel holds
    False
    >>> panel_order_flip([("A", "B"), ("A", "B"), ("B", "B")])
    True
    >>> panel_order_flip([("A", "tie")]), panel_order_flip([("A", None), (None, "B")])
    (False, False)
    """
    both = [(ab, ba) for ab, ba in judge_sides if ab is not None and ba is not None]
    return {majority_side(ab for ab, _ in both), majority_side(ba for _, ba in both)} == {"A", "B"}


def order_sensitivity(rows: Iterable[tuple[str, str, str, str | None]]) -> dict[str, dict[str, float | int]]:
    """Per judge, over pairs it judged in both orders: how often the two orders disagree.

    ``rows`` are (judge, pair key, order, five-point verdict or "invalid"/None). A pair with
    both orders valid is order-sensitive or swap-consistent as :func:`order_flip` says; one
    with an invalid or failed order is neither (it is counted in ``incomplete``).
    """
    sides: dict[str, dict[str, dict[str, str | None]]] = defaultdict(lambda: defaultdict(dict))
    for judge, pair_key, order, verdict in rows:
        sides[judge][pair_key][order] = side(verdict) if verdict else None
    out: dict[str, dict[str, float | int]] = {}
    for judge in sorted(sides):
        both = [o for o in sides[judge].values() if "ab" in o and "ba" in o]
        complete = [o for o in both if o["ab"] is not None and o["ba"] is not None]
        sensitive = sum(order_flip(o["ab"], o["ba"]) for o in complete)
        n = len(both)
        out[judge] = {
            "pairs": n,
            "order_sensitive": sensitive,
            "incomplete": n - len(complete),
            "order_sensitive_rate": round(sensitive / n, 4) if n else 0.0,
            "consistent_rate": round((len(complete) - sensitive) / n, 4) if n else 0.0,
        }
    return out
