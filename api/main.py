"""The FastAPI application, and the service's table of contents.

The flow, one package per stage (README, "Architecture"):

1. ingest: :mod:`api.ingest` (jobs of pairs and human labels, all or nothing)
2. judge: :mod:`api.judging` (the worker, leases, the judgment cache), over :mod:`judge`
3. calibrate: :mod:`api.calibrate` (refits, versions, report), over :mod:`calibration`
4. route: :mod:`api.routing` (pure rules, the one decision writer)
5. review: :mod:`api.review` (queue, leases, filters, assignments, redaction, honeypots, agreement)
6. export: :mod:`api.export` (final labels, results, the four formats)

HTTP: :mod:`api.routes` (one module per resource), bodies in :mod:`api.schemas`, who may call
what in :mod:`api.policy` (enforced by :mod:`api.deps`). Background work (judging, review
preparation, calibration maintenance) runs in a child process: :mod:`api.background`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import Engine
from starlette.routing import BaseRoute

from api import background as bg
from api.db import make_engine, upgrade
from api.errors import document_edge_answers, validation_error_handler
from api.media_types import JsonBodyMiddleware
from api.ratelimit import RateLimitMiddleware
from api.routes import (
    agreement,
    audit,
    calibration,
    docs,
    exports,
    health,
    jobs,
    labels,
    projects,
    queue,
    review,
)
from api.settings import Settings, get_settings

log = logging.getLogger("prelabel.api")

RESOURCES = (health, projects, jobs, review, queue, agreement, labels, calibration, audit, exports)


def _resource_routes() -> list[BaseRoute]:
    """Every resource's routes, as their routers built them at import: once per process.

    Handed to each app as they are, not through ``app.include_router``: FastAPI 0.165 builds an
    included router's routes again for every app, on its first request (0.17 s of CPU per app:
    each test's app, each ``create_app``). The routers carry their prefixes, dependencies and
    responses themselves and the inclusion added none, so the routes are the same. What an
    included route has and these lack is ``app.dependency_overrides``, which nothing here uses.
    """
    return [route for module in RESOURCES for route in module.router.routes]


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, run_worker: bool | None = None
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    run_worker = settings.run_worker_in_api if run_worker is None else run_worker
    # Review preparation runs where the API judges in-process, unless forced on or off.
    prepare = settings.review_prepare == "1" or (settings.review_prepare == "auto" and run_worker)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(upgrade, engine)
        async with bg.running(app, settings, engine, run_worker=run_worker, prepare=prepare):
            yield

    app = FastAPI(
        title="prelabel",
        version="0.1.0",
        description="Pre-label pairwise preference data with LLM judges in both orders; "
        "route what needs a human to review.",
        lifespan=lifespan,
        docs_url=None,  # served by api.routes.docs from packaged assets, not a CDN
        redoc_url=None,
        routes=_resource_routes(),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.ingest_pool = None  # the lifespan starts one where jobs are stored out of process
    app.add_exception_handler(RequestValidationError, validation_error_handler)  # type: ignore[arg-type]  # Starlette types every handler as taking Exception
    # The last added runs first: a flood is refused before its body type is looked at.
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(
        RateLimitMiddleware,
        writes_per_s=settings.rate_limit_writes_per_s,
        writes_burst=settings.rate_limit_writes_burst,
        next_per_s=settings.rate_limit_next_per_s,
        next_burst=settings.rate_limit_next_burst,
    )
    document_edge_answers(app)
    docs.install(app)
    return app
