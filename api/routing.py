"""Routing: one small pure function from a pair's judgments (and the gate) to a decision.

No session, no I/O: the worker gathers the inputs, calls :func:`route`, stores the result.

>>> from api.routing import JudgmentView, route
>>> views = [JudgmentView("j1", "ab", "A>B"), JudgmentView("j1", "ba", "A>B")]
>>> route(views).route, route(views).reasons
('review', ['gate_closed'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from judge.verdicts import from_side, side, strength

REASONS = (
    "judge_failed",
    "order_sensitive",
    "judges_disagree",
    "low_confidence",
    "safety_flag",
    "both_bad",
    "gate_closed",
    "audit",
)


@dataclass(frozen=True)
class JudgmentView:
    """What routing needs of one judgment (verdict in original A/B terms)."""

    judge: str
    order: str
    verdict: str | None
    both_bad: bool = False
    safety_flag: bool = False
    confidence: float | None = None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None and self.verdict is not None and side(self.verdict) is not None


@dataclass
class PanelSummary:
    """Panel majority and the flags routing reads."""

    label: str | None
    chosen: str | None
    confidence: float | None
    n_valid: int
    n_failed: int
    order_sensitive_judges: list[str] = field(default_factory=list)
    judges_disagree: bool = False
    both_bad: bool = False
    safety_flag: bool = False


@dataclass
class RouteDecision:
    label: str | None
    chosen: str | None
    confidence: float | None
    route: str
    reasons: list[str]
    # The hard reasons among ``reasons``: no calibration or further judge can undo them.
    hard: list[str] = field(default_factory=list)
    # Cascade only: the stage that decided, and the stage still to judge when the decision is
    # provisional (the calibrated confidence asks for the next, costlier judges).
    stage: int | None = None
    next_stage: int | None = None


class Gate(Protocol):
    """What routing asks of a calibration gate (see calibration/)."""

    open: bool

    def accepts(self, confidence: float) -> bool: ...


def summarize(judgments: Sequence[JudgmentView]) -> PanelSummary:
    """Majority side over valid verdicts; strength strong when most of its votes are strong."""
    valid = [j for j in judgments if j.valid]
    failed = [j for j in judgments if j.error is not None]
    by_judge: dict[str, dict[str, str]] = {}
    for j in valid:
        by_judge.setdefault(j.judge, {})[j.order] = side(j.verdict)  # type: ignore[arg-type]
    order_sensitive = sorted(
        name for name, sides in by_judge.items() if len(sides) == 2 and sides["ab"] != sides["ba"]
    )
    # A judge's own view counts for panel agreement only when its two orders agree.
    judge_sides = {next(iter(set(s.values()))) for s in by_judge.values() if len(set(s.values())) == 1}
    both_bad_votes = sum(j.both_bad for j in valid)
    summary = PanelSummary(
        label=None,
        chosen=None,
        confidence=None,
        n_valid=len(valid),
        n_failed=len(failed),
        order_sensitive_judges=order_sensitive,
        judges_disagree=len(judge_sides) > 1,
        both_bad=bool(valid) and both_bad_votes * 2 > len(valid),
        safety_flag=any(j.safety_flag for j in valid),
    )
    if not valid:
        return summary
    votes = Counter(side(j.verdict) for j in valid)  # type: ignore[arg-type]
    (top, top_n), *rest = votes.most_common()
    if rest and rest[0][1] == top_n:
        top = "tie"  # a split panel is no majority for either side
    summary.chosen = top
    summary.confidence = votes.get(top, 0) / len(valid)
    strong = sum(1 for j in valid if side(j.verdict) == top and abs(strength(j.verdict) or 0) == 2)  # type: ignore[arg-type]
    summary.label = (
        from_side(top)
        if top == "tie" or strong * 2 <= votes.get(top, 0)
        else ("A>>B" if top == "A" else "B>>A")
    )
    return summary


def hard_reasons(
    summary: PanelSummary,
    *,
    precheck_safety: bool = False,
    order_sensitive_judges: Sequence[str] | None = None,
) -> list[str]:
    """Reasons no calibration can override: failure, order sensitivity, safety.

    ``order_sensitive_judges`` limits which judges' flips count (None: any judge).
    """
    hard: list[str] = []
    if summary.n_failed or summary.n_valid == 0:
        hard.append("judge_failed")
    flipped = summary.order_sensitive_judges
    if order_sensitive_judges is not None:
        flipped = [j for j in flipped if j in set(order_sensitive_judges)]
    if flipped:
        hard.append("order_sensitive")
    if precheck_safety or summary.safety_flag:
        hard.append("safety_flag")
    return hard


def route(
    judgments: Sequence[JudgmentView],
    *,
    min_confidence: float = 0.75,
    precheck_safety: bool = False,
    gate: Gate | None = None,
    calibrated_confidence: float | None = None,
    audit: bool = False,
    order_sensitive_judges: Sequence[str] | None = None,
) -> RouteDecision:
    """Decide auto_accept / review / incident, with every reason that applies.

    Hard flags (judge failure, order sensitivity, safety, both-bad) always send a pair to a
    human. Before calibration (gate closed) nothing is auto-accepted and the panel's own
    signals (judges disagree, provisional confidence below ``min_confidence``) are reported.
    With the gate open the calibrated confidence decides: ``low_confidence`` means below the
    gate's threshold; panel disagreement is already priced into that confidence, so it is
    only reported for pairs that go to review anyway. ``audit`` (a random draw made by the
    caller) diverts a would-be auto-accept to review.
    """
    s = summarize(judgments)
    hard = hard_reasons(s, precheck_safety=precheck_safety, order_sensitive_judges=order_sensitive_judges)
    informational = ["judges_disagree"] if s.judges_disagree else []
    if s.order_sensitive_judges and "order_sensitive" not in hard:
        informational.append("order_sensitive")  # a flip of a judge the project does not count as hard
    gate_open = gate is not None and gate.open and calibrated_confidence is not None
    confidence = calibrated_confidence if gate_open else s.confidence
    if s.both_bad:
        return RouteDecision(
            s.label,
            s.chosen,
            confidence,
            "incident",
            [*hard, "both_bad", *informational],
            hard=[*hard, "both_bad"],
        )
    if not gate_open:
        low = ["low_confidence"] if s.confidence is not None and s.confidence < min_confidence else []
        return RouteDecision(
            s.label, s.chosen, confidence, "review", [*hard, *informational, *low, "gate_closed"], hard=hard
        )
    assert gate is not None and calibrated_confidence is not None
    low = [] if gate.accepts(calibrated_confidence) else ["low_confidence"]
    if hard or low:
        return RouteDecision(
            s.label, s.chosen, confidence, "review", [*hard, *informational, *low], hard=hard
        )
    if audit:
        return RouteDecision(s.label, s.chosen, confidence, "review", ["audit"])
    return RouteDecision(s.label, s.chosen, confidence, "auto_accept", [])
