"""Job posts parsed and stored in processes of their own, beside the API process.

Parsing, validating, hashing and inserting a large job is Python work, and on SQLite the
insert itself runs inside the writing process. In the API process that CPU shares one GIL
with every other request, so 20 clients posting at once queued there behind each other and
behind status polls. In a pool process it runs on another core while the API process only
moves bytes. The pool process connects to the same database by URL
(SQLite writers of every process queue on one lock file: ``api.db``). The API uses one on
SQLite by default (``Settings.ingest_processes``).

A pool process that dies (the OOM killer) breaks the pool: a new pool is started and the
post is tried once more, which is safe because a post stores all or nothing and a re-post of
the same pairs is the same job.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine

from api.child_processes import adopt_environment, child_context, exit_with_parent
from api.db import make_engine
from api.ingest import store

_engine: Engine | None = None  # the pool process's own engine, made by _start


def _start(database_url: str, environment: dict[str, str]) -> None:
    """Each pool process: the API's environment, an engine of its own, and an exit when the API
    process is gone."""
    global _engine
    adopt_environment(environment)
    _engine = make_engine(database_url)
    exit_with_parent()


def _post_job(project_id: int, body: bytes, content_type: str, limits: dict[str, Any]) -> store.JobPosted:
    assert _engine is not None, "the pool's initializer makes the engine"
    return store.post_job(_engine, project_id, body, content_type, **limits)


def _ready() -> bool:
    return _engine is not None


class IngestPool:
    """``processes`` child processes that run :func:`api.ingest.store.post_job`."""

    def __init__(self, database_url: str, processes: int) -> None:
        self._database_url = database_url
        self.processes = processes
        self.restarts = 0
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=child_context(),  # the API process has threads: not forked from it
            initializer=_start,
            initargs=(self._database_url, dict(os.environ)),
        )

    async def start(self) -> None:
        """Start the processes now (their imports take seconds), not on the first post."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _ready) for _ in range(self.processes)))

    async def post_job(
        self, project_id: int, body: bytes, content_type: str, **limits: Any
    ) -> store.JobPosted:
        call = partial(_post_job, project_id, body, content_type, limits)
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            return await loop.run_in_executor(executor, call)
        except BrokenProcessPool:
            self._replace(executor)
            return await loop.run_in_executor(self._executor, call)

    def _replace(self, executor: ProcessPoolExecutor) -> bool:
        """A new pool for a broken ``executor``, unless someone replaced it already."""
        if self._executor is not executor:
            return False
        self._executor = self._new_executor()
        self.restarts += 1
        executor.shutdown(wait=False, cancel_futures=True)
        return True

    def broken(self) -> bool:
        """A pool process died (killed, the OOM killer), whether or not a post has found out yet.

        The executor's manager thread watches every process's sentinel and marks the executor
        broken at once; the standard library exposes that flag only as ``_broken``.
        """
        return bool(getattr(self._executor, "_broken", False))

    async def restore_if_broken(self) -> bool:
        """Replace a broken pool and start its processes (the API's supervisor calls this, so a
        dead pool is not left for the next post to find). True when it had to."""
        executor = self._executor
        if not self.broken() or not self._replace(executor):
            return False
        await self.start()
        return True

    def stop(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
