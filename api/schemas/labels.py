"""Human labels a client imports, and the labels as listed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.fields import Text
from api.schemas.aspects import AspectLabels
from api.schemas.common import IsoDatetime, Public
from api.vocab import LabelSource

FIVE_POINT: tuple[str, ...] = ("A>>B", "A>B", "tie", "B>A", "B>>A")


class LabelIn(BaseModel):
    """One human label as a client imports it (``POST .../labels``). Sources other than
    ``vocab.IMPORT_SOURCES`` are refused there with 403 (api/ingest/store.py): the review
    flow writes them."""

    model_config = ConfigDict(extra="forbid")

    client_id: Text = Field(max_length=512)
    label: Literal["A>>B", "A>B", "tie", "B>A", "B>>A", "A", "B"]
    both_bad: bool = False
    safety_flag: bool = False
    rationale: Text | None = Field(None, max_length=100_000)
    # Per-aspect labels on a project with aspects (issue 23), any subset of its aspects (a gold
    # set labels what it labels). None: an overall-only label.
    aspects: AspectLabels | None = None
    source: LabelSource = LabelSource.IMPORT
    annotator: Text = Field("unknown", max_length=200)
    # Makes a retried submit a no-op; defaults to (client_id, source, annotator).
    idempotency_key: Text | None = Field(None, max_length=512)
    # A gold label whose pair is also a honeypot: served to reviewers like any review item, and
    # their answers graded against this label (api/review/quality.py).
    honeypot: bool = False

    @model_validator(mode="after")
    def _honeypot_is_gold(self) -> LabelIn:
        if self.honeypot and self.source != "gold":
            raise ValueError("a honeypot label must have source gold (it is the known answer)")
        return self


class LabelImport(BaseModel):
    """The JSON body of ``POST /v1/projects/{id}/labels`` (documentation: the route parses the
    body itself, JSON or NDJSON by Content-Type, in api/ingest/store.py)."""

    labels: list[LabelIn]


class LabelsStored(Public):
    labels_created: int
    labels_existing: int = Field(description="repeats of stored labels (same idempotency key): no-ops")


class StoredLabel(Public):
    """A stored human label (``GET /v1/projects/{id}/labels``)."""

    id: int
    pair_id: int
    project_id: int
    safety_flag: bool
    annotator: str
    time_on_task_s: float | None
    redaction_version: str | None
    both_bad: bool
    label: str
    aspects: dict[str, str] | None = None
    rationale: str | None
    source: str
    idempotency_key: str
    prelabel_shown: bool | None
    superseded_by_id: int | None
    quarantined: bool
    speed_flagged: bool
    created_at: IsoDatetime
    client_id: str


class LabelsPage(Public):
    labels: list[StoredLabel]
