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

import functools
import importlib.util
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["price_per_token", "cascade_stages"]

_PRICE_FILE = "model_prices_and_context_window_backup.json"


def _price_table() -> dict[str, Any]:
    """litellm's price table: the live one once litellm is loaded (it may hold models a user
    registered), else the copy litellm ships, read without importing litellm (seconds of CPU
    that a replay-only process would spend to order its cascade)."""
    if "litellm" in sys.modules:
        prices: dict[str, Any] = sys.modules["litellm"].model_cost
        return prices
    return _shipped_prices()


@functools.cache
def _shipped_prices() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")  # locates the package; does not import it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / _PRICE_FILE
        if path.is_file():
            shipped: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return shipped
    from judge.litellm_loader import load_litellm  # a litellm without the file: ask litellm itself

    prices: dict[str, Any] = load_litellm().model_cost
    return prices


def price_per_token(model: str) -> float | None:
    """litellm's input + output price per token for ``model`` or a recognisable part of it."""
    parts = model.split("/")
    candidates = [model, *("/".join(parts[i:]) for i in range(1, len(parts))), *parts]
    table = _price_table()
    for name in candidates:
        info = table.get(name)
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
