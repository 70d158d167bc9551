"""The final label of a pair: one rule, in one place.

A human answer (:func:`api.review.human_labels.human_label_per_pair`: adjudicated, aggregated
or single) beats a label the calibrated gate auto-accepted; a pair with neither has no final
label (it waits for review, or its judges failed). Results, project results and every export
read their label from :func:`final_label`, so they cannot disagree.

>>> from api.review.human_labels import HumanLabel
>>> auto = DecisionView(route="auto_accept", label="B>A", chosen="B", confidence=0.97, version="cal-2")
>>> final_label(auto, None, guarantees={"cal-2": 0.91}, judges=("j1", "j2"), prompt_version="v1").source
'auto'
>>> gold = HumanLabel(1, "A>>B", "A", None, "single", (7,), ("gold",))
>>> f = final_label(auto, gold, guarantees={"cal-2": 0.91}, judges=("j1",), prompt_version="v1")
>>> f.label, f.source, f.label_ids, f.calibration_version
('A>>B', 'human', (7,), None)
>>> review = DecisionView(route="review", label="A>B", chosen="A", confidence=0.6, version="cal-2")
>>> final_label(review, None, guarantees={}, judges=(), prompt_version="v1").label is None
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from api.review.human_labels import HumanLabel
from api.vocab import Route
from judge.verdicts import to_side

__all__ = ["DecisionView", "FinalLabel", "final_label", "final_aspects", "decision_judges", "HUMAN", "AUTO"]

HUMAN = "human"
AUTO = "auto"


@dataclass(frozen=True)
class DecisionView:
    """What :func:`final_label` needs of a pair's current decision."""

    route: str | None
    label: str | None  # the judges' five-point label
    chosen: str | None
    confidence: float | None
    version: str | None  # "cal-<n>", or "routing-v0" before any calibration
    stage: int | None = None


@dataclass(frozen=True)
class FinalLabel:
    """A pair's final label and where it came from (all None: the pair has none)."""

    label: str | None
    side: str | None
    source: str | None  # human | auto | None
    method: str | None  # the human aggregation method, or "calibrated_gate" for an auto label
    label_ids: tuple[int, ...]  # the human labels behind it
    human_sources: tuple[str, ...]  # their sources (gold, review, audit, adjudicated...)
    confidence: float | None  # the human posterior, or the gate's calibrated confidence
    calibration_version: str | None  # the version that auto-accepted it
    guaranteed_agreement: float | None  # that version's lower bound on agreement with humans
    judges: tuple[str, ...]  # the judge panel whose verdicts decided it
    prompt_version: str | None

    def provenance(self) -> dict[str, Any]:
        """The fields a result row or an export row carries as its label's provenance."""
        # Spelled out, not dataclasses.asdict: exports call this per row (asdict deep-copies).
        return {
            "label": self.label,
            "side": self.side,
            "source": self.source,
            "method": self.method,
            "label_ids": list(self.label_ids),
            "human_sources": list(self.human_sources),
            "confidence": self.confidence,
            "calibration_version": self.calibration_version,
            "guaranteed_agreement": self.guaranteed_agreement,
            "judges": list(self.judges),
            "prompt_version": self.prompt_version,
        }


NONE = FinalLabel(None, None, None, None, (), (), None, None, None, (), None)


def final_label(
    decision: DecisionView | None,
    human: HumanLabel | None,
    *,
    guarantees: Mapping[str, float | None],
    judges: Sequence[str],
    prompt_version: str | None,
) -> FinalLabel:
    """The final label of one pair: the human label if any, else the auto-accepted judge label.

    ``guarantees`` maps a calibration version name to its guaranteed agreement; ``judges`` is
    the panel that decided (:func:`decision_judges`).
    """
    if human is not None:
        return FinalLabel(
            label=human.label,
            side=human.side,
            source=HUMAN,
            method=human.method,
            label_ids=tuple(human.label_ids),
            human_sources=tuple(human.sources),
            confidence=human.posterior,
            calibration_version=None,
            guaranteed_agreement=None,
            judges=(),
            prompt_version=None,
        )
    if decision is None or decision.route != Route.AUTO_ACCEPT:
        return NONE
    side = to_side(decision.label, strict=False)
    if side is None:
        return NONE
    return FinalLabel(
        label=decision.label,
        side=side,
        source=AUTO,
        method="calibrated_gate",
        label_ids=(),
        human_sources=(),
        confidence=decision.confidence,
        calibration_version=decision.version,
        guaranteed_agreement=guarantees.get(decision.version or ""),
        judges=tuple(judges),
        prompt_version=prompt_version,
    )


def decision_judges(
    panel: Sequence[str], stages: list[list[str]] | None, stage: int | None
) -> tuple[str, ...]:
    """The judges whose verdicts a decision used: the whole panel, or a cascade's stages up to
    the one that decided.

    >>> decision_judges(["a", "b", "c"], [["a"], ["b", "c"]], 0)
    ('a',)
    >>> decision_judges(["a", "b"], None, None)
    ('a', 'b')
    """
    if not stages or stage is None:
        return tuple(panel)
    return tuple(judge for part in stages[: stage + 1] for judge in part)


def final_aspects(
    final: FinalLabel,
    decision_aspects: Mapping[str, Mapping[str, Any]] | None,
    humans: Mapping[str, HumanLabel | None],
) -> dict[str, dict[str, str | None]]:
    """Each aspect's final label (issue 23), by the same rule as the overall one: the human
    answer on the aspect (aggregated per aspect) if any, else the panel's label on it when the
    pair was auto-accepted and the aspect cleared (a required one always has), else none.

    >>> auto = FinalLabel("A>B", "A", AUTO, "calibrated_gate", (), (), 0.9, "cal-1", 0.9, (), "v1")
    >>> panel = {"helpfulness": {"label": "B>A", "chosen": "B", "unclear": None},
    ...          "honesty": {"label": "tie", "chosen": "tie", "unclear": "the judges name different sides"}}
    >>> final_aspects(auto, panel, {"helpfulness": None, "honesty": None})["helpfulness"]
    {'label': 'B>A', 'side': 'B', 'source': 'auto'}
    >>> final_aspects(auto, panel, {"helpfulness": None, "honesty": None})["honesty"]["label"] is None
    True
    """
    out: dict[str, dict[str, str | None]] = {}
    for name, human in humans.items():
        panel = (decision_aspects or {}).get(name) or {}
        if human is not None:
            out[name] = {"label": human.label, "side": human.side, "source": HUMAN}
        elif final.source == AUTO and panel.get("unclear") is None and panel.get("label") is not None:
            out[name] = {"label": panel["label"], "side": panel.get("chosen"), "source": AUTO}
        else:
            out[name] = {"label": None, "side": None, "source": None}
    return out
