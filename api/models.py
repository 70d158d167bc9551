"""Database tables and API schemas (SQLModel: base / create / public / table classes).

Tables: project, job, pair, judgment (every judge call, the call log), decision
(append-only routing history; pair.decision_id points at the current one).
Schema changes go through Alembic migrations in ``api/migrations``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- judge panel -------------------------------------------------------------------------


class JudgeSpec(BaseModel):
    """One judge of a panel: a litellm model string plus call options."""

    model_config = ConfigDict(extra="forbid")

    model: str
    # Passed to litellm as api_base: a provider URL, or for replay/ judges the recorded file.
    api_base: str | None = None
    # Ask for token logprobs (only providers that return them: OpenAI-style).
    logprobs: bool = False
    # Relative cost, used to order a cascade (cheapest first).
    cost_rank: float | None = None

    @field_validator("cost_rank")
    @classmethod
    def _cost_rank_is_a_cost(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError("cost_rank must be a finite number >= 0 (lower: called earlier in a cascade)")
        return value

    @field_validator("model")
    @classmethod
    def _model_has_provider(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("judge model must not be empty")
        return value


class RoutingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Provisional (pre-calibration) confidence under which a pair is low_confidence.
    min_confidence: float = Field(default=0.75, ge=0.0, le=1.0)
    target_agreement: float = Field(default=0.9, gt=0.0, lt=1.0)
    delta: float = Field(default=0.1, gt=0.0, lt=1.0)
    n_min: int = Field(default=100, ge=1)
    audit_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    # A random share of all pairs goes to review as a calibration sample; reviewers' labels on
    # it (source "calibration") are an unbiased sample, so they calibrate the gate.
    calibration_sample_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    refit_every: int = Field(default=50, ge=1)
    # Review: share of items whose judge pre-label the reviewer sees (automation-bias control),
    # reviewers per item, and the uncertainty weight of the hybrid active-learning priority.
    show_prelabel_rate: float = Field(default=0.3, ge=0.0, le=1.0)
    review_overlap: int = Field(default=1, ge=1, le=10)
    uncertainty_weight: float = Field(default=0.6, ge=0.0, le=1.0)
    # Judges whose AB/BA flip is a hard flag (never auto-accepted). None: every judge (strict).
    # A weak judge flips on most pairs; naming the strong judge(s) here keeps the flag
    # meaningful. The gate is fitted with the same rule, so its guarantee covers what is accepted.
    order_sensitive_judges: list[str] | None = None
    # Judge cheapest-first (stages by cost_rank, else litellm price: judge.costs) and call the
    # next stage only while the calibrated confidence is below the threshold. Takes effect
    # once the gate is open; a closed gate judges with the whole panel (it needs the data).
    cascade: bool = False


# --- project -----------------------------------------------------------------------------


class ProjectBase(SQLModel):
    name: str = Field(index=True, unique=True, min_length=1, max_length=200)
    rubric: str | None = Field(default=None, sa_column=Column(Text))
    prompt_version: str = "rubric-v1"
    # Empty responses are refused by default; some real datasets hold an empty reply as a
    # legitimate (usually losing) response, so a project may accept them.
    allow_empty_responses: bool = False


class ProjectCreate(ProjectBase):
    judges: list[JudgeSpec | str] = []
    routing: RoutingSettings = RoutingSettings()


class Project(ProjectBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    judges: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    routing: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)

    def judge_specs(self) -> list[JudgeSpec]:
        return [JudgeSpec.model_validate(j) for j in self.judges]

    def routing_settings(self) -> RoutingSettings:
        return RoutingSettings.model_validate(self.routing)

    def cascade_stages(self) -> list[list[str]] | None:
        """The panel in cascade stages (cheapest first), or None when the project has no cascade."""
        from judge.costs import cascade_stages

        if not self.routing_settings().cascade:
            return None
        return cascade_stages((spec.model, spec.cost_rank) for spec in self.judge_specs())


class ProjectPublic(ProjectBase):
    id: int
    judges: list[JudgeSpec]
    routing: RoutingSettings
    created_at: datetime


# --- job ---------------------------------------------------------------------------------


class Job(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    n_pairs: int = 0
    n_existing: int = 0
    created_at: datetime = Field(default_factory=utcnow)


# --- pair --------------------------------------------------------------------------------

PairState = Literal["pending", "judging", "done"]
Split = Literal["train", "frozen_eval"]


class PairIn(BaseModel):
    """One pair as a client posts it."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    prompt: str
    response_a: str
    response_b: str
    metadata: dict[str, Any] = {}
    split: Split = "train"


class Pair(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("project_id", "client_id", name="uq_pair_project_client"),
        Index("ix_pair_claim", "state", "lease_expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    client_id: str = Field(max_length=512)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response_a: str = Field(sa_column=Column(Text, nullable=False))
    response_b: str = Field(sa_column=Column(Text, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    split: str = "train"
    content_hash: str = Field(max_length=64, index=True)
    state: str = "pending"
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    safety_flag: bool = False
    safety_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    decision_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    judged_at: datetime | None = None


# --- judgment: one row per judge call (or cache hit) -------------------------------------


class Judgment(SQLModel, table=True):
    __table_args__ = (Index("ix_judgment_cache", "content_hash", "judge", "prompt_version", "order"),)

    id: int | None = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="pair.id", index=True)
    judge: str
    order: str
    # Five-point verdict in terms of the ORIGINAL response_a / response_b, or "invalid".
    verdict: str | None = None
    both_bad: bool = False
    safety_flag: bool = False
    confidence: float | None = None
    raw: str | None = Field(default=None, sa_column=Column(Text))
    prompt_version: str
    content_hash: str = Field(max_length=64)
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float = 0.0
    attempts: int = 1
    cached: bool = False
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)


# --- decision ----------------------------------------------------------------------------

Route = Literal["auto_accept", "review", "incident"]


class Decision(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="pair.id", index=True)
    label: str | None = None
    chosen: str | None = None
    confidence: float | None = None
    route: str
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: str
    # Cascade projects: the stage (0 = cheapest) whose verdicts decided, and the judge calls
    # (one judge, one order) the pair did not need against the full panel.
    stage: int | None = None
    judge_calls_saved: int = 0
    created_at: datetime = Field(default_factory=utcnow)


# --- human labels (import, review, audit, gold) ------------------------------------------

LabelSource = Literal["import", "review", "audit", "gold", "calibration"]
# Sources whose selection calibration can account for: a random gold sample the user
# declares as such, reviewers' labels on the random calibration sample, and the audit
# stream (a random share of would-be auto-accepts).
# Review labels come from uncertain pairs, so they are kept out of the guarantee.
CALIBRATION_SOURCES: tuple[str, ...] = ("gold", "audit", "calibration")


class LabelIn(BaseModel):
    """One human label as a client or reviewer posts it."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    label: Literal["A>>B", "A>B", "tie", "B>A", "B>>A", "A", "B"]
    both_bad: bool = False
    safety_flag: bool = False
    rationale: str | None = None
    source: LabelSource = "import"
    annotator: str = "unknown"
    # Makes a retried submit a no-op; defaults to (client_id, source, annotator).
    idempotency_key: str | None = None


class Label(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "idempotency_key", name="uq_label_idempotency"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    pair_id: int = Field(foreign_key="pair.id", index=True)
    label: str  # five-point, original A/B terms
    both_bad: bool = False
    safety_flag: bool = False
    rationale: str | None = Field(default=None, sa_column=Column(Text))
    source: str = Field(index=True)
    annotator: str
    idempotency_key: str = Field(max_length=512)
    time_on_task_s: float | None = None
    prelabel_shown: bool | None = None
    redaction_version: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


# --- calibration versions (the gate's history) -------------------------------------------


def version_label(version: int | None) -> str:
    """What a decision records as its calibration version: "cal-<n>", or "routing-v0" before any."""
    return f"cal-{version}" if version is not None else "routing-v0"


class CalibrationVersion(SQLModel, table=True):
    # One number per version: "the latest version" must mean the same row to every reader.
    __table_args__ = (
        UniqueConstraint("project_id", "version", name="uq_calibrationversion_project_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    version: int
    created_at: datetime = Field(default_factory=utcnow)
    trigger: str  # refit | auto | drift | manual
    open: bool = False
    reason: str = Field(sa_column=Column(Text, nullable=False))
    threshold: float | None = None
    guaranteed_agreement: float | None = None
    expected_coverage: float | None = None
    n_labels: int = 0
    label_sources: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The fitted gate (calibrator + threshold) as JSON; None when no model could be fitted.
    model: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
