"""Summaries over judgments, shared by the demo, the benchmarks and the tests (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from judge.verdicts import side


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
