"""Agreement between reviewers (per project, reviewer pair, batch) and the adjudication queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlmodel import Session

from api.deps import EngineDep, ReaderDep, ReviewerProjectDep, SeniorDep, SessionDep, SettingsDep
from api.errors import bounded_path_ids, errors
from api.review import adjudication
from api.review.agreement_batches import agreement_report
from api.review.queue import ADJUDICATION_QUEUE, QueueError, queue_is_empty_reason
from api.schemas import AgreementReport, NextItem

router = APIRouter(
    tags=["review"],
    dependencies=[Depends(bounded_path_ids)],
    responses=errors(400, 401, 403, 404, 409, 422),
)


@router.get("/v1/projects/{project_id}/agreement", response_model=AgreementReport)
def project_agreement(project: ReviewerProjectDep, session: SessionDep, _: ReaderDep) -> dict[str, Any]:
    """Agreement between the project's reviewers on the pairs two or more of them labelled:
    Cohen's kappa per reviewer pair, Fleiss' kappa, Krippendorff's alpha (ordinal on the
    five-point scale, nominal on sides), per batch (job) whether it calibrates, and each
    reviewer's Dawid--Skene accuracy and confusion matrix. Undefined statistics are null."""
    return agreement_report(session, project.id)


@router.post("/v1/projects/{project_id}/adjudication/next", response_model=NextItem)
def next_adjudication(
    project: ReviewerProjectDep, reviewer: SeniorDep, engine: EngineDep, settings: SettingsDep
) -> JSONResponse:
    """Lease the next disputed pair of a low-agreement batch (senior reviewers only), as
    ``review/next`` does; submit it through ``/v1/review/leases/{lease_id}/submit``. Its label
    (source ``adjudicated``) decides the pair."""
    try:
        item = adjudication.next_item(engine, project, reviewer, settings.review_lease_seconds)
    except QueueError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    if item is None:
        with Session(engine) as session:
            why = queue_is_empty_reason(session, project.id, ADJUDICATION_QUEUE)
        return JSONResponse({"item": None, "detail": why})
    return JSONResponse(jsonable_encoder({"item": item}))
