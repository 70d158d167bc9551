"""Review: reviewer accounts, the queue (next / submit / skip / revise), dashboards and agreement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.fields import Text
from api.schemas.aspects import AspectLabels
from api.schemas.common import IsoDatetime, Public
from api.schemas.queue import QueueFilter


class ReviewSubmit(BaseModel):
    """A reviewer's answer for one lease."""

    model_config = ConfigDict(extra="forbid")

    label: Literal["A>>B", "A>B", "tie", "B>A", "B>>A"] | None = Field(
        None, description="five-point preference in terms of response A / response B"
    )
    both_bad: bool = False
    safety_flag: bool = False
    # Per-aspect labels (issue 23): on a project with required aspects, every one of them.
    aspects: AspectLabels | None = None
    rationale: Text | None = Field(None, max_length=10_000)
    time_on_task_s: float | None = Field(None, ge=0, le=86_400)
    prelabel_shown: bool | None = Field(
        None, description="what the client displayed; must agree with the lease if given"
    )
    idempotency_key: Text | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _complete(self) -> ReviewSubmit:
        if self.rationale is not None:
            self.rationale = self.rationale.strip() or None
        if self.both_bad and not self.rationale:
            raise ValueError("both_bad needs a rationale: say why neither response is acceptable")
        if self.label is None and not self.both_bad:
            raise ValueError("give a label (A>>B, A>B, tie, B>A, B>>A), or both_bad with a rationale")
        return self

    def stored_label(self) -> str:
        # Both bad without a preference is stored as a tie: neither side is preferred.
        return self.label or "tie"


class ReviewerResume(BaseModel):
    """Lift a reviewer's pause on a project; ``release`` also un-quarantines their held labels."""

    model_config = ConfigDict(extra="forbid")

    project_id: int = Field(ge=1, le=2**31 - 1)
    release: bool = False


class ReviewerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200, pattern=r"\S")
    # The projects whose queues the reviewer may work; none until an admin assigns some.
    projects: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(default_factory=list, max_length=10_000)
    # Senior reviewers also adjudicate disputed pairs (POST /v1/projects/{id}/adjudication/next).
    senior: bool = False


class ReviewerProjects(BaseModel):
    model_config = ConfigDict(extra="forbid")

    projects: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(max_length=10_000)


class NextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str = Field("review", pattern="^(review|incident)$")
    # Only items that match (items assigned to the caller still come first among them).
    filter: QueueFilter | None = None


class SkipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=500, pattern=r"\S")


# --- reviewer accounts ---------------------------------------------------------------------


class ReviewerPublic(Public):
    id: int
    name: str
    active: bool
    senior: bool
    created_at: datetime
    projects: list[int] = Field(description="the projects whose queues the reviewer may work")


class ReviewerWithToken(ReviewerPublic):
    token: str = Field(description="the reviewer's token, shown this once")


class Resumed(Public):
    reviewer_id: int
    project_id: int
    paused: bool
    released_labels: int


# --- the queue -----------------------------------------------------------------------------


class Reason(Public):
    code: str
    text: str


class WhyQueued(Public):
    reasons: list[Reason]
    selected_by: str | None
    priority_text: str
    uncertainty: float | None


class Prelabel(Public):
    label: str
    confidence: float | None


class ReviewItem(Public):
    """A leased item: the redacted pair and why it is in the queue."""

    lease_id: int
    item_id: int
    pair_id: int
    project_id: int
    queue: str
    leased_at: IsoDatetime
    expires_at: IsoDatetime
    prompt: str
    response_a: str
    response_b: str
    redaction_version: str
    redacted_values: int
    why: WhyQueued
    safety: bool
    prelabel_shown: bool
    prelabel: Prelabel | None = Field(description="the judges' label, on the items that show it")
    labels_needed: int
    assigned: bool = Field(False, description="assigned to you by a senior reviewer or the admin")


class NextItem(Public):
    item: ReviewItem | None
    detail: str | None = Field(None, description="why there is nothing to serve (only with item null)")


class LabelWarning(Public):
    code: str
    message: str


class ReviewLabel(Public):
    """A review label as the reviewer's client sees it."""

    label_id: int
    pair_id: int
    label: str
    aspects: dict[str, str] | None = None
    both_bad: bool
    safety_flag: bool
    rationale: str | None
    source: str
    annotator: str
    time_on_task_s: float | None
    prelabel_shown: bool | None
    redaction_version: str | None
    idempotency_key: str
    created_at: IsoDatetime
    duplicate: bool = Field(description="a repeat of a stored label: nothing new was stored")
    warnings: list[LabelWarning]


class RevisedLabel(ReviewLabel):
    supersedes: int = Field(description="the label this one replaces (kept, with its time)")


class Skipped(Public):
    lease_id: int
    state: Literal["skipped"]
    duplicate: bool


class HistoryEntry(Public):
    label_id: int
    pair_id: int
    label: str
    aspects: dict[str, str] | None = None
    both_bad: bool
    safety_flag: bool
    rationale: str | None
    created_at: IsoDatetime
    prompt: str
    response_a: str
    response_b: str


class Progress(Public):
    queue: str
    open: int
    leased: int
    done: int
    remaining: int
    labelled_by_you: int
    labelled_by_you_24h: int


# --- dashboards ----------------------------------------------------------------------------


class QueueDepth(Public):
    open: int
    leased: int
    done: int
    stale: int
    waiting: int


class HourlyLabels(Public):
    annotator: str
    hour: IsoDatetime
    labels: int


class Overrides(Public):
    labels: int
    overrides: int
    rate: float | None


class ReviewStats(Public):
    project_id: int
    queue_depth: dict[str, QueueDepth]
    labels_per_reviewer_per_hour: list[HourlyLabels]
    override: dict[Literal["shown", "hidden"], Overrides] = Field(
        description="how often reviewers chose another side than the judges', pre-label shown or hidden"
    )
    median_time_on_task_s: float | None
    labels_by_source: dict[str, int]
    skips_by_reason: dict[str, int]
    hours: int


class ReviewLabelsPage(Public):
    labels: list[ReviewLabel]
    next_after: int | None


class ReviewerQuality(Public):
    reviewer_id: int
    name: str
    labels: int
    median_seconds_per_label: float | None
    honeypots_seen: int
    honeypot_accuracy: float | None
    honeypot_ci: list[float | None] = Field(description="95 % exact interval [low, high]")
    peer_checked: int
    peer_agreement: float | None
    speed_flags: int
    quarantined_labels: int
    paused: bool
    paused_at: IsoDatetime | None
    paused_reason: str | None


class QualityTable(Public):
    reviewers: list[ReviewerQuality]


class ControlChartPoint(Public):
    subgroup: int = Field(description="the window's number (1, 2, ... in label order) or the batch's job id")
    labels: int = Field(description="labels in the subgroup, with a reference or not")
    n: int = Field(description="labels in the subgroup with a reference to agree with")
    agreed: int
    p: float = Field(description="share of those answers that agreed")
    lcl: float = Field(description="lower control limit")
    ucl: float = Field(description="upper control limit")
    wide: bool = Field(description="too few answers for the limits' normal approximation: wide, approximate")
    rules: list[str] = Field(description="the rules this point breaks (names in `rules` of the answer)")
    out_of_control: bool
    start: IsoDatetime = Field(description="time of the subgroup's first label")
    end: IsoDatetime = Field(description="time of its last label")


class ControlChart(Public):
    unit: str = Field(description="the reviewer's name, or 'batches'")
    reviewer_id: int | None
    center: float | None = Field(description="pooled agreement over the chart (null: nothing to compare)")
    degenerate: bool = Field(description="every answer agreed, or none did: the limits are the centre line")
    points: list[ControlChartPoint]
    skipped: list[int] = Field(description="subgroups without an answer to compare")
    flagged: int = Field(description="out-of-control points")


class ControlCharts(Public):
    project_id: int
    window: int = Field(description="labels per point on a reviewer's chart")
    sigma: float
    run_length: int
    rules: dict[str, str] = Field(description="rule name -> what a point breaking it did")
    reviewers: list[ControlChart]
    batches: ControlChart | None


class RedactionMapping(Public):
    pair_id: int
    version: str
    mapping: dict[str, str] = Field(description="token -> original text")
    created_at: IsoDatetime


class PreparePass(Public):
    backfilled: int
    expired: int
    redacted: int
    embedded: int
    reprioritized: int


# --- agreement -----------------------------------------------------------------------------


class ProjectAgreement(Public):
    n_items: int
    cohen_kappa_mean: float | None
    fleiss_kappa: float | None
    krippendorff_alpha_ordinal: float | None
    krippendorff_alpha_nominal: float | None


class ReviewerPairAgreement(Public):
    a: str
    b: str
    n: int
    cohen_kappa: float | None


class BatchAgreement(Public):
    job_id: int
    created_at: IsoDatetime | None
    n_items: int
    krippendorff_alpha_ordinal: float | None
    alpha_upper: float | None
    below_threshold: bool
    calibrates: bool
    disputed: int


class ReviewerAccuracy(Public):
    reviewer: str
    n: int
    ds_accuracy: float | None
    confusion: dict[str, dict[str, float]] = Field(
        description="Dawid-Skene: true side -> given side -> share"
    )


class AspectAgreement(Public):
    """Agreement on one aspect (issue 23): alpha between humans and Dawid-Skene per reviewer."""

    aspect: str
    n_items: int = Field(description="pairs two or more annotators labelled on this aspect")
    krippendorff_alpha_ordinal: float | None
    reviewers: list[ReviewerAccuracy]


class AgreementReport(Public):
    project: ProjectAgreement
    pairs_of_reviewers: list[ReviewerPairAgreement]
    batches: list[BatchAgreement]
    reviewers: list[ReviewerAccuracy]
    threshold: float
    aspects: list[AspectAgreement] = Field([], description="per aspect, on projects with aspects")
