"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlmodel import Session

from api import metrics
from api.deps import EngineDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,  # keys of processes this API does not run are absent
    responses={503: {"model": Health, "description": "The API's background or ingest process is down"}},
)
def healthz(engine: EngineDep, request: Request, response: Response) -> dict[str, str | int]:
    """The database answers, and the API's own background process (judging, review
    preparation) is running: "off" when this API does not run one (a separate `prelabel
    worker` judges), "down" (503) between its death and its replacement. Where job posts are
    stored in processes of their own: ``ingest`` "running", or "down" (503) from a process's
    death until the supervisor replaces the pool; how many, and how many times replaced."""
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
    background = getattr(request.app.state, "background", None)
    status: dict[str, str | int] = {"status": "ok", "database": engine.dialect.name, "background": "off"}
    if background is not None:
        status["background"] = "running" if background.alive() else "down"
        status["background_restarts"] = background.restarts
        if status["background"] == "down":
            status["status"] = "degraded"
            response.status_code = 503
    ingest_pool = getattr(request.app.state, "ingest_pool", None)
    if ingest_pool is not None:  # processes that store job posts, replaced when one dies
        status["ingest"] = "down" if ingest_pool.broken() else "running"
        status["ingest_processes"] = ingest_pool.processes
        status["ingest_restarts"] = ingest_pool.restarts
        if status["ingest"] == "down":
            status["status"] = "degraded"
            response.status_code = 503
    return status


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def prometheus_metrics(engine: EngineDep) -> Response:
    return Response(metrics.render(engine), media_type=CONTENT_TYPE_LATEST)
