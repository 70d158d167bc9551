"""The FastAPI application; with ``run_worker`` it also judges in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.db import make_engine, upgrade
from api.routes import calibration, health, jobs, projects, review
from api.settings import Settings, get_settings
from api.worker import Worker

log = logging.getLogger("prelabel.api")


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, run_worker: bool | None = None
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    run_worker = settings.run_worker_in_api if run_worker is None else run_worker

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(upgrade, engine)
        stop = asyncio.Event()
        task = None
        if run_worker:
            app.state.worker = Worker(engine, settings)
            task = asyncio.create_task(app.state.worker.run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)

    app = FastAPI(
        title="prelabel",
        version="0.1.0",
        description="Pre-label pairwise preference data with LLM judges in both orders; "
        "route what needs a human to review.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.include_router(health.router)
    app.include_router(projects.router)
    app.include_router(jobs.router)
    app.include_router(review.router)
    app.include_router(calibration.router)
    return app
