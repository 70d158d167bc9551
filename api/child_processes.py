"""How the API starts its child processes: the background process and the ingest processes.

Not forked from the API process, which has threads (uvicorn's, the database pool's): a fork
copies held locks. Spawned, every child imported the service again (~4 s of CPU: pandas,
SQLAlchemy, FastAPI's models, the judge), and a crashed child came back only after that. So
children come from a fork server: a fresh single-threaded interpreter, started once, that
imports :data:`PRELOADED` and forks each child from itself, ready in a fraction of a second.

A forked child starts with the fork server's environment, fixed when the server started;
:func:`adopt_environment` gives it the API process's environment of the moment instead, as a
spawned child had (a setting changed since, a directory of replay files).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the fork server's context class does not exist on Windows
    from multiprocessing.context import ForkServerContext, SpawnContext

# What every child needs loaded; the fork server imports them once.
PRELOADED = ("api.background", "api.ingest.pool")


def child_context() -> ForkServerContext | SpawnContext:
    """The fork server where the platform has one (Linux, macOS), else spawn (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOADED))
    return context


def adopt_environment(environment: dict[str, str]) -> None:
    """In a child: the environment the API process had when it asked for this child."""
    os.environ.clear()
    os.environ.update(environment)


def exit_with_parent() -> None:
    """In a pool's child: exit as soon as the process that started it is gone (a killed API or
    judging process leaves no orphan behind)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=watch, name="prelabel-parent-watch", daemon=True).start()
