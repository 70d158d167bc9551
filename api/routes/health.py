"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlmodel import Session

from api import metrics
from api.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(engine: EngineDep) -> dict[str, str]:
    with Session(engine) as session:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {"status": "ok", "database": engine.dialect.name}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def prometheus_metrics(engine: EngineDep) -> Response:
    return Response(metrics.render(engine), media_type=CONTENT_TYPE_LATEST)
