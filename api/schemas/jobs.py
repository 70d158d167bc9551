"""Jobs: the pairs a client posts, the job's progress, and its per-pair results."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.fields import Text, check_metadata
from api.schemas.common import IsoDatetime, Public
from api.schemas.projects import JudgeEntry

Split = Literal["train", "frozen_eval"]


class PairIn(BaseModel):
    """One pair as a client posts it."""

    model_config = ConfigDict(extra="forbid")

    client_id: Text
    prompt: Text
    response_a: Text
    response_b: Text
    # A factory, not ``= {}``: pydantic deep-copies a mutable default for every pair parsed.
    metadata: dict[str, Any] = Field(default_factory=dict)
    split: Split = "train"

    @field_validator("metadata")
    @classmethod
    def _metadata_is_plain_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_metadata(value)


class JobPost(BaseModel):
    """The JSON body of ``POST /v1/projects/{id}/jobs`` (documentation: the route parses the
    body itself, JSON or NDJSON by Content-Type, in api/ingest/store.py)."""

    pairs: list[PairIn]


class JobCreated(Public):
    job_id: int
    project_id: int
    pairs_created: int
    pairs_existing: int = Field(description="pairs already stored under these client_ids (not stored again)")
    existing_client_ids: list[str] = Field(description="the first 1,000 of them")
    resubmitted: bool = Field(description="the same pairs as an earlier job: that job, nothing stored")


class JudgeError(Public):
    client_id: str
    judge: str
    order: str
    error: str


class JobStatus(Public):
    """A job's progress: counts by state and route, reasons, judge calls and cost so far."""

    id: int
    project_id: int
    created_at: datetime
    pairs: int
    existing_pairs_skipped: int
    done: int
    progress: float
    complete: bool = Field(description="no pair left to judge: every pair done or cancelled")
    cancelled: int = Field(0, description="pairs cancelled before they were judged (POST .../cancel)")
    by_state: dict[str, int]
    by_route: dict[str, int]
    by_reason: dict[str, int]
    judge_calls: int
    judge_calls_saved: int
    judge_errors: int
    cost: float
    recent_errors: list[JudgeError]


class JobRetry(BaseModel):
    """The body of ``POST /v1/jobs/{id}/retry`` (optional)."""

    model_config = ConfigDict(extra="forbid")

    include_invalid: bool = Field(
        True, description="re-judge unreadable verdicts too, not only failed calls (errors)"
    )
    judges: list[JudgeEntry] | None = Field(
        None,
        max_length=50,
        description="a new panel for the project, for this retry and all future judging "
        "(checked and audited as PATCH /v1/projects/{id} is; a new calibration version follows)",
    )


class JobRetried(JobStatus):
    requeued: int = Field(description="pairs sent back to the judging queue by this retry")


class JobCancelled(JobStatus):
    """The job's status after a cancel (``cancelled``: its pairs cancelled, by this call or before)."""


class FinalLabelView(Public):
    """A pair's final label and its provenance (all null: the pair has none)."""

    label: str | None
    side: str | None
    source: str | None = Field(description="human | auto")
    method: str | None
    label_ids: list[int]
    human_sources: list[str]
    confidence: float | None
    calibration_version: str | None
    guaranteed_agreement: float | None
    judges: list[str]
    prompt_version: str | None


class JudgmentView(Public):
    judge: str
    order: str
    verdict: str | None
    confidence: float | None
    both_bad: bool | None
    safety_flag: bool | None
    cached: bool
    error: str | None
    aspects: dict[str, str] | None = Field(None, description="per-aspect verdicts (projects with aspects)")


class JudgmentRecord(Public):
    """One judgment of a pair as stored, with the judge's raw answer (admins only)."""

    id: int
    judge: str
    order: str
    verdict: str | None
    confidence: float | None
    raw: str | None = Field(description="the judge's answer as received (null: the call failed)")
    error: str | None = Field(description="why the call failed, or why the answer held no verdict")
    attempts: int
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float
    cached: bool
    created_at: IsoDatetime


class PairJudgments(Public):
    pair_id: int
    judgments: list[JudgmentRecord]


class PairResult(Public):
    """One pair's result: its final label, the judges' decision and every judgment."""

    pair_id: int
    client_id: str
    state: str
    split: str
    label: str | None
    label_source: str | None
    final: FinalLabelView
    judge_label: str | None
    chosen: str | None
    confidence: float | None
    route: str | None
    reasons: list[str]
    decision_version: str | None
    decision_stage: int | None
    aspects: dict[str, Any] | None = Field(
        None,
        description="projects with aspects: per aspect the panel's label and side, and why it does "
        "not clear (a required one that does not is the reason aspect_unclear)",
    )
    judgments: list[JudgmentView]


class JobResultsPage(Public):
    job_id: int
    results: list[PairResult]
    next_after: int | None = Field(description="the cursor of the next page; null on the last")
