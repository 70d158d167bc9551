"""The calibration gate: its versions and its state (the report data included)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import IsoDatetime, Public


class LabelSourceUse(Public):
    n: int
    used: bool
    why: str


class LabelSourceRow(Public):
    source: str
    n: int
    used: bool
    why: str


class CalibrationVersionPublic(Public):
    version: str | None
    created_at: IsoDatetime
    trigger: str
    state: str
    open: bool
    reason: str
    threshold: float | None
    guaranteed_agreement: float | None
    expected_coverage: float
    n_labels: int
    label_sources: dict[str, LabelSourceUse]


class CascadeSummary(Public):
    stages: list[list[str]]
    full_panel_calls: int
    expected_calls_per_pair: float
    stage_accept_rates: list[float]
    judge_calls_saved: int
    saved_fraction: float | None


class GateState(Public):
    state: str = Field(description="open | closed")
    open: bool
    reason: str
    version: str | None
    threshold: float | None
    target_agreement: float
    delta: float
    agreement_lower_bound: float | None
    guaranteed_agreement: float | None
    expected_coverage: float
    n_labels: int
    n_min: int
    label_sources: list[LabelSourceRow]
    cascade: CascadeSummary | None
    warnings: list[str]


class CalibrationState(Public):
    project_id: int
    gate: GateState
    active: bool = Field(description="the gate in force is open: pairs are auto-accepted")
    versions: list[CalibrationVersionPublic]
    report: dict[str, Any] = Field(description="the report's data (what report.html draws)")
