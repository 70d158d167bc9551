"""The audit log over HTTP (admin only): read events, verify the hash chain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api import audit
from api.deps import AdminDep, SessionDep
from api.errors import errors
from api.fields import MAX_ID
from api.schemas import AuditEventsPage, ChainVerification

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=errors(401, 403, 422))


@router.get("/events", response_model=AuditEventsPage)
def audit_events(
    session: SessionDep,
    _: AdminDep,
    after: int = Query(0, ge=0, le=MAX_ID, description="Events after this seq (a cursor)."),
    limit: int = Query(100, ge=1, le=1000),
    project_id: int | None = Query(None, ge=1, le=MAX_ID),
) -> dict[str, Any]:
    """Events in seq order; ``next_after`` is the cursor for the next page (None at the end)."""
    events = audit.list_events(session, after=after, limit=limit, project_id=project_id)
    views = [audit.event_view(event) for event in events]
    return {"events": views, "next_after": views[-1]["seq"] if len(views) == limit else None}


@router.get("/verify", response_model=ChainVerification)
def audit_verify(session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """Recompute the hash chain; ``broken`` names the first row where it breaks (None: intact)."""
    return audit.verify(session).as_dict()
