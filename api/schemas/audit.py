"""The audit log: events, and the verification of their hash chain."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import Public


class AuditEventPublic(Public):
    id: int
    seq: int
    created_at: str = Field(description="UTC, microseconds, Z: the text the hash covers")
    kind: str
    project_id: int | None
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEventsPage(Public):
    events: list[AuditEventPublic]
    next_after: int | None = Field(description="the cursor of the next page; null at the end")


class ChainBreak(Public):
    seq: int
    id: int
    problem: str
    message: str


class ChainVerification(Public):
    ok: bool
    events: int
    last_seq: int
    last_hash: str | None
    broken: ChainBreak | None = Field(description="the first row where the chain breaks; null: intact")
