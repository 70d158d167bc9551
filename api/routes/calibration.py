"""The calibration gate: refit now, read its state, read its report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse

from api.calibrate import refits, reports
from api.calibrate.reports_html import render_report_html
from api.deps import ClientProjectDep, EngineDep, MemberProjectDep
from api.errors import bounded_path_ids, errors, json_errors
from api.schemas import CalibrationState, CalibrationVersionPublic

router = APIRouter(
    prefix="/v1/projects/{project_id}",
    tags=["calibration"],
    dependencies=[Depends(bounded_path_ids)],
    responses=errors(401, 403, 404, 422),
)


@router.post("/calibration/refit", response_model=CalibrationVersionPublic)
def refit(project: ClientProjectDep, engine: EngineDep) -> dict[str, Any]:
    """Refit the gate on the usable labels now, store a new version, re-route the pairs."""
    version = refits.refit(engine, project, trigger="manual")
    return jsonable_encoder(reports.version_public(version))


@router.get("/calibration", response_model=CalibrationState)
def calibration(project: MemberProjectDep, engine: EngineDep) -> dict[str, Any]:
    """Gate state (open/closed, reason, threshold, guarantee, coverage), versions, report data."""
    return jsonable_encoder(reports.calibration_state(engine, project))


@router.get(
    "/calibration/report.html",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string", "description": "the report page"}}}},
        **json_errors(401, 403, 404, 422),
    },
)
def calibration_report(project: MemberProjectDep, engine: EngineDep) -> HTMLResponse:
    state = reports.calibration_state(engine, project)
    return HTMLResponse(render_report_html(state["report"]))
