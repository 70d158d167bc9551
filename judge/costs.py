"""What a judge costs, for ordering a cascade cheapest first.

A judge's ``cost_rank`` (set on the project) wins; otherwise litellm's price table is asked
for the model (``replay/gpt-4/vanilla_norules`` is looked up as ``gpt-4``); a judge with no
known price is put last, with the other unknown ones: calling an expensive judge early would
waste money, calling a cheap one late only wastes a little.

>>> cascade_stages([("replay/gpt-4/vanilla_norules", None), ("replay/gpt-3.5-turbo/x", None)])
[['replay/gpt-3.5-turbo/x'], ['replay/gpt-4/vanilla_norules']]
>>> cascade_stages([("mock/a", 2.0), ("mock/b", 1.0), ("mock/c", None), ("mock/d", 1.0)])
[['mock/b', 'mock/d'], ['mock/a'], ['mock/c']]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import litellm

__all__ = ["price_per_token", "cascade_stages"]


def price_per_token(model: str) -> float | None:
    """litellm's input + output price per token for ``model`` or a recognisable part of it."""
    parts = model.split("/")
    candidates = [model, *("/".join(parts[i:]) for i in range(1, len(parts))), *parts]
    for name in candidates:
        info = litellm.model_cost.get(name)
        if info and info.get("input_cost_per_token") is not None:
            return float(info["input_cost_per_token"]) + float(info.get("output_cost_per_token") or 0.0)
    return None


def cascade_stages(judges: Iterable[tuple[str, float | None]]) -> list[list[str]]:
    """Group (model, cost_rank) into stages, cheapest first; equal costs share a stage.

    Judges with a ``cost_rank`` are ordered by it and come before judges ordered by price, so
    a project that ranks some judges explicitly is not reshuffled by the price table.
    """
    keyed: dict[tuple[int, float], list[str]] = {}
    for model, rank in judges:
        if rank is not None:
            key = (0, float(rank))
        else:
            price = price_per_token(model)
            key = (1, price) if price is not None else (2, math.inf)
        keyed.setdefault(key, []).append(model)
    return [keyed[key] for key in sorted(keyed)]
