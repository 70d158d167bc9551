"""The review queue steered: filters (reason, source job, metadata, text) and assignments."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.fields import MAX_ID, Text
from api.schemas.common import IsoDatetime, Public
from api.vocab import Reason

# A metadata key a filter may name: what a person types (letters, digits, _ - . and spaces).
META_KEY = re.compile(r"^[\w.\- ]{1,100}$")
MAX_FILTER_VALUES = 50
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
MetaValue = Annotated[str, Field(max_length=500)] | bool | int | float


def meta_text(value: str | bool | int | float) -> str:
    """A metadata value as JSON writes a scalar's text: what the filter compares stored values
    with (a string as itself, ``true``/``false``, numbers as JSON numbers).

    >>> [meta_text(v) for v in ("de", True, 3, 2.5)]
    ['de', 'true', '3', '2.5']
    """
    return value if isinstance(value, str) else json.dumps(value)


class QueueFilter(BaseModel):
    """Which waiting items to take: every field given must match (reasons: any of them).

    * ``reasons``: routing reason codes (``order_sensitive``, ``safety_flag`` ...); an item
      matches when it has any of them.
    * ``jobs``: the source, i.e. the job (batch) the pair was posted in; any of them.
    * ``metadata``: ``{key: value}`` equality on the pair's top-level metadata, compared as
      text (``{"turns": 3}`` and ``{"turns": "3"}`` both match a stored 3 or "3").
    * ``text``: case-insensitive substring of the prompt or either response *as the reviewer
      sees them* (redacted): hidden personal data is never searchable.
    """

    model_config = ConfigDict(extra="forbid")

    reasons: list[Reason] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    jobs: list[Id] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    metadata: dict[str, MetaValue] = Field(default_factory=dict, max_length=10)
    text: Text | None = Field(None, max_length=200)

    @field_validator("metadata")
    @classmethod
    def _keys(cls, value: dict[str, str | bool | int | float]) -> dict[str, str | bool | int | float]:
        for key, item in value.items():
            if not META_KEY.match(key):
                raise ValueError(f"metadata key {key[:100]!r}: use 1-100 letters, digits, spaces, _ - or .")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"metadata.{key}: must be a finite number")
            if isinstance(item, str) and "\x00" in item:
                raise ValueError(f"metadata.{key}: must not contain a NUL character")
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("text: give at least one non-space character, or leave it out")
        return value

    def is_empty(self) -> bool:
        return not (self.reasons or self.jobs or self.metadata or self.text)


class AssignRequest(BaseModel):
    """Assign items to a reviewer of the project: by id, or every waiting item that matches a
    filter (up to ``limit``, best first, skipping items another reviewer holds an assignment on)."""

    model_config = ConfigDict(extra="forbid")

    reviewer_id: Id
    queue: str = Field("review", pattern="^(review|incident)$")
    item_ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    filter: QueueFilter | None = None
    limit: int = Field(500, ge=1, le=10_000, description="at most this many items by filter")

    @model_validator(mode="after")
    def _one_way(self) -> AssignRequest:
        if (self.item_ids is None) == (self.filter is None):
            raise ValueError("give item_ids or a filter (one of them)")
        return self


class UnassignRequest(BaseModel):
    """Give items back to the pool: these items, or every assignment of one reviewer."""

    model_config = ConfigDict(extra="forbid")

    item_ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    reviewer_id: Id | None = None

    @model_validator(mode="after")
    def _one_way(self) -> UnassignRequest:
        if (self.item_ids is None) == (self.reviewer_id is None):
            raise ValueError("give item_ids or a reviewer_id (one of them)")
        return self


# --- answers ---------------------------------------------------------------------------------


class Assignee(Public):
    reviewer_id: int
    name: str


class QueueEntry(Public):
    """A waiting item as the queue list shows it (redacted text only)."""

    item_id: int
    pair_id: int
    job_id: int
    queue: str
    state: str
    reasons: list[str]
    priority: float
    labels_needed: int
    labels_done: int
    prompt: str = Field(description="the redacted prompt, cut to 300 characters")
    assigned_to: Assignee | None = Field(description="the reviewer it is assigned to, while that stands")


class QueuePage(Public):
    items: list[QueueEntry]
    matched: int = Field(description="waiting items that match the filter (all pages)")
    assigned_to_you: int = Field(description="of those, assigned to the caller (0 for the admin)")
    next_offset: int | None = Field(description="pass as offset= for the next page; null on the last")
    searched_unprepared: int = Field(
        description="waiting items whose redacted text was not ready, so a text search could not see them"
    )


class Assigned(Public):
    reviewer_id: int
    assigned: int = Field(description="items now assigned to the reviewer by this call")
    moved: int = Field(description="of those, taken over from another reviewer's assignment")
    item_ids: list[int]


class Unassigned(Public):
    unassigned: int
    item_ids: list[int]


class AssignmentView(Public):
    item_id: int
    pair_id: int
    queue: str
    state: str
    reviewer_id: int
    name: str
    assigned_by: str
    created_at: IsoDatetime
    standing: bool = Field(description="the assignee is served it first and nobody else is")
    why_not: str | None = Field(
        description="why the assignment does not stand (the item is back in the pool)"
    )


class ProjectReviewer(Public):
    reviewer_id: int
    name: str
    senior: bool
    paused: bool
    assigned: int = Field(description="waiting items assigned to them that stand")


class Assignments(Public):
    reviewers: list[ProjectReviewer]
    assignments: list[AssignmentView]
