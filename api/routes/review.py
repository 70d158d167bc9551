"""Human review over HTTP: reviewer accounts, the queue (next / submit / skip), dashboards.

Auth: ``Authorization: Bearer <token>``; reviewer tokens come from ``POST /v1/reviewers``
(admin token). Reviewers only ever receive redacted text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Session, select

from api import review_queue
from api.auth import AdminDep, ReaderDep, Reviewer, ReviewerDep, ReviewerExists, create_reviewer, rotate_token
from api.deps import EngineDep, ProjectDep, SessionDep
from api.models import Pair
from api.review_queue import QueueError, ReviewSubmit

log = logging.getLogger("prelabel.review")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Redact, embed and re-rank queued pairs in the background, off the request path.

    On by default where the API judges in-process (``prelabel serve``, the demo); set
    PRELABEL_REVIEW_PREPARE=1/0 to force it on or off (standalone workers can call
    ``api.review_queue.prepare_batch`` instead).
    """
    flag = os.environ.get("PRELABEL_REVIEW_PREPARE", "auto")
    enabled = flag == "1" or (flag == "auto" and getattr(app.state, "worker", None) is not None)
    stop = asyncio.Event()
    task = asyncio.create_task(review_queue.prepare_loop(app.state.engine, stop)) if enabled else None
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=30)


router = APIRouter(tags=["review"], lifespan=lifespan)


def _fail(exc: QueueError) -> HTTPException:
    return HTTPException(exc.status, exc.detail)


# --- reviewer accounts (admin) -----------------------------------------------------------


class ReviewerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PField(min_length=1, max_length=200, pattern=r"\S")


def _reviewer_view(reviewer: Reviewer) -> dict[str, Any]:
    return {
        "id": reviewer.id,
        "name": reviewer.name,
        "active": reviewer.active,
        "created_at": reviewer.created_at,
    }


@router.post("/v1/reviewers", status_code=201)
def create_reviewer_route(body: ReviewerCreate, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """Create a reviewer; the response holds its token, shown this once (only a hash is kept)."""
    try:
        reviewer, token = create_reviewer(session, body.name)
    except ReviewerExists:
        raise HTTPException(
            409, f"reviewer {body.name!r} exists; POST /v1/reviewers/{{id}}/token gives it a new token"
        ) from None
    return {**_reviewer_view(reviewer), "token": token}


@router.get("/v1/reviewers")
def list_reviewers(session: SessionDep, _: AdminDep) -> list[dict[str, Any]]:
    return [_reviewer_view(r) for r in session.exec(select(Reviewer).order_by(Reviewer.id))]  # type: ignore[arg-type]


@router.post("/v1/reviewers/{reviewer_id}/token")
def rotate_reviewer_token(reviewer_id: int, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """Issue a new token for a reviewer (the old one stops working)."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise HTTPException(404, f"reviewer {reviewer_id} not found")
    return {**_reviewer_view(reviewer), "token": rotate_token(session, reviewer)}


@router.get("/v1/review/me")
def whoami(reviewer: ReviewerDep) -> dict[str, Any]:
    return _reviewer_view(reviewer)


# --- the queue ---------------------------------------------------------------------------


class NextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str = PField("review", pattern="^(review|incident)$")


@router.post("/v1/projects/{project_id}/review/next")
def next_item(
    project: ProjectDep, reviewer: ReviewerDep, engine: EngineDep, body: NextRequest | None = None
) -> JSONResponse:
    """Lease the next item (redacted) with the reasons it is here; ``{"item": null}`` when
    there is nothing for this reviewer. Asking again while holding a lease returns it."""
    queue = (body or NextRequest()).queue
    try:
        item = review_queue.next_item(engine, project, reviewer, queue)
    except QueueError as exc:
        raise _fail(exc) from None
    if item is None:
        with Session(engine) as session:
            why = review_queue.queue_is_empty_reason(session, project.id, queue)  # type: ignore[arg-type]
        return JSONResponse({"item": None, "detail": why})
    return JSONResponse(jsonable_encoder({"item": item}))


@router.post("/v1/review/leases/{lease_id}/submit")
def submit(lease_id: int, body: ReviewSubmit, reviewer: ReviewerDep, engine: EngineDep) -> JSONResponse:
    """Label a leased item. 201 when stored; 200 with ``duplicate: true`` for a repeat.

    After the lease expired the label is still stored if the item's slot is free; 409 when
    the item was reassigned to another reviewer (or is done, or left the queue)."""
    try:
        label, created = review_queue.submit_label(engine, lease_id, reviewer, body)
    except QueueError as exc:
        raise _fail(exc) from None
    return JSONResponse(jsonable_encoder(label), status_code=201 if created else 200)


class SkipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = PField(min_length=1, max_length=500, pattern=r"\S")


@router.post("/v1/review/leases/{lease_id}/skip")
def skip(lease_id: int, body: SkipRequest, reviewer: ReviewerDep, engine: EngineDep) -> dict[str, Any]:
    """Give an item back (with a reason); it goes to another reviewer, never back to you."""
    try:
        return review_queue.skip_item(engine, lease_id, reviewer, body.reason)
    except QueueError as exc:
        raise _fail(exc) from None


@router.get("/v1/projects/{project_id}/review/progress")
def review_progress(
    project: ProjectDep,
    reviewer: ReviewerDep,
    session: SessionDep,
    queue: str = Query("review", pattern="^(review|incident)$"),
) -> dict[str, Any]:
    return review_queue.progress(session, project.id, queue, reviewer)  # type: ignore[arg-type]


# --- dashboards (reviewer or admin) ------------------------------------------------------


@router.get("/v1/projects/{project_id}/review/stats")
def review_stats(
    project: ProjectDep, session: SessionDep, _: ReaderDep, hours: int = Query(24, ge=1, le=24 * 90)
) -> JSONResponse:
    """Queue depth, labels per reviewer per hour, override rates with / without pre-label."""
    return JSONResponse(jsonable_encoder(review_queue.review_stats(session, project.id, hours)))  # type: ignore[arg-type]


@router.get("/v1/projects/{project_id}/review/labels")
def review_labels(
    project: ProjectDep,
    session: SessionDep,
    reader: ReaderDep,
    annotator: str | None = None,
    after: int = Query(0, ge=0, description="cursor: the last label_id of the previous page"),
    limit: int = Query(500, ge=1, le=5000),
) -> JSONResponse:
    """Review and audit labels of a project, in id order. A reviewer sees only their own
    (others' answers would anchor theirs); the admin sees all, or one ``annotator``'s."""
    if reader is not None:
        if annotator not in (None, reader.name):
            raise HTTPException(403, "reviewers can read their own labels only")
        annotator = reader.name
    rows = review_queue.list_labels(session, project.id, annotator, after, limit)  # type: ignore[arg-type]
    next_after = rows[-1]["label_id"] if len(rows) == limit else None
    return JSONResponse(jsonable_encoder({"labels": rows, "next_after": next_after}))


# --- admin -------------------------------------------------------------------------------


@router.get("/v1/admin/pairs/{pair_id}/redaction")
def read_redaction_mapping(pair_id: int, session: SessionDep, _: AdminDep) -> JSONResponse:
    """Token -> original text for one pair (PII: admins only)."""
    if session.get(Pair, pair_id) is None:
        raise HTTPException(404, f"pair {pair_id} not found")
    mapping = review_queue.redaction_for_admin(session, pair_id)
    if mapping is None:
        raise HTTPException(404, f"pair {pair_id} has not been redacted yet (it was never queued for review)")
    return JSONResponse(jsonable_encoder(mapping))


@router.post("/v1/admin/review/prepare")
def prepare_now(engine: EngineDep, _: AdminDep) -> dict[str, int]:
    """Run one pass of the queue's background work now (backfill, expiry, redaction,
    embeddings, priority)."""
    return review_queue.prepare_batch(engine)
