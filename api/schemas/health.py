"""Liveness."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.common import Public


class Health(Public):
    """Keys of processes this API does not run are absent (``response_model_exclude_none``)."""

    status: Literal["ok", "degraded"]
    database: str = Field(description="the database dialect (sqlite, postgresql)")
    background: Literal["running", "down", "off"]
    background_restarts: int | None = None
    ingest: Literal["running", "down"] | None = None
    ingest_processes: int | None = None
    ingest_restarts: int | None = None
