"""Human labels: import (JSON or NDJSON, all-or-nothing) and list."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.deps import ClientProjectDep, EngineDep, SessionDep, SettingsDep
from api.errors import bounded_path_ids, errors
from api.fields import MAX_ID
from api.ingest import store
from api.media_types import batch_request_body
from api.models import Label, Pair
from api.schemas import LabelIn, LabelsPage, LabelsStored
from api.vocab import LabelSource

router = APIRouter(
    prefix="/v1/projects/{project_id}",
    tags=["calibration"],
    dependencies=[Depends(bounded_path_ids)],
    responses=errors(401, 403, 404, 422),
)


@router.post(
    "/labels",
    response_model=LabelsStored,
    status_code=201,
    responses=errors(409, 413),
    openapi_extra=batch_request_body(
        "labels",
        LabelIn,
        "Human labels by client_id: label (A>>B, A>B, tie, B>A, B>>A, or A/B), both_bad, "
        "safety_flag, rationale, source (gold | import), annotator, idempotency_key. Only gold "
        "labels (a random sample) calibrate the gate. Review, audit, calibration and adjudicated "
        "labels come from reviewers through the review queue: a batch with one such line is "
        "refused whole (403).",
    ),
)
async def import_labels(
    request: Request, project: ClientProjectDep, session: SessionDep, engine: EngineDep, settings: SettingsDep
) -> JSONResponse:
    """Store human labels. All-or-nothing; the same idempotency key with the same label is a no-op."""
    # Authorised: give the request's pooled connection back before the body arrives (the
    # store uses a session of its own).
    session.close()
    body = await request.body()
    if len(body) > settings.max_request_bytes:
        raise HTTPException(413, f"request body exceeds {settings.max_request_bytes} bytes")
    content_type = request.headers.get("content-type", "application/json")
    try:
        # In the threadpool: parsing and storing on the event loop stalled every other request.
        stored = await run_in_threadpool(store.store_labels, engine, project, body, content_type)
    except store.LabelsForbidden as exc:
        return JSONResponse(
            status_code=403, content={"detail": str(exc), "errors": [e.__dict__ for e in exc.errors]}
        )
    except store.LabelsRefused as exc:
        return JSONResponse(
            status_code=422, content={"detail": str(exc), "errors": [e.__dict__ for e in exc.errors]}
        )
    except store.LabelKeyConflict as exc:
        return JSONResponse(status_code=409, content={"detail": str(exc), "keys": exc.keys})
    except IntegrityError:
        raise HTTPException(
            409, "a concurrent request stored some of these labels; retry to see which"
        ) from None
    return JSONResponse(
        status_code=201, content={"labels_created": stored.created, "labels_existing": stored.existing}
    )


@router.get("/labels", response_model=LabelsPage)
def list_labels(
    project: ClientProjectDep,
    engine: EngineDep,
    source: LabelSource | None = None,
    limit: int = Query(1000, ge=1, le=5000),
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor: the last label id of the previous page"),
) -> LabelsPage:
    with Session(engine) as session:
        query = (
            select(Label, Pair.client_id)
            .join(Pair, col(Pair.id) == col(Label.pair_id))
            .where(Label.project_id == project.id, col(Label.id) > after)
        )
        if source:
            query = query.where(Label.source == source)
        rows = session.exec(query.order_by(col(Label.id)).limit(limit)).all()
    return LabelsPage.model_validate(
        {"labels": [{**label.model_dump(), "client_id": client_id} for label, client_id in rows]}
    )
