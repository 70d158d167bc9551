"""Waits and time bounds that hold on a busy machine (this module holds no tests).

A CI machine may run other work on the same cores: a clean-clone suite at load average ~11 on
2 cores took 19 minutes, and every fixed wall-clock budget (60 s for 300 pairs, 90 s for 50)
became a failure. So a test never bets on how fast the machine is:

- ``wait_for_progress`` waits as long as the thing it watches keeps moving (pairs judged, a
  process's CPU seconds while it imports) and fails only after ``stall_s`` seconds in which
  nothing moved: a slow machine passes, a hung one still fails. ``StallWatch`` is the same
  rule for a polling loop that does work of its own between polls.
- ``cpu_seconds`` (api/tools/progress.py, which ``prelabel demo`` waits with too) is the
  progress of processes that show nothing else while they start up;
  ``run_process`` is ``subprocess.run`` bounded by it instead of a ``timeout``.
- ``Clock`` stops the service's clock for a test of leases a fraction of a second long: the
  test moves it, so no pause between two calls can let a lease run out by accident.
- ``slowdown`` measures how much slower than its own CPU time this process runs right now, for
  the few latency bounds that must stay in wall-clock seconds (a bound ``b`` becomes
  ``b * slowdown()``). Compute-time bounds measure CPU time (``time.process_time``) instead,
  which neighbours on the same cores do not inflate.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from api import models
from api.tools.progress import cpu_seconds

__all__ = [
    "HTTP_TIMEOUT_S",
    "Clock",
    "StallWatch",
    "cpu_seconds",
    "run_process",
    "slowdown",
    "wait_for_progress",
]

STALL_S = 120.0  # how long nothing may move before a wait gives up
# A test's own request to a live server (httpx's default is 5 s): a bound on a hung server
# only, never on a slow one.
HTTP_TIMEOUT_S = 120.0
POLL_S = 0.1
GIVE_UP_S = 1800.0  # a backstop for a live-lock whose progress never ends


class StallWatch:
    """Fails a wait once what it watches has not moved for ``stall_s`` seconds (or after
    ``GIVE_UP_S`` in all). For a polling loop with work of its own; ``wait_for_progress``
    is the loop without any."""

    def __init__(self, what: str, stall_s: float = STALL_S) -> None:
        self.what, self.stall_s = what, stall_s
        self.started = self.since = time.monotonic()
        self.last: object = None

    def saw(self, progress: object) -> None:
        """Record the latest snapshot (a count, a tuple of counts); raise when stalled."""
        now = time.monotonic()
        if progress != self.last:
            self.last, self.since = progress, now
        if now - self.since > self.stall_s:
            raise AssertionError(
                f"no progress for {self.stall_s:.0f} s waiting for {self.what} (last seen: {self.last!r})"
            )
        if now - self.started > GIVE_UP_S:
            raise AssertionError(
                f"still waiting for {self.what} after {GIVE_UP_S:.0f} s (last seen: {self.last!r})"
            )


def wait_for_progress(
    done: Callable[[], bool],
    progress: Callable[[], object] = lambda: None,
    what: str = "a condition",
    *,
    stall_s: float = STALL_S,
    every_s: float = POLL_S,
) -> float:
    """Poll ``done()`` until true; the monotonic time it became true.

    Fails when ``progress()`` (any comparable snapshot: a count, a tuple of counts) has not
    changed for ``stall_s`` seconds. Without ``progress`` the wait is bounded by ``stall_s``
    alone: for an event with nothing to watch on its way.
    """
    watch = StallWatch(what, stall_s)
    while not done():
        watch.saw(progress())
        time.sleep(every_s)
    return time.monotonic()


def run_process(command: list[str], **popen: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, capture_output=True, text=True, **popen)`` without a fixed
    timeout: it fails once the process and its children used no CPU second for ``STALL_S``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, **popen)
        try:
            wait_for_progress(
                lambda: process.poll() is not None, lambda: cpu_seconds(process.pid), " ".join(command[:6])
            )
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, out.read(), err.read())


def slowdown(sample_s: float = 0.05) -> float:
    """How many times longer than its CPU time a short pure-Python loop takes right now (1.0
    on an idle machine; ~2-3 with two busy processes on two cores). Never below 1."""
    wall_started, cpu_started = time.perf_counter(), time.thread_time()
    while time.thread_time() - cpu_started < sample_s:
        pass
    wall, cpu = time.perf_counter() - wall_started, time.thread_time() - cpu_started
    return max(1.0, wall / cpu)


class Clock:
    """The service's clock (``api.models.utcnow``) stopped at its start; only ``advance``
    moves it. ``install`` puts it wherever a loaded module imported ``utcnow``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = models.utcnow
        for module in list(sys.modules.values()):
            if getattr(module, "utcnow", None) is real:
                monkeypatch.setattr(module, "utcnow", self)
