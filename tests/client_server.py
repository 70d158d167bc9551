"""A live API for the client's tests: uvicorn on a free loopback port (tests/helpers.live_api),
SQLite copied from the migrated template, and optionally a worker judging in a thread beside it
(the client's ``wait`` must see a job move). This module holds no tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from sqlalchemy.engine import Engine

from api.judging.worker import Worker
from api.main import create_app
from api.settings import Settings
from tests.helpers import copy_sqlite, fast_settings, live_api, sqlite_url_for

JUDGES = ["mock/a", "mock/b"]  # in-process judges through litellm: no network, deterministic verdicts


class LiveApi(NamedTuple):
    url: str
    engine: Engine
    settings: Settings


@contextmanager
def _judging(engine: Engine, settings: Settings) -> Iterator[None]:
    """A worker judging whatever is posted until the block ends."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(Worker(engine, settings, "client-tests").run(stop),),
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        loop.close()


@contextmanager
def live_server(folder: Path, migrated: Path, *, judging: bool) -> Iterator[LiveApi]:
    engine = copy_sqlite(migrated, folder / "api.db")
    settings = fast_settings(sqlite_url_for(folder / "api.db"), export_dir=str(folder / "exports"))
    try:
        with live_api(create_app(settings, engine, run_worker=False)) as url:
            if judging:
                with _judging(engine, settings):
                    yield LiveApi(url, engine, settings)
            else:
                yield LiveApi(url, engine, settings)
    finally:
        engine.dispose()
