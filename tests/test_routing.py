"""The routing function alone: labels, flags and reasons."""

from __future__ import annotations

from dataclasses import dataclass

from api.routing.route import JudgmentView, route, summarize


def views(*items: tuple[str, str, str]) -> list[JudgmentView]:
    return [JudgmentView(judge, order, verdict) for judge, order, verdict in items]


@dataclass
class OpenGate:
    threshold: float
    open: bool = True

    def accepts(self, confidence: float) -> bool:
        return confidence >= self.threshold


def test_unanimous_panel_is_reviewed_while_the_gate_is_closed() -> None:
    d = route(views(("g", "ab", "A>>B"), ("g", "ba", "A>>B"), ("h", "ab", "A>B"), ("h", "ba", "A>>B")))
    assert (d.label, d.chosen, d.confidence, d.route, d.reasons) == (
        "A>>B",
        "A",
        1.0,
        "review",
        ["gate_closed"],
    )


def test_open_gate_auto_accepts_only_above_threshold_and_without_flags() -> None:
    clean = views(("g", "ab", "B>A"), ("g", "ba", "B>A"))
    assert route(clean, gate=OpenGate(0.8), calibrated_confidence=0.9).route == "auto_accept"
    low = route(clean, gate=OpenGate(0.95), calibrated_confidence=0.9)
    assert low.route == "review" and low.reasons == ["low_confidence"]
    audited = route(clean, gate=OpenGate(0.8), calibrated_confidence=0.9, audit=True)
    assert audited.route == "review" and audited.reasons == ["audit"]
    flagged = route(clean, gate=OpenGate(0.8), calibrated_confidence=0.9, precheck_safety=True)
    assert flagged.route == "review" and flagged.reasons == ["safety_flag"]
    assert route(clean, gate=OpenGate(0.8, open=False), calibrated_confidence=0.99).reasons == ["gate_closed"]


def test_order_sensitive_and_disagreeing_judges() -> None:
    d = route(views(("g", "ab", "A>B"), ("g", "ba", "B>A"), ("h", "ab", "A>B"), ("h", "ba", "A>B")))
    assert "order_sensitive" in d.reasons and "judges_disagree" not in d.reasons
    assert d.chosen == "A" and d.confidence == 0.75
    d = route(views(("g", "ab", "A>B"), ("g", "ba", "A>B"), ("h", "ab", "B>A"), ("h", "ba", "B>A")))
    assert "judges_disagree" in d.reasons and "low_confidence" in d.reasons and d.label == "tie"


def test_failures_invalid_and_both_bad() -> None:
    failed = [JudgmentView("g", "ab", None, error="RateLimitError"), JudgmentView("g", "ba", "A>B")]
    assert "judge_failed" in route(failed).reasons
    invalid = views(("g", "ab", "invalid"), ("g", "ba", "invalid"))
    d = route(invalid)
    assert d.label is None and "judge_failed" in d.reasons
    bad = [JudgmentView("g", o, "tie", both_bad=True) for o in ("ab", "ba")]
    assert route(bad).route == "incident"
    assert summarize(bad).both_bad
