"""A serving process's background work, beside the API: judging, review preparation and
calibration maintenance, in a child process the API supervises.

* :func:`run_background` runs the three loops until stopped: the worker
  (:mod:`api.judging.worker`), the review queue's preparation (:mod:`api.review.prepare`) and
  :func:`maintenance_loop` (refits, kill switch, drift: :func:`api.calibrate.refits.maintain`).
  ``prelabel worker`` runs it too.
* :class:`BackgroundProcess` is the API's child process that runs it; :func:`supervise` replaces
  that child, and the ingest processes, when they die.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.calibrate.refits import maintain
from api.child_processes import adopt_environment, child_context
from api.db import make_engine
from api.ingest.pool import IngestPool
from api.judging.worker import Worker
from api.review.prepare import prepare_loop
from api.settings import Settings

log = logging.getLogger("prelabel.background")

MAINTAIN_EVERY_S = 5.0  # how often refits, the kill switch and the drift check run


async def maintenance_loop(engine: Engine, stop: asyncio.Event, every_s: float = MAINTAIN_EVERY_S) -> None:
    """Calibration maintenance every ``every_s`` seconds until ``stop``: refit projects with
    enough new labels, check the kill switch and drift (:func:`api.calibrate.refits.maintain`).
    A failed pass is logged and tried again; it never stops judging."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        if stop.is_set():
            return
        try:
            actions = await asyncio.to_thread(maintain, engine)
        except Exception:  # noqa: BLE001 - a failed refit must not stop the background work
            log.exception("calibration maintenance failed")
            continue
        for action in actions:
            log.info(action)


async def run_background(
    engine: Engine, stop: asyncio.Event, *, worker: Worker | None, prepare: bool, until_idle: bool = False
) -> int:
    """A process's background work until ``stop``: judging (``worker``) and the review queue's
    preparation (redaction, embeddings, priority). Returns the pairs the worker judged.

    ``until_idle``: return once the worker finds nothing left to judge (``prelabel worker
    --until-idle``). Used by the API's lifespan and by ``prelabel worker``.
    """
    preparing = asyncio.create_task(prepare_loop(engine, stop)) if prepare else None
    # Maintenance beside judging (the worker's labels and pairs are what it refits on); not
    # in a run that ends once the queue is empty.
    maintaining = (
        asyncio.create_task(maintenance_loop(engine, stop)) if worker is not None and not until_idle else None
    )
    try:
        if worker is not None:
            return await worker.run(None if until_idle else stop, until_idle=until_idle)
        await stop.wait()
        return 0
    finally:
        stop.set()
        for task in (preparing, maintaining):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=30)


BACKGROUND_NICENESS = 10
SUPERVISE_EVERY_S = 2.0  # how soon a dead background process is replaced


def _background_main(
    settings: Settings, database_url: str, run_worker: bool, prepare: bool, environment: dict[str, str]
) -> None:
    """The API's background process: :func:`run_background` until SIGTERM or SIGINT, or until
    the API process that started it is gone (so a killed API leaves no worker judging on)."""
    adopt_environment(environment)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("prelabel").setLevel(logging.INFO)
    if hasattr(os, "nice"):  # requests first: judging takes the CPU the API leaves (not on Windows)
        os.nice(BACKGROUND_NICENESS)
    engine = make_engine(database_url)
    # A child of the fork server, this process does not inherit the API's settings: judging allocates per call
    # (litellm's objects, rows) and at the default threshold the collector rescanned the
    # long-lived heap (README, judge path CPU).
    tune_gc_for_serving()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C reaches the whole process group
            with contextlib.suppress(NotImplementedError):  # Windows: stopped with the API instead
                loop.add_signal_handler(signum, stop.set)
        parent = multiprocessing.parent_process()
        if parent is not None:
            # A daemon thread, not asyncio.to_thread: asyncio.run would wait for it on exit.
            def watch() -> None:
                parent.join()
                loop.call_soon_threadsafe(stop.set)

            threading.Thread(target=watch, name="prelabel-parent-watch", daemon=True).start()
        worker = Worker(engine, settings) if run_worker else None
        await run_background(engine, stop, worker=worker, prepare=prepare)

    try:
        asyncio.run(main())
    finally:
        engine.dispose()


class BackgroundProcess:
    """The API's background work (judging, review preparation) in a child process.

    On the API's event loop, judging stalled every request; on a thread of the API process it
    still competed with requests for the GIL (litellm's CPU work per call, redaction,
    embeddings): /healthz p95 206 ms against 31 ms from a separate process (`prelabel bench
    load`, 5 clients x 200 pairs). The child connects to the same database by URL with a pool
    of its own. Started by the fork server (:mod:`api.child_processes`), not forked from the
    API process, which has threads.
    """

    def __init__(self, settings: Settings, database_url: str, *, run_worker: bool, prepare: bool) -> None:
        self._args = (settings, database_url, run_worker, prepare)
        self.restarts = 0
        self.process = self._new_process()

    def _new_process(self) -> multiprocessing.process.BaseProcess:
        return child_context().Process(
            target=_background_main,
            args=(*self._args, dict(os.environ)),
            name="prelabel-background",
            daemon=True,  # ended with the API process even if stop() is never reached
        )

    def start(self) -> None:
        self.process.start()

    def alive(self) -> bool:
        return self.process.is_alive()

    def restart_if_dead(self) -> bool:
        """Start a new child when the last one died (a crash, the OOM killer): its leased pairs
        are judged again once their leases expire. True when it had to."""
        if self.process.pid is None or self.process.is_alive():
            return False
        log.error("background process exited with code %s; starting a new one", self.process.exitcode)
        self.restarts += 1
        self.process = self._new_process()
        self.process.start()
        return True

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM, then wait up to ``timeout_s`` for in-flight pairs to be stored (blocking)."""
        if self.process.pid is None:
            return
        self.process.terminate()
        self.process.join(timeout_s)
        if self.process.is_alive():
            log.warning("background process did not stop within %.0f s; killing it", timeout_s)
            self.process.kill()
            self.process.join()


async def supervise(
    background: BackgroundProcess | None, ingest_pool: IngestPool | None, every_s: float = SUPERVISE_EVERY_S
) -> None:
    """Keep the API's background process and its ingest processes running as long as the API runs."""
    while True:
        await asyncio.sleep(every_s)
        if background is not None:
            await asyncio.to_thread(background.restart_if_dead)
        if ingest_pool is not None:
            try:
                await ingest_pool.restore_if_broken()
            except Exception:  # noqa: BLE001 - /healthz says "down" (503) until a pass succeeds
                log.exception("could not restart the ingest processes; trying again")


def tune_gc_for_serving() -> None:
    """Garbage-collector settings for a serving process, once its modules are loaded.

    A burst of job posts keeps ~10^5 objects alive at once (bodies, parsed pairs, rows), and
    at CPython's default threshold (700 allocations) the cyclic collector kept rescanning
    them: 20 concurrent 1,000-pair posts took 2.2-2.6 s to store on PostgreSQL, 1.2-1.7 s
    with the young generation collected every 50,000 (`prelabel bench load`). Freezing what
    start-up loaded keeps those objects out of every full collection too.
    """
    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])


@contextlib.asynccontextmanager
async def running(
    app: FastAPI, settings: Settings, engine: Engine, *, run_worker: bool, prepare: bool
) -> AsyncIterator[None]:
    """The API's processes beside it while it serves: the background process (judging, review
    preparation, maintenance) where it judges or prepares, the ingest processes where jobs are
    stored out of process, and the supervisor that replaces them; stopped in that order's reverse."""
    background = None
    if run_worker or prepare:
        # The engine's URL, not settings.database_url: the database this API serves.
        url = engine.url.render_as_string(hide_password=False)
        background = BackgroundProcess(settings, url, run_worker=run_worker, prepare=prepare)
        await asyncio.to_thread(background.start)
    app.state.background = background
    ingest_processes = settings.ingest_processes
    if ingest_processes is None:  # the default: see Settings.ingest_processes
        ingest_processes = 1 if engine.dialect.name == "sqlite" else 0
    ingest_pool = None
    if ingest_processes:
        ingest_pool = IngestPool(engine.url.render_as_string(hide_password=False), ingest_processes)
        app.state.ingest_pool = ingest_pool
        await ingest_pool.start()
    # The interval read now, not bound at definition: tests stretch it to watch a "down".
    supervisor = None
    if background is not None or ingest_pool is not None:
        supervisor = asyncio.create_task(supervise(background, ingest_pool, SUPERVISE_EVERY_S))
    try:
        yield
    finally:
        if supervisor is not None:  # first: it must not replace what is being stopped
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        if app.state.ingest_pool is not None:
            await asyncio.to_thread(app.state.ingest_pool.stop)
        if background is not None:
            await asyncio.to_thread(background.stop)
