"""Routing: pure functions from a pair's judgments (and the gate) to a decision.

No session, no I/O: the worker and re-routing gather the inputs, call :func:`route_many`
(or :func:`route_pair` for one pair), and hand the decisions to ``api/routing/decisions.py``.

* :func:`route` decides one pair from its verdicts: hard flags (judge failure, order
  sensitivity, safety, suspected prompt injection, both-bad) always go to a human; with the
  gate open the calibrated confidence decides; otherwise the panel's own signals are reported.
* :func:`route_many` routes pairs under a fitted gate (single panel or cascade, stage by
  stage), draws the audits and the calibration sample.

>>> from api.routing.route import JudgmentView, route
>>> views = [JudgmentView("j1", "ab", "A>B"), JudgmentView("j1", "ba", "A>B")]
>>> route(views).route, route(views).reasons
('review', ['gate_closed'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from api.schemas import AspectSettings, RoutingSettings
from api.vocab import Reason, Route, unit_draw
from calibration.cascade import CascadeModel
from calibration.features import build_features, judgments_table
from calibration.gate import GateModel
from judge.verdicts import INVALID, from_side, majority_side, order_flip, panel_order_flip, side, strength


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
    # Per-aspect verdicts (original A/B terms) of a project with aspects; None without.
    aspects: dict[str, str] | None = None

    @property
    def valid(self) -> bool:
        return self.error is None and self.verdict is not None and side(self.verdict) is not None

    def on_aspect(self, name: str) -> JudgmentView:
        """This judgment as a verdict on one aspect (unreadable when it holds none)."""
        verdict = None if self.error is not None else (self.aspects or {}).get(name, INVALID)
        return JudgmentView(self.judge, self.order, verdict, confidence=None, error=self.error)


@dataclass(frozen=True)
class AspectOutcome:
    """The panel on one aspect: its label and side, and why it does not clear (None: it does).

    An aspect clears when every judge call gave a readable verdict on it and all of them name
    the same side, in every order asked: no judge flips with the order, none disagrees. The
    rule is strict because no calibrator prices an aspect's evidence at routing time; the
    overall gate is fitted with it (api/calibrate/refits.py's never_accept_flags), so the
    overall guarantee covers exactly what is accepted.
    """

    label: str | None
    chosen: str | None
    unclear: str | None = None

    def stored(self) -> dict[str, str | None]:
        return {"label": self.label, "chosen": self.chosen, "unclear": self.unclear}


def aspect_outcome(judgments: Sequence[JudgmentView], name: str) -> AspectOutcome:
    """The panel's outcome on aspect ``name`` (see :class:`AspectOutcome`)."""
    views = [j.on_aspect(name) for j in judgments]
    s = summarize(views)
    sides = {side(v.verdict) for v in views if v.valid}
    unclear = None
    if not views or any(not v.valid for v in views):
        unclear = "a judge gave no readable verdict on it"
    elif s.order_sensitive_judges:
        flipped = ", ".join(s.order_sensitive_judges)
        unclear = f"order-sensitive: {flipped} changed side when the responses were swapped"
    elif len(sides) > 1:
        unclear = "the judges name different sides"
    return AspectOutcome(s.label, s.chosen, unclear)


@dataclass
class PanelSummary:
    """Panel majority and the flags routing reads."""

    label: str | None
    chosen: str | None
    confidence: float | None
    n_valid: int
    n_failed: int
    # Judges whose own two orders name different sides (judge.verdicts.order_flip).
    order_sensitive_judges: list[str] = field(default_factory=list)
    # The panel's majority reverses with the order shown (judge.verdicts.panel_order_flip).
    panel_order_sensitive: bool = False
    judges_disagree: bool = False
    both_bad: bool = False
    safety_flag: bool = False
    # Projects with aspects: the panel on each aspect, and the required ones that do not clear.
    aspects: dict[str, AspectOutcome] = field(default_factory=dict)
    aspects_unclear: list[str] = field(default_factory=list)


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
    # The hard flags are ones more judges may clear (routing.more_judges_may_clear): a
    # cascade asks its next stage instead of stopping.
    escalate: bool = False
    # Projects with aspects: the panel's outcome per aspect (Decision.aspects stores it).
    aspects: dict[str, AspectOutcome] | None = None


class Gate(Protocol):
    """What routing asks of a calibration gate (see calibration/)."""

    open: bool

    def accepts(self, confidence: float) -> bool: ...


def summarize(judgments: Sequence[JudgmentView], aspects: AspectSettings | None = None) -> PanelSummary:
    """Majority side over valid verdicts; strength strong when most of its votes are strong.

    A judge is order-sensitive as :func:`judge.verdicts.order_flip` defines it, the panel as
    :func:`judge.verdicts.panel_order_flip` does. ``aspects``: the project's, each summarized
    by :func:`aspect_outcome`; a required one that does not clear is in ``aspects_unclear``.
    """
    valid = [j for j in judgments if j.valid]
    failed = [j for j in judgments if j.error is not None]
    by_judge: dict[str, dict[str, str | None]] = {}
    for j in valid:
        by_judge.setdefault(j.judge, {})[j.order] = side(j.verdict)
    order_sensitive = sorted(name for name, s in by_judge.items() if order_flip(s.get("ab"), s.get("ba")))
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
        panel_order_sensitive=panel_order_flip((s.get("ab"), s.get("ba")) for s in by_judge.values()),
        judges_disagree=len(judge_sides) > 1,
        both_bad=bool(valid) and both_bad_votes * 2 > len(valid),
        safety_flag=any(j.safety_flag for j in valid),
    )
    if aspects is not None and aspects.aspects:
        summary.aspects = {name: aspect_outcome(judgments, name) for name in aspects.names}
        summary.aspects_unclear = [n for n in aspects.required if summary.aspects[n].unclear]
    if not valid:
        return summary
    votes: Counter[str | None] = Counter(side(j.verdict) for j in valid)
    top = majority_side(votes.elements())  # a split panel is no majority for either side: "tie"
    assert top is not None
    summary.chosen = top
    summary.confidence = votes.get(top, 0) / len(valid)
    strong = sum(1 for j in valid if side(j.verdict) == top and abs(strength(j.verdict) or 0) == 2)
    summary.label = from_side(top, strong=strong * 2 > votes.get(top, 0))
    return summary


def hard_reasons(
    summary: PanelSummary,
    *,
    precheck_safety: bool = False,
    precheck_injection: bool = False,
    order_sensitive_judges: Sequence[str] | None = None,
) -> list[str]:
    """Reasons no calibration can override: failure, order sensitivity, safety, and text in a
    response addressed to the judge (``judge.injection``: a judge that obeys it does so in both
    orders, so nothing else would show).

    Order sensitivity is hard when the panel reverses with the order shown, or when one of
    ``order_sensitive_judges`` (judges the project trusts to be order-stable) flips.
    """
    hard: list[str] = []
    if summary.n_failed or summary.n_valid == 0:
        hard.append(Reason.JUDGE_FAILED)
    if summary.panel_order_sensitive or _named_flips(summary, order_sensitive_judges):
        hard.append(Reason.ORDER_SENSITIVE)
    if precheck_safety or summary.safety_flag:
        hard.append(Reason.SAFETY_FLAG)
    if precheck_injection:
        hard.append(Reason.INJECTION_SUSPECTED)
    if summary.aspects_unclear:
        hard.append(Reason.ASPECT_UNCLEAR)
    return hard


def more_judges_may_clear(
    summary: PanelSummary, hard: Sequence[str], order_sensitive_judges: Sequence[str] | None = None
) -> bool:
    """Whether later judges (a cascade's next stage) can undo the hard flags: only the
    panel's reversal can be outvoted; failures, safety, injection, both-bad and a named judge's
    flip stay."""
    return (
        list(hard) == [Reason.ORDER_SENSITIVE]
        and not summary.both_bad
        and not _named_flips(summary, order_sensitive_judges)
    )


def _named_flips(summary: PanelSummary, order_sensitive_judges: Sequence[str] | None) -> list[str]:
    named = set(order_sensitive_judges or ())
    return [j for j in summary.order_sensitive_judges if j in named]


def route(
    judgments: Sequence[JudgmentView],
    *,
    min_confidence: float = 0.75,
    precheck_safety: bool = False,
    precheck_injection: bool = False,
    gate: FittedGate | None = None,
    calibrated_confidence: float | None = None,
    audit: bool = False,
    order_sensitive_judges: Sequence[str] | None = None,
    aspects: AspectSettings | None = None,
) -> RouteDecision:
    """Decide auto_accept / review / incident, with every reason that applies.

    Hard flags (judge failure, order sensitivity, safety, injection, both-bad) always send a
    pair to a human. Before calibration (gate closed) nothing is auto-accepted and the panel's own
    signals (judges disagree, provisional confidence below ``min_confidence``) are reported.
    With the gate open the calibrated confidence decides: ``low_confidence`` means below the
    gate's threshold; panel disagreement is already priced into that confidence, so it is
    only reported for pairs that go to review anyway. ``audit`` (a random draw made by the
    caller) diverts a would-be auto-accept to review. ``aspects``: the project's; a required
    aspect that does not clear (:func:`aspect_outcome`) is the hard reason ``aspect_unclear``.
    """
    summary = summarize(judgments, aspects)
    decision = _route_summary(
        summary,
        min_confidence=min_confidence,
        precheck_safety=precheck_safety,
        precheck_injection=precheck_injection,
        gate=gate,
        calibrated_confidence=calibrated_confidence,
        audit=audit,
        order_sensitive_judges=order_sensitive_judges,
    )
    decision.aspects = summary.aspects or None
    return decision


def _route_summary(
    s: PanelSummary,
    *,
    min_confidence: float,
    precheck_safety: bool,
    precheck_injection: bool,
    gate: FittedGate | None,
    calibrated_confidence: float | None,
    audit: bool,
    order_sensitive_judges: Sequence[str] | None,
) -> RouteDecision:
    """:func:`route` on a panel summary."""
    hard = hard_reasons(
        s,
        precheck_safety=precheck_safety,
        precheck_injection=precheck_injection,
        order_sensitive_judges=order_sensitive_judges,
    )
    informational = [Reason.JUDGES_DISAGREE] if s.judges_disagree else []
    if s.order_sensitive_judges and Reason.ORDER_SENSITIVE not in hard:
        informational.append(Reason.ORDER_SENSITIVE)  # a flip of a judge the project does not count as hard
    gate_open = gate is not None and gate.open and calibrated_confidence is not None
    confidence = calibrated_confidence if gate_open else s.confidence
    if s.both_bad:
        return RouteDecision(
            s.label,
            s.chosen,
            confidence,
            Route.INCIDENT,
            [*hard, Reason.BOTH_BAD, *informational],
            hard=[*hard, Reason.BOTH_BAD],
        )
    if not gate_open:
        low = [Reason.LOW_CONFIDENCE] if s.confidence is not None and s.confidence < min_confidence else []
        return RouteDecision(
            s.label,
            s.chosen,
            confidence,
            Route.REVIEW,
            [*hard, *informational, *low, Reason.GATE_CLOSED],
            hard=hard,
        )
    assert gate is not None and calibrated_confidence is not None
    low = [] if gate.accepts(calibrated_confidence) else [Reason.LOW_CONFIDENCE]
    if hard or low:
        return RouteDecision(
            s.label,
            s.chosen,
            confidence,
            Route.REVIEW,
            [*hard, *informational, *low],
            hard=hard,
            escalate=more_judges_may_clear(s, hard, order_sensitive_judges),
        )
    if audit:
        return RouteDecision(s.label, s.chosen, confidence, Route.REVIEW, [Reason.AUDIT])
    return RouteDecision(s.label, s.chosen, confidence, Route.AUTO_ACCEPT, [])


# A fitted gate as stored in a calibration version: one panel, or a cascade of stages.
FittedGate = GateModel | CascadeModel


# --- routing many pairs under a fitted gate ----------------------------------------------


def audit_draw(pair_id: int, version: str, rate: float) -> bool:
    """A reproducible uniform draw per (pair, version): the same pair is audited on re-routing."""
    return unit_draw(f"audit|{pair_id}|{version}") < rate


def in_calibration_sample(pid: int, routing: RoutingSettings) -> bool:
    """Drawn once per pair (not per version), so the sample stays the same sample."""
    return audit_draw(pid, "calibration-sample", routing.calibration_sample_rate)


def needs_full_panel(pid: int, version: str, routing: RoutingSettings) -> bool:
    """Pairs whose human label will calibrate the gate are judged by every stage of a cascade.

    The calibration sample and the audits are drawn before judging (both draws are hashes of
    the pair id), so their labels come with the verdicts the cascade fit needs.
    """
    return audit_draw(pid, version, routing.audit_rate) or in_calibration_sample(pid, routing)


@dataclass
class GatedInput:
    views: list[JudgmentView]
    precheck_safety: bool
    precheck_injection: bool = False


def views_frame(views: dict[int, list[JudgmentView]]) -> pd.DataFrame:
    """The long table the calibration code reads, from judgments already in hand."""
    return judgments_table(
        (pid, v.judge, v.order, v.verdict, v.confidence, v.error is not None)
        for pid, pair_views in views.items()
        for v in pair_views
    )


def route_many(
    pair_ids: list[int],
    inputs: dict[int, GatedInput],
    judgments: pd.DataFrame | None,
    gate: FittedGate | None,
    version: str,
    routing: RoutingSettings,
    aspects: AspectSettings | None = None,
) -> dict[int, RouteDecision]:
    """Route pairs under ``gate``: calibrated confidence and side when the gate is open.

    Under an open cascade a pair is routed stage by stage on the verdicts of stages <= k; a
    pair whose next stage is needed but not judged yet gets ``next_stage`` set (provisional).
    """
    if isinstance(gate, CascadeModel) and gate.open and judgments is not None and len(judgments):
        return _route_cascade(pair_ids, inputs, judgments, gate, version, routing, aspects)
    confidence: dict[int, float] = {}
    sides: dict[int, str] = {}
    if isinstance(gate, GateModel) and gate.open and judgments is not None and len(judgments):
        features = build_features(judgments, judges=gate.judges)
        confidence, sides = _by_pair(
            features.pair_ids, gate.confidence(features), gate.predict_side(features)
        )
    out: dict[int, RouteDecision] = {}
    for pid in pair_ids:
        decision = _route_one(
            pid, inputs[pid].views, inputs[pid], gate, confidence.get(pid), version, routing, aspects
        )
        out[pid] = _finish(pid, decision, sides.get(pid), routing)
    return out


def _by_pair(pair_ids: np.ndarray, confidence: np.ndarray, sides: np.ndarray) -> tuple[dict, dict]:
    ids = [int(pid) for pid in pair_ids.tolist()]
    return dict(zip(ids, map(float, confidence), strict=True)), dict(zip(ids, map(str, sides), strict=True))


def _route_one(
    pid: int,
    views: list[JudgmentView],
    item: GatedInput,
    gate: FittedGate | None,
    confidence: float | None,
    version: str,
    routing: RoutingSettings,
    aspects: AspectSettings | None = None,
) -> RouteDecision:
    return route(
        views,
        min_confidence=routing.min_confidence,
        precheck_safety=item.precheck_safety,
        precheck_injection=item.precheck_injection,
        gate=gate,
        calibrated_confidence=confidence,
        audit=audit_draw(pid, version, routing.audit_rate),
        order_sensitive_judges=routing.order_sensitive_judges,
        aspects=aspects,
    )


def _route_cascade(
    pair_ids: list[int],
    inputs: dict[int, GatedInput],
    judgments: pd.DataFrame,
    cascade: CascadeModel,
    version: str,
    routing: RoutingSettings,
    aspects: AspectSettings | None = None,
) -> dict[int, RouteDecision]:
    """Stage k sees the verdicts of stages <= k and its own calibrator, as in ``fit_cascade``.

    A stage ends the cascade with an acceptance, an audit, an incident or a hard flag no
    later judge can undo; a low confidence or the panel's order reversal (which more judges
    may outvote) escalates to the next stage, and after the last stage it is a review. This
    is the rule ``fit_cascade`` replays on the calibration labels, so the guarantee covers
    what is accepted here.
    """
    stages = range(len(cascade.stages))
    stage_judges = [set(cascade.stage_judges(k)) for k in stages]
    scores: dict[int, tuple[dict[int, float], dict[int, str]]] = {}

    def stage_scores(k: int) -> tuple[dict[int, float], dict[int, str]]:
        # Built when a pair first reaches stage k: one pair routed as its verdicts come in
        # rarely needs the later stages' features.
        if k not in scores:
            X = (features := build_features(judgments, judges=cascade.stage_judges(k))).X
            scores[k] = _by_pair(features.pair_ids, cascade.confidence(k, X), cascade.predict_side(k, X))
        return scores[k]

    out: dict[int, RouteDecision] = {}
    for pid in pair_ids:
        item = inputs[pid]
        judged = {v.judge for v in item.views}
        decision: RouteDecision | None = None
        side_k: str | None = None
        for k in stages:
            # A stage is judged once each of its judges answered (in the orders it is asked in:
            # the worker calls a stage's judges in all their orders at once).
            if not stage_judges[k] <= judged:
                if decision is None:  # nothing judged yet: a provisional review until stage 0 is in
                    decision = RouteDecision(None, None, None, Route.REVIEW, [Reason.GATE_CLOSED])
                decision.next_stage = k
                break
            confidence, sides = stage_scores(k)
            views = [v for v in item.views if v.judge in stage_judges[k]]
            decision = _route_one(pid, views, item, cascade, confidence.get(pid), version, routing, aspects)
            decision.stage, side_k = k, sides.get(pid)
            if decision.route != Route.REVIEW or not (
                decision.escalate or (not decision.hard and Reason.LOW_CONFIDENCE in decision.reasons)
            ):
                break
        assert decision is not None
        out[pid] = _finish(pid, decision, side_k, routing)
    return out


def _finish(
    pid: int, decision: RouteDecision, calibrated_side: str | None, routing: RoutingSettings
) -> RouteDecision:
    if calibrated_side is not None and (
        decision.route == Route.AUTO_ACCEPT or Reason.AUDIT in decision.reasons
    ):
        # What is auto-accepted is the calibrator's side: that is what the guarantee covers.
        decision.chosen = calibrated_side
        if decision.label is None or side(decision.label) != decision.chosen:
            decision.label = from_side(decision.chosen)
    if decision.route != Route.INCIDENT and in_calibration_sample(pid, routing):
        decision.route = Route.REVIEW
        decision.reasons = [*decision.reasons, Reason.CALIBRATION_SAMPLE]
    return decision


def route_pair(
    pair_id: int,
    views: list[JudgmentView],
    precheck_safety: bool,
    gate: FittedGate | None,
    version: str,
    routing: RoutingSettings,
    *,
    precheck_injection: bool = False,
    aspects: AspectSettings | None = None,
) -> RouteDecision:
    """Route one pair (the worker's call, as its verdicts come in)."""
    # Features are only needed for a calibrated gate.
    frame = views_frame({pair_id: views}) if gate is not None and gate.open else None
    return route_many(
        [pair_id],
        {pair_id: GatedInput(views, precheck_safety, precheck_injection)},
        frame,
        gate,
        version,
        routing,
        aspects,
    )[pair_id]
