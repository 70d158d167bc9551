"""Human labels: import (JSON or NDJSON, all-or-nothing) and list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.deps import EngineDep, ProjectDep, SettingsDep
from api.models import Label, Pair
from api.pipeline import ingest

router = APIRouter(prefix="/v1/projects/{project_id}", tags=["calibration"])


@router.post(
    "/labels",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"labels": {"type": "array"}}}
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
            "description": "Human labels by client_id: label (A>>B, A>B, tie, B>A, B>>A, or A/B), both_bad, "
            "safety_flag, rationale, source (import | review | audit | gold), annotator, idempotency_key. "
            "Only gold (a random sample) and audit labels calibrate the gate.",
        }
    },
)
async def import_labels(
    request: Request, project: ProjectDep, engine: EngineDep, settings: SettingsDep
) -> JSONResponse:
    """Store human labels. All-or-nothing; the same idempotency key with the same label is a no-op."""
    body = await request.body()
    if len(body) > settings.max_request_bytes:
        raise HTTPException(413, f"request body exceeds {settings.max_request_bytes} bytes")
    content_type = request.headers.get("content-type", "application/json")
    try:
        stored = ingest.store_labels(engine, project, body, content_type)
    except ingest.LabelsRefused as exc:
        return JSONResponse(
            status_code=422, content={"detail": str(exc), "errors": [e.__dict__ for e in exc.errors]}
        )
    except ingest.LabelKeyConflict as exc:
        return JSONResponse(status_code=409, content={"detail": str(exc), "keys": exc.keys})
    except IntegrityError:
        raise HTTPException(
            409, "a concurrent request stored some of these labels; retry to see which"
        ) from None
    return JSONResponse(
        status_code=201, content={"labels_created": stored.created, "labels_existing": stored.existing}
    )


@router.get("/labels")
def list_labels(
    project: ProjectDep, engine: EngineDep, source: str | None = None, limit: int = 1000, after: int = 0
) -> dict[str, Any]:
    with Session(engine) as session:
        query = (
            select(Label, Pair.client_id)
            .join(Pair, Pair.id == Label.pair_id)
            .where(Label.project_id == project.id, Label.id > after)
        )
        if source:
            query = query.where(Label.source == source)
        rows = session.exec(query.order_by(Label.id).limit(min(limit, 5000))).all()
    return jsonable_encoder(
        {"labels": [{**label.model_dump(), "client_id": client_id} for label, client_id in rows]}
    )
