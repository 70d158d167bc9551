"""Human review over HTTP: reviewer accounts, the queue (next / submit / skip), dashboards.

Auth: ``Authorization: Bearer <token>``; reviewer tokens come from ``POST /v1/reviewers``
(admin token). Reviewers only ever receive redacted text.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlmodel import Session, col, select

from api.deps import AdminDep, EngineDep, ReaderDep, ReviewerDep, ReviewerProjectDep, SessionDep, SettingsDep
from api.errors import bounded_path_ids, errors
from api.fields import MAX_ID
from api.models import Pair, Project, Reviewer
from api.review import quality, queue, stats
from api.review.control_charts import control_charts
from api.review.prepare import prepare_batch
from api.review.queue import QueueError
from api.review.reviewers import (
    ReviewerExists,
    UnknownProjects,
    assign_projects,
    assigned_projects,
    create_reviewer,
    rotate_token,
)
from api.review.submit import label_history, revise_label, skip_item, submit_label
from api.schemas import (
    ControlCharts,
    HistoryEntry,
    NextItem,
    NextRequest,
    PreparePass,
    Progress,
    QualityTable,
    RedactionMapping,
    Resumed,
    ReviewerCreate,
    ReviewerProjects,
    ReviewerPublic,
    ReviewerResume,
    ReviewerWithToken,
    ReviewLabel,
    ReviewLabelsPage,
    ReviewStats,
    ReviewSubmit,
    RevisedLabel,
    Skipped,
    SkipRequest,
)

router = APIRouter(
    tags=["review"],
    dependencies=[Depends(bounded_path_ids)],
    responses=errors(400, 401, 403, 404, 409, 422),
)


def _fail(exc: QueueError) -> HTTPException:
    return HTTPException(exc.status, exc.detail)


# --- reviewer accounts (admin) -----------------------------------------------------------


def _reviewer_view(session: Session, reviewer: Reviewer) -> ReviewerPublic:
    return ReviewerPublic.model_validate(
        {
            "id": reviewer.id,
            "name": reviewer.name,
            "active": reviewer.active,
            "senior": reviewer.senior,
            "created_at": reviewer.created_at,
            "projects": assigned_projects(session, reviewer),
        }
    )


def _with_token(view: ReviewerPublic, token: str) -> ReviewerWithToken:
    return ReviewerWithToken(**view.model_dump(), token=token)


@router.post("/v1/reviewers", response_model=ReviewerWithToken, status_code=201)
def create_reviewer_route(body: ReviewerCreate, session: SessionDep, _: AdminDep) -> ReviewerWithToken:
    """Create a reviewer; the response holds its token, shown this once (only a hash is kept)."""
    _check_projects(session, body.projects)
    try:
        reviewer, token = create_reviewer(session, body.name, senior=body.senior)
    except ReviewerExists:
        raise HTTPException(
            409, f"reviewer {body.name!r} exists; POST /v1/reviewers/{{id}}/token gives it a new token"
        ) from None
    assign_projects(session, reviewer, body.projects)
    return _with_token(_reviewer_view(session, reviewer), token)


def _check_projects(session: Session, project_ids: list[int]) -> None:
    missing = [p for p in sorted(set(project_ids)) if session.get(Project, p) is None]
    if missing:
        raise HTTPException(422, f"unknown projects: {missing}")


@router.put("/v1/reviewers/{reviewer_id}/projects", response_model=ReviewerPublic)
def set_reviewer_projects(
    reviewer_id: int, body: ReviewerProjects, session: SessionDep, _: AdminDep
) -> ReviewerPublic:
    """Set the projects a reviewer may work on (replaces the previous assignment)."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise HTTPException(404, f"reviewer {reviewer_id} not found")
    _check_projects(session, body.projects)
    try:
        assign_projects(session, reviewer, body.projects)
    except UnknownProjects as exc:  # deleted between the check and the write
        raise HTTPException(422, f"unknown projects: {exc}") from None
    return _reviewer_view(session, reviewer)


@router.get("/v1/reviewers", response_model=list[ReviewerPublic])
def list_reviewers(session: SessionDep, _: AdminDep) -> list[ReviewerPublic]:
    return [_reviewer_view(session, r) for r in session.exec(select(Reviewer).order_by(col(Reviewer.id)))]


@router.post("/v1/reviewers/{reviewer_id}/token", response_model=ReviewerWithToken)
def rotate_reviewer_token(reviewer_id: int, session: SessionDep, _: AdminDep) -> ReviewerWithToken:
    """Issue a new token for a reviewer (the old one stops working)."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise HTTPException(404, f"reviewer {reviewer_id} not found")
    return _with_token(_reviewer_view(session, reviewer), rotate_token(session, reviewer))


@router.get("/v1/review/me", response_model=ReviewerPublic)
def whoami(reviewer: ReviewerDep, session: SessionDep) -> ReviewerPublic:
    return _reviewer_view(session, reviewer)


# --- the queue ---------------------------------------------------------------------------


@router.post("/v1/projects/{project_id}/review/next", response_model=NextItem, responses=errors(423))
def next_item(
    project: ReviewerProjectDep,
    reviewer: ReviewerDep,
    engine: EngineDep,
    settings: SettingsDep,
    body: NextRequest | None = None,
) -> JSONResponse:
    """Lease the next item (redacted) with the reasons it is here; ``{"item": null}`` when
    there is nothing for this reviewer. Asking again while holding a lease returns it.

    Items assigned to you come first (``assigned: true``), then the priority order. An optional
    ``filter`` (reasons, jobs, metadata, text: see ``QueueFilter``) serves only matching items."""
    request = body or NextRequest()
    queue_name, flt = request.queue, request.filter
    try:
        item = queue.next_item(engine, project, reviewer, queue_name, settings.review_lease_seconds, flt)
    except QueueError as exc:
        raise _fail(exc) from None
    if item is None:
        with Session(engine) as session:
            why = queue.queue_is_empty_reason(session, project.id, queue_name, flt)
        return JSONResponse({"item": None, "detail": why})
    return JSONResponse(jsonable_encoder({"item": item}))


@router.post(
    "/v1/review/leases/{lease_id}/submit",
    response_model=ReviewLabel,
    responses={
        201: {"model": ReviewLabel, "description": "Stored"},
        200: {"description": "A repeat of a stored label"},
    },
)
def submit(lease_id: int, body: ReviewSubmit, reviewer: ReviewerDep, engine: EngineDep) -> JSONResponse:
    """Label a leased item. 201 when stored; 200 with ``duplicate: true`` for a repeat.

    After the lease expired the label is still stored if the item's slot is free; 409 when
    the item was reassigned to another reviewer (or is done, or left the queue)."""
    try:
        label, created = submit_label(engine, lease_id, reviewer, body)
    except QueueError as exc:
        raise _fail(exc) from None
    return JSONResponse(jsonable_encoder(label), status_code=201 if created else 200)


@router.post(
    "/v1/review/labels/{label_id}/revise",
    response_model=RevisedLabel,
    responses={
        201: {"model": RevisedLabel, "description": "Stored"},
        200: {"description": "A repeat of a stored revision"},
        **errors(423),
    },
)
def revise(label_id: int, body: ReviewSubmit, reviewer: ReviewerDep, engine: EngineDep) -> JSONResponse:
    """Change one of your labels: a new label replaces it (both are kept, with their times).

    403 when it is not your label; 409 when it was already replaced (revise the newest)."""
    try:
        label, created = revise_label(engine, label_id, reviewer, body)
    except QueueError as exc:
        raise _fail(exc) from None
    return JSONResponse(jsonable_encoder(label), status_code=201 if created else 200)


@router.get("/v1/projects/{project_id}/review/history", response_model=list[HistoryEntry])
def review_history(
    project: ReviewerProjectDep,
    reviewer: ReviewerDep,
    engine: EngineDep,
    limit: int = Query(20, ge=1, le=200),
) -> list[dict[str, Any]]:
    """Your own current labels on the project, newest first, with the (redacted) pair."""
    return label_history(engine, project.id, reviewer, limit)


@router.post("/v1/review/leases/{lease_id}/skip", response_model=Skipped)
def skip(lease_id: int, body: SkipRequest, reviewer: ReviewerDep, engine: EngineDep) -> dict[str, Any]:
    """Give an item back (with a reason); it goes to another reviewer, never back to you."""
    try:
        return skip_item(engine, lease_id, reviewer, body.reason)
    except QueueError as exc:
        raise _fail(exc) from None


@router.get("/v1/projects/{project_id}/review/progress", response_model=Progress)
def review_progress(
    project: ReviewerProjectDep,
    reviewer: ReviewerDep,
    session: SessionDep,
    queue: str = Query("review", pattern="^(review|incident)$"),
) -> dict[str, Any]:
    return stats.progress(session, project.id, queue, reviewer)


# --- dashboards (reviewer or admin) ------------------------------------------------------


@router.get("/v1/projects/{project_id}/review/stats", response_model=ReviewStats)
def review_stats(
    project: ReviewerProjectDep, session: SessionDep, _: ReaderDep, hours: int = Query(24, ge=1, le=24 * 90)
) -> dict[str, Any]:
    """Queue depth, labels per reviewer per hour, override rates with / without pre-label."""
    return stats.review_stats(session, project.id, hours)


@router.get("/v1/projects/{project_id}/review/labels", response_model=ReviewLabelsPage)
def review_labels(
    project: ReviewerProjectDep,
    session: SessionDep,
    reader: ReaderDep,
    annotator: str | None = Query(None, max_length=200, pattern=r"^[^\x00]*$"),
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor: the last label_id of the previous page"),
    limit: int = Query(500, ge=1, le=5000),
) -> dict[str, Any]:
    """Review and audit labels of a project, in id order. A reviewer sees only their own
    (others' answers would anchor theirs); the admin sees all, or one ``annotator``'s."""
    if reader is not None:
        if annotator not in (None, reader.name):
            raise HTTPException(403, "reviewers can read their own labels only")
        annotator = reader.name
    rows = stats.list_labels(session, project.id, annotator, after, limit)
    next_after = rows[-1]["label_id"] if len(rows) == limit else None
    return {"labels": rows, "next_after": next_after}


@router.get("/v1/projects/{project_id}/review/quality", response_model=QualityTable)
def review_quality(project: ReviewerProjectDep, session: SessionDep, _: ReaderDep) -> dict[str, Any]:
    """Per reviewer: labels, median seconds per label, honeypot accuracy with its 95 % exact
    interval, agreement with peers, speed flags, quarantined labels, paused and why."""
    return {"reviewers": quality.quality_table(session, project.id)}


@router.get("/v1/projects/{project_id}/review/control-charts", response_model=ControlCharts)
def review_control_charts(
    project: ReviewerProjectDep,
    session: SessionDep,
    _: ReaderDep,
    window: int = Query(20, ge=5, le=1000, description="labels per point on a reviewer's chart"),
    sigma: float = Query(3.0, ge=1.0, le=6.0, allow_inf_nan=False, description="limits at p̄ ± sigma SE"),
    run_length: int = Query(8, ge=2, le=50, description="points in a row on one side that flag a drift"),
) -> dict[str, Any]:
    """p-charts of agreement with the reference (honeypot or gold answer, else the side most of
    at least two other reviewers took): one per reviewer, a point per ``window`` of their
    labels, and one over batches (jobs), a point per batch. Each point has its control limits
    and the rules it breaks: outside the limits, or the end of ``run_length`` points in a row on
    one side of the centre line (a drift)."""
    return control_charts(session, project.id, window=window, sigma=sigma, run_length=run_length)


@router.post("/v1/reviewers/{reviewer_id}/resume", response_model=Resumed)
def resume_reviewer(
    reviewer_id: int, body: ReviewerResume, session: SessionDep, _: AdminDep
) -> dict[str, Any]:
    """Lift a reviewer's pause on a project; ``release: true`` also lets their held-back
    (quarantined) labels count again. 409 when they are not paused there."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise HTTPException(404, f"reviewer {reviewer_id} not found")
    if session.get(Project, body.project_id) is None:
        raise HTTPException(404, f"project {body.project_id} not found")
    try:
        result = quality.resume(session, body.project_id, reviewer, body.release)
    except quality.NotPaused as exc:
        raise HTTPException(409, str(exc)) from None
    session.commit()
    return result


# --- admin -------------------------------------------------------------------------------


@router.get("/v1/admin/pairs/{pair_id}/redaction", response_model=RedactionMapping)
def read_redaction_mapping(pair_id: int, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """Token -> original text for one pair (PII: admins only)."""
    if session.get(Pair, pair_id) is None:
        raise HTTPException(404, f"pair {pair_id} not found")
    mapping = stats.redaction_for_admin(session, pair_id)
    if mapping is None:
        raise HTTPException(404, f"pair {pair_id} has not been redacted yet (it was never queued for review)")
    return mapping


@router.post("/v1/admin/review/prepare", response_model=PreparePass)
def prepare_now(engine: EngineDep, _: AdminDep) -> dict[str, int]:
    """Run one pass of the queue's background work now (backfill, expiry, redaction,
    embeddings, priority)."""
    return prepare_batch(engine)
