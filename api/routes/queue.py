"""The review queue steered over HTTP: list and search what waits, assign it to reviewers.

Reviewers of the project (and the admin) list and search the queue; senior reviewers of the
project and the admin assign items, by id or by filter, and give them back to the pool.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import LeadDep, ReaderDep, ReviewerProjectDep, SessionDep
from api.errors import bounded_path_ids, errors
from api.models import Reviewer
from api.review import assignments, search
from api.review.assignments import AssignmentError
from api.schemas import (
    Assigned,
    Assignments,
    AssignRequest,
    QueueFilter,
    QueuePage,
    Unassigned,
    UnassignRequest,
)

router = APIRouter(
    tags=["review"], dependencies=[Depends(bounded_path_ids)], responses=errors(400, 401, 403, 404, 422)
)


def query_filter(
    reason: list[str] = Query(
        [], max_length=50, description="routing reason code; repeat for any of several"
    ),
    job: list[str] = Query([], max_length=50, description="the source: a job id; repeat for any of several"),
    meta: list[str] = Query(
        [],
        max_length=10,
        description="metadata equality, `key:value` (the value compared as text); repeat to AND",
    ),
    text: str | None = Query(None, max_length=200, description="case-insensitive, in the redacted texts"),
) -> QueueFilter:
    """The filter from the query string, checked by :class:`QueueFilter` (422 naming the field)."""
    pairs: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    for i, entry in enumerate(meta):
        key, sep, value = entry.partition(":")
        if not sep or not key:
            problems.append(
                {"loc": ("query", "meta", i), "msg": "write meta as key:value", "type": "value_error"}
            )
        pairs[key] = value
    try:
        flt = QueueFilter.model_validate({"reasons": reason, "jobs": job, "metadata": pairs, "text": text})
    except ValidationError as exc:
        problems += [
            {**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_input=False, include_context=False)
        ]
    if problems:
        raise RequestValidationError(problems)
    return flt


def _caller_name(reviewer: Reviewer | None) -> str:
    return "admin" if reviewer is None else f"reviewer:{reviewer.id}"


@router.get("/v1/projects/{project_id}/review/queue", response_model=QueuePage)
def list_queue(
    project: ReviewerProjectDep,
    session: SessionDep,
    reader: ReaderDep,
    flt: QueueFilter = Depends(query_filter),
    queue: str = Query("review", pattern="^(review|incident)$"),
    assigned: search.Assigned = Query("any", description="any | me (assigned to you) | none (unassigned)"),
    offset: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    """What waits in the queue and matches the filter, best first, with who it is assigned
    to: redacted text only (a text search never sees hidden personal data)."""
    page = search.list_items(session, project.id, queue, flt, reader, assigned, offset, limit)
    session.commit()  # redactions a text search stored
    return page


@router.get("/v1/projects/{project_id}/review/assignments", response_model=Assignments)
def list_assignments(project: ReviewerProjectDep, session: SessionDep, _: LeadDep) -> dict[str, Any]:
    """The project's reviewers and the assignments on waiting items (standing or why not)."""
    return assignments.overview(session, project.id)


@router.post("/v1/projects/{project_id}/review/assignments", response_model=Assigned, responses=errors(409))
def assign(
    project: ReviewerProjectDep, body: AssignRequest, session: SessionDep, lead: LeadDep
) -> dict[str, Any]:
    """Assign items (``item_ids``, or every waiting item matching ``filter`` up to ``limit``)
    to a reviewer of the project: they are served them first, nobody else is while the
    assignment stands. Audited (``review_assigned``)."""
    try:
        result = assignments.assign(session, project.id, body, _caller_name(lead))
    except AssignmentError as exc:
        session.rollback()
        raise HTTPException(exc.status, exc.detail) from None
    session.commit()
    return result


@router.post("/v1/projects/{project_id}/review/assignments/release", response_model=Unassigned)
def unassign(
    project: ReviewerProjectDep, body: UnassignRequest, session: SessionDep, lead: LeadDep
) -> dict[str, Any]:
    """Give items (``item_ids``, or all of ``reviewer_id``'s) back to the pool. Audited
    (``review_unassigned``)."""
    result = assignments.unassign(session, project.id, body, _caller_name(lead))
    session.commit()
    return result
