"""What the worker asks of a pair: the judges, stage by stage, and the display orders."""

from __future__ import annotations

from api.models import Pair
from api.routing.route import FittedGate, needs_full_panel
from api.schemas import JudgeSpec, RoutingSettings
from calibration.cascade import CascadeModel
from judge.providers import recorded_orders
from judge.verdicts import orders_to_ask


def pair_stages(
    pair: Pair,
    gate: FittedGate | None,
    version: str,
    routing: RoutingSettings,
    labelled: bool,
    panel: list[str],
) -> list[list[str]]:
    """The judges to call, stage by stage: an open cascade's stages, or the whole ``panel`` at
    once when the gate is closed or the pair's label will calibrate it."""
    staged = (
        isinstance(gate, CascadeModel)
        and gate.open
        and not labelled
        and not needs_full_panel(pair.id, version, routing)
    )
    return gate.stages if staged and isinstance(gate, CascadeModel) else [panel]


def orders_for(spec: JudgeSpec, pair: Pair) -> tuple[str, ...]:
    """The display orders ``spec`` is asked on ``pair`` (a replay judge set to "recorded":
    the orders its file holds for the pair)."""
    recorded: tuple[str, ...] = ()
    if spec.orders == "recorded":
        texts = (pair.prompt, pair.response_a, pair.response_b)
        recorded = recorded_orders(spec.model.partition("/")[2], spec.api_base or "", *texts)
    return orders_to_ask(spec.orders, spec.model, pair.content_hash, recorded)
