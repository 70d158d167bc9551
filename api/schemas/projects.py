"""Projects: the judge panel, routing settings, the project itself and its API keys.

Routing settings and judge specs are stored as JSON on the project and validated with these
same classes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from api.fields import ModelName, Text
from api.schemas.aspects import MAX_ASPECTS, Aspect, AspectSettings, OverallMode, aspects_problem
from api.schemas.common import Public
from judge.options import MAX_TOKENS_CAP, CallOptions, ResponseFormat, extra_params_problem
from judge.verdicts import OrderSetting


class JudgeSpec(BaseModel):
    """One judge of a panel: a litellm model string plus call options."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Text = Field(max_length=300)
    # Passed to litellm as api_base: a provider URL, or for replay/ judges the recorded file.
    # Checked when a project is created (api/judging/checks.py) and before every call.
    api_base: Text | None = Field(None, max_length=2048)
    # Ask for token logprobs (only providers that return them: OpenAI-style).
    logprobs: bool = False
    # Relative cost, used to order a cascade (cheapest first).
    cost_rank: float | None = None
    # Display orders asked (judge.verdicts.orders_to_ask): "both" (AB and BA), "ab" or "ba"
    # only, "random" (one per pair, from a hash of the pair: half the calls), or for replay
    # judges "recorded" (the orders the file holds for each pair).
    orders: OrderSetting = "both"
    # A live model litellm's price table does not list (a fine-tune, a self-hosted model):
    # accepted at project creation only when marked custom, so a typo is not.
    custom: bool = False
    # Per-judge call options (judge/options.py). The defaults are the calls every judge made
    # before they existed: no max_tokens, temperature 0, plain text, the worker's
    # judge_timeout_s (60 s) and only its global judge_concurrency.
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CAP)
    temperature: float = Field(0, ge=0.0, le=2.0)
    timeout_s: float | None = Field(None, gt=0.0, le=600.0)
    max_concurrency: int | None = Field(None, ge=1, le=10_000)
    # "json_object" / "json_schema" (the verdict object judge/parse.py reads): refused at project
    # creation for a provider litellm says does not support it (custom judges: allowed).
    response_format: ResponseFormat = "text"
    # Provider parameters passed through to litellm (top_p, seed, stop ...): plain JSON, at most
    # 4 KB; keys prelabel sets itself are refused (judge.options.RESERVED_PARAMS).
    extra_params: dict[str, Any] = Field(default_factory=dict, max_length=50)

    def call_options(self) -> CallOptions:
        """The options that reach every call of this judge (and its judgment cache key)."""
        return CallOptions(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            response_format=self.response_format,
            extra_params=self.extra_params,
        )

    @field_validator("extra_params")
    @classmethod
    def _extra_params_are_plain(cls, value: dict[str, Any]) -> dict[str, Any]:
        if (problem := extra_params_problem(value)) is not None:
            raise ValueError(f"extra_params: {problem}")
        return value

    @property
    def calls_per_pair(self) -> int:
        """Judge calls this judge makes on a pair (one per display order asked; "recorded": at
        most both, so what a cascade saves is never negative)."""
        return 2 if self.orders in ("both", "recorded") else 1

    @model_validator(mode="after")
    def _recorded_orders_need_a_file(self) -> JudgeSpec:
        if self.orders == "recorded" and not self.model.startswith("replay/"):
            raise ValueError('orders "recorded" is for replay/ judges (the orders their file holds)')
        return self

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


def panel_calls(specs: Iterable[JudgeSpec]) -> int:
    """Judge calls the whole panel makes on a pair: what a cascade's savings are counted against."""
    return sum(spec.calls_per_pair for spec in specs)


class RoutingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Provisional (pre-calibration) confidence under which a pair is low_confidence.
    min_confidence: float = Field(default=0.75, ge=0.0, le=1.0)
    target_agreement: float = Field(default=0.9, gt=0.0, lt=1.0)
    delta: float = Field(default=0.1, gt=0.0, lt=1.0)
    n_min: int = Field(default=100, ge=1, le=10**9)
    audit_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    # Denser audits right after a gate opens or is refitted, when a bad gate does the most harm:
    # the first ``audit_boost_pairs`` pairs decided under a new open version are audited at
    # max(audit_rate, audit_boost_rate), then the configured rate. audit_rate=0 turns audits off.
    audit_boost_rate: float = Field(default=0.25, ge=0.0, le=1.0)
    audit_boost_pairs: int = Field(default=200, ge=0, le=10**9)
    # Label-free shift detector (calibration.shift): closes an open gate when the judgments of
    # the pairs decided under it stop looking like the calibration sample's. shift_delta is the
    # probability of ever closing on a stream exchangeable with the calibration sample.
    shift_check: bool = True
    shift_delta: float = Field(default=0.05, gt=0.0, lt=1.0)
    # A random share of all pairs goes to review as a calibration sample; reviewers' labels on
    # it (source "calibration") are an unbiased sample, so they calibrate the gate.
    calibration_sample_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    refit_every: int = Field(default=50, ge=1, le=10**9)
    # Review: share of items whose judge pre-label the reviewer sees (automation-bias control),
    # reviewers per item, and the uncertainty weight of the hybrid active-learning priority.
    show_prelabel_rate: float = Field(default=0.3, ge=0.0, le=1.0)
    review_overlap: int = Field(default=1, ge=1, le=10)
    uncertainty_weight: float = Field(default=0.6, ge=0.0, le=1.0)
    # A pair is order-sensitive (a hard flag: never auto-accepted) when the panel's majority
    # reverses with the order shown (judge.verdicts.panel_order_flip). Judges named here add
    # their own AB/BA flip to that rule (for judges trusted to be order-stable); other judges'
    # flips are features the calibrator prices. The gate is fitted with the same rule, so its
    # guarantee covers what is accepted.
    order_sensitive_judges: list[ModelName] | None = Field(None, max_length=100)
    # Judge cheapest-first (stages by cost_rank, else litellm price: judge.costs) and call the
    # next stage only while the calibrated confidence is below the threshold. Takes effect
    # once the gate is open; a closed gate judges with the whole panel (it needs the data).
    cascade: bool = False
    # Frozen-eval leakage gate (api/export/leakage.py): a train pair whose prompt's word-bigram
    # Jaccard similarity with a frozen_eval prompt is at least this is held out of train exports.
    # 0.8 catches one-word edits of prompts of about 20 words or more and re-punctuated copies;
    # below 0.5 prompts that merely share a topic or template match, and the search slows.
    leakage_threshold: float = Field(default=0.8, ge=0.5, le=1.0)
    # Exports redact personal data and secrets by default (the redactor reviewers see through,
    # api/review/redaction/__init__.py); an export request's ``redact`` overrides it either way.
    redact_exports: bool = False
    # Reviewer quality (api/review/quality.py). Honeypots: pairs with a known answer (gold labels
    # imported with honeypot=true) mixed into each reviewer's review queue at this share.
    honeypot_rate: float = Field(default=0.05, ge=0.0, le=0.5)
    # Auto-pause: a sequential test (calibration.sequential.SPRT) on "agreed with the reference"
    # (a honeypot's answer, or the peers' majority on an overlapped pair): H0 accuracy >=
    # quality_good_accuracy against H1 accuracy <= honeypot_min_accuracy. quality_alpha: chance
    # that one test pauses a reviewer at the good level; quality_beta: that it passes one at the bad.
    honeypot_min_accuracy: float = Field(default=0.6, gt=0.0, lt=1.0)
    quality_good_accuracy: float = Field(default=0.85, gt=0.0, lt=1.0)
    quality_alpha: float = Field(default=0.01, gt=0.0, lt=0.5)
    quality_beta: float = Field(default=0.05, gt=0.0, lt=0.5)
    # Speed filter: a label given in less than min_seconds_base + min_seconds_per_1k_chars per
    # 1,000 characters of prompt and responses is flagged and never calibrates. The defaults
    # (5 s per 1k characters: ~2,400 words a minute) are far above skimming speed: a floor
    # for "did not read it", not a target.
    min_seconds_base: float = Field(default=2.0, ge=0.0, le=3600.0)
    min_seconds_per_1k_chars: float = Field(default=5.0, ge=0.0, le=3600.0)
    # Batch gate (api/review/agreement_batches.py): a job whose overlapped pairs have
    # Krippendorff's alpha (ordinal, five-point) below this does not calibrate, and its
    # disputed pairs go to adjudication. 0.667 is Krippendorff's lowest "tentative" level.
    agreement_threshold: float = Field(default=0.667, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _quality_levels_ordered(self) -> RoutingSettings:
        if self.honeypot_min_accuracy >= self.quality_good_accuracy:
            raise ValueError("honeypot_min_accuracy must be below quality_good_accuracy")
        return self


def _judge_kind(value: Any) -> str:
    return "name" if isinstance(value, str) else "spec"


# A judge on a project body: a model string, or a JudgeSpec object.
JudgeEntry = Annotated[
    Annotated[JudgeSpec, Tag("spec")] | Annotated[ModelName, Tag("name")], Discriminator(_judge_kind)
]


class ProjectCreate(BaseModel):
    # Unknown fields are refused: a typo ("judgs") must not silently mean "no judges".
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    rubric: Text | None = Field(None, max_length=100_000)
    guidelines: Text | None = Field(None, max_length=100_000)  # markdown for reviewers
    prompt_version: Text = Field("rubric-v1", max_length=200)
    # Empty responses are refused by default; some real datasets hold an empty reply as a
    # legitimate (usually losing) response, so a project may accept them.
    allow_empty_responses: bool = False
    judges: list[JudgeEntry] = Field([], max_length=50)
    routing: RoutingSettings = RoutingSettings()
    # Separate preference questions (issue 23; api/schemas/aspects.py); none: one overall
    # preference, as before. ``overall``: its own question, or the aspects' weighted combination.
    aspects: list[Aspect] = Field([], max_length=MAX_ASPECTS)
    overall: OverallMode = "question"

    @model_validator(mode="after")
    def _aspects_valid(self) -> ProjectCreate:
        if (problem := aspects_problem(self.aspects, self.overall)) is not None:
            raise ValueError(problem)
        return self

    def aspect_settings(self) -> AspectSettings:
        return AspectSettings(aspects=self.aspects, overall=self.overall)


class ProjectGuidelines(BaseModel):
    """The body of PUT /v1/projects/{id}/guidelines: markdown for reviewers (null clears it)."""

    model_config = ConfigDict(extra="forbid")

    guidelines: Text | None = Field(max_length=100_000)


class ProjectSettingsEdit(BaseModel):
    """The body of PATCH /v1/projects/{id}: a new judge panel and/or routing fields to change.

    ``routing`` is partial: the fields given are merged onto the current settings and the
    result is validated as a whole (RoutingSettings), so a pair of fields that must agree
    (honeypot_min_accuracy < quality_good_accuracy) is checked together.
    """

    model_config = ConfigDict(extra="forbid")

    judges: list[JudgeEntry] | None = Field(None, min_length=1, max_length=50)
    routing: dict[str, Any] | None = Field(None, description="routing fields to change (see RoutingSettings)")
    # The whole aspect list replaces the current one ([] removes every aspect); ``overall``
    # alone keeps the aspects. Validated together with what is kept.
    aspects: list[Aspect] | None = Field(None, max_length=MAX_ASPECTS)
    overall: OverallMode | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ProjectSettingsEdit:
        if self.judges is None and self.routing is None and self.aspects is None and self.overall is None:
            raise ValueError("nothing to change: give `judges`, `routing`, `aspects` and/or `overall`")
        return self


class ProjectPublic(BaseModel):
    id: int
    name: str
    rubric: str | None
    guidelines: str | None = None
    prompt_version: str
    allow_empty_responses: bool
    judges: list[JudgeSpec]
    routing: RoutingSettings
    aspects: list[Aspect] = []
    overall: OverallMode = "question"
    created_at: datetime


# --- API keys ------------------------------------------------------------------------------


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200, pattern=r"\S")


class ApiKeyPublic(Public):
    """An API key as listed: never the key itself (only its hash is kept)."""

    id: int
    name: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the key, shown this once")
