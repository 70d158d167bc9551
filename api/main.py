"""The FastAPI application: routes per resource, and the one place background work starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.db import make_engine, upgrade
from api.pipeline.worker import Worker
from api.review.prepare import prepare_loop
from api.routes import calibration, docs, health, jobs, labels, projects, review
from api.settings import Settings, get_settings

log = logging.getLogger("prelabel.api")


async def run_background(
    engine: Engine, stop: asyncio.Event, *, worker: Worker | None, prepare: bool, until_idle: bool = False
) -> int:
    """A process's background work until ``stop``: judging (``worker``) and the review queue's
    preparation (redaction, embeddings, priority). Returns the pairs the worker judged.

    ``until_idle``: return once the worker finds nothing left to judge (``prelabel worker
    --until-idle``). Used by the API's lifespan and by ``prelabel worker``.
    """
    preparing = asyncio.create_task(prepare_loop(engine, stop)) if prepare else None
    try:
        if worker is not None:
            return await worker.run(None if until_idle else stop, until_idle=until_idle)
        await stop.wait()
        return 0
    finally:
        stop.set()
        if preparing is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(preparing, timeout=30)


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
        stop = asyncio.Event()
        worker = Worker(engine, settings) if run_worker else None
        task = None
        if worker is not None or prepare:
            task = asyncio.create_task(run_background(engine, stop, worker=worker, prepare=prepare))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=30)

    app = FastAPI(
        title="prelabel",
        version="0.1.0",
        description="Pre-label pairwise preference data with LLM judges in both orders; "
        "route what needs a human to review.",
        lifespan=lifespan,
        docs_url=None,  # served by api.routes.docs from packaged assets, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    for module in (health, projects, jobs, review, labels, calibration):
        app.include_router(module.router)
    docs.install(app)
    return app
