"""The dataset out: a project's results (final labels, NDJSON pages) and its exports."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from api.deps import ClientProjectDep, EngineDep, SessionDep, SettingsDep
from api.errors import bounded_path_ids, errors, json_errors
from api.export import results, snapshots
from api.fields import MAX_ID
from api.media_types import NDJSON
from api.models import Export
from api.schemas import ExportCreate, ExportPublic

router = APIRouter(
    prefix="/v1/projects/{project_id}",
    tags=["exports"],
    dependencies=[Depends(bounded_path_ids)],
    responses=errors(401, 403, 404, 422),
)

NumberPath = Path(ge=1, le=MAX_ID, description="the export's number within the project")


@router.get(
    "/results",
    response_class=Response,
    responses={
        200: {
            "content": {
                NDJSON: {
                    "schema": {
                        "type": "string",
                        "description": "one PairResult per line, plus job_id, prompt, responses, metadata",
                    }
                }
            },
            "headers": {"x-next-after": {"description": "cursor of the next page; absent on the last"}},
        },
        **json_errors(401, 403, 404, 422),
    },
)
def project_results(
    project: ClientProjectDep,
    session: SessionDep,
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor: the x-next-after of the previous page"),
    limit: int = Query(1000, ge=1, le=5000),
    route: Literal["auto_accept", "review", "incident"] | None = Query(None),
    source: Literal["human", "auto", "none"] | None = Query(None, description="label source; none: no label"),
    split: Literal["train", "frozen_eval"] | None = Query(None),
) -> Response:
    """One page of the project's per-pair results as NDJSON, with text and final labels
    (a human label beats an auto-accepted judge label; ``final`` says where it came from)."""
    rows, next_after = results.project_result_rows(
        session, project, after, limit, route=route, source=source, split=split
    )
    body = "".join(json.dumps(jsonable_encoder(r)) + "\n" for r in rows)
    headers = {"x-next-after": str(next_after)} if next_after is not None else {}
    return Response(body, media_type=NDJSON, headers=headers)


@router.post("/exports", response_model=ExportPublic, status_code=201, responses=errors(400, 409))
def create_export(
    body: ExportCreate, project: ClientProjectDep, engine: EngineDep, settings: SettingsDep
) -> JSONResponse:
    """Export the project's dataset (dpo, hf, label-studio, argilla) as its next numbered,
    immutable snapshot, with a manifest. A train export the promotion gate refuses is a 409
    naming every reason, unless ``force`` with a ``reason``. ``redact`` (default: the project's
    ``routing.redact_exports``) replaces personal data and secrets by typed tokens; the
    manifest's ``redacted`` says which an export is."""
    redact = body.redact if body.redact is not None else project.routing_settings().redact_exports
    names = project.aspect_settings().names
    if body.dpo_by not in ("overall", *(("weighted", *names) if names else ())):
        choices = f", 'weighted' or one of {names}" if names else " (the project has no aspects)"
        raise HTTPException(422, f"dpo_by: {body.dpo_by!r} is not 'overall'{choices}")
    request = snapshots.ExportRequest(
        format=body.format,
        split=body.split,
        min_source=body.min_source,
        force=body.force,
        reason=body.reason,
        redact=redact,
        dpo_by=body.dpo_by,
    )
    try:
        export = snapshots.create_export(engine, project, request, export_dir=FilePath(settings.export_dir))
    except snapshots.ExportRefused as exc:
        return JSONResponse(
            status_code=409,
            content={"detail": f"export refused by the promotion gate: {exc}", "errors": exc.reasons},
        )
    return JSONResponse(status_code=201, content=jsonable_encoder(snapshots.export_view(export)))


@router.get("/exports", response_model=list[ExportPublic])
def list_exports(project: ClientProjectDep, session: SessionDep) -> list[dict[str, Any]]:
    """The project's exports, oldest first, each with its manifest."""
    return jsonable_encoder([snapshots.export_view(e) for e in snapshots.list_exports(session, project.id)])


def _export(session: SessionDep, project_id: int, number: int) -> Export:
    export = snapshots.get_export(session, project_id, number)
    if export is None:
        raise HTTPException(404, f"project {project_id} has no export {number}")
    return export


@router.get("/exports/{number}", response_model=ExportPublic)
def read_export(project: ClientProjectDep, session: SessionDep, number: int = NumberPath) -> dict[str, Any]:
    return jsonable_encoder(snapshots.export_view(_export(session, project.id, number)))


@router.get(
    "/exports/{number}/download",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        **json_errors(401, 403, 404, 422),
    },
)
def download_export(project: ClientProjectDep, session: SessionDep, number: int = NumberPath) -> FileResponse:
    """The export's files (data, manifest.json, README.md, rows.sha256) as one zip."""
    export = _export(session, project.id, number)
    directory = FilePath(export.path)
    if not directory.is_dir():
        raise HTTPException(404, f"export {number}'s files are gone from {directory}")
    session.close()
    work = tempfile.mkdtemp(prefix="prelabel-download-")
    archive = shutil.make_archive(os.path.join(work, f"export-{number}"), "zip", root_dir=directory)
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=f"{project.name}-export-{number}-{export.format}.zip",
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )
