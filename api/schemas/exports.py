"""Exports: what to export, and an export as listed (its manifest included)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.fields import Text
from api.schemas.common import IsoDatetime, Public
from api.vocab import ExportFormat


class ExportCreate(BaseModel):
    """An export to make: format, split ("all": every split, each kept apart), the least label
    source (human: human labels only; auto: any final label; none given: every pair), and
    ``force`` with a ``reason`` to export past the promotion gate."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    split: Literal["train", "frozen_eval", "all"] = "train"
    min_source: Literal["human", "auto"] | None = None
    force: bool = False
    reason: Text | None = Field(None, max_length=2000)
    # Replace personal data and secrets in the texts and metadata by typed tokens (<EMAIL_1>);
    # unset: the project's ``routing.redact_exports``.
    redact: bool | None = None
    # Projects with aspects (issue 23): what a DPO pair is preferred by: the final label
    # ("overall"), the aspects' final labels combined with their weights ("weighted"), or one
    # aspect (its name). Checked against the project's aspects (422).
    dpo_by: str = Field("overall", max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")

    @model_validator(mode="after")
    def _force_has_reason(self) -> ExportCreate:
        if self.reason is not None:
            self.reason = self.reason.strip() or None
        if self.force and not self.reason:
            raise ValueError("force needs a reason: it is recorded in the manifest and the audit log")
        return self


class ExportFilters(Public):
    split: str
    min_source: str | None
    dpo_by: str | None = None


class ExportPublic(Public):
    number: int = Field(description="the export's number within the project")
    project_id: int
    format: str
    filters: ExportFilters
    rows: int
    forced: bool
    force_reason: str | None
    created_at: IsoDatetime
    manifest: dict[str, Any] = Field(description="manifest.json: counts, calibration, judges, cost, files")
