"""The per-pair screens a claimed batch needs before its judge calls: the safety rules and
classifier (``judge.safety``), the prompt-injection screen (``judge.injection``) and the
re-judge check's neutralised texts (``api.judging.injection_recheck``).

They are pure functions of a pair's three texts, but Python work: ~0.85 ms a pair, most of
it the multilingual injection word lists, about 30 % of the judging process's own CPU beside
litellm's (README, "Judge path CPU"). The judging process is CPU-bound on one core, so with
``Settings.screen_processes`` > 0 they run in processes of their own instead, on
another core, while the judging process only sends the texts and reads the results back.
The results are the same either way (same functions, same inputs): only where they run changes.

The pool is shared by the Workers of a process (one per process in serving; a benchmark makes
one per run) and started once: a new process imports the screens and the classifier in
seconds, which no batch should wait for twice. A pool process that dies breaks the pool: a
new one is started and the batch screened once more; should that break too, the pool gives up
and every batch is screened in this process.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

from api.child_processes import child_context, exit_with_parent
from api.judging.injection_recheck import RECHECK_PREFIX, Recheck, recheck_for
from judge.injection import InjectionResult, injection_check_many
from judge.safety import SafetyResult, safety_check_many

if TYPE_CHECKING:  # the pool processes need no models
    from api.models import Pair

log = logging.getLogger("prelabel.worker")

Texts = tuple[str, str, str]  # (prompt, response_a, response_b)


@dataclass(frozen=True)
class Screened:
    """One pair's screens. ``recheck``: the neutralised responses when the injection screen
    found nothing (None otherwise, or when there is nothing to take out)."""

    safety: SafetyResult
    injection: InjectionResult
    recheck: Recheck | None


def screen_pairs(texts: Sequence[Texts]) -> list[Screened]:
    """Every screen of every pair, in one pass (also what a pool process runs)."""
    checks, screens = safety_check_many(texts), injection_check_many(texts)
    return [
        Screened(check, screen, None if screen.reasons else recheck_for(*text))
        for check, screen, text in zip(checks, screens, texts, strict=True)
    ]


def prechecks(
    pairs: list[Pair], screened: list[Screened]
) -> tuple[list[tuple[bool, list[str], list[str]]], list[Recheck | None]]:
    """Per pair: (safety flag, safety reasons, prompt-injection findings), and the re-check
    to make. A pair judged again keeps what an earlier re-judge check found (and is not
    checked twice); pairs the rules let through but whose responses hold text that may be
    addressed to an evaluator are judged once more without it (injection_recheck.py)."""
    flags = []
    rechecks = []
    for pair, screen in zip(pairs, screened, strict=True):
        kept = [x for x in pair.injection_reasons if RECHECK_PREFIX in x]
        flag = (screen.safety.flagged, list(screen.safety.reasons), [*screen.injection.reasons, *kept])
        flags.append(flag)
        rechecks.append(None if flag[2] else screen.recheck)
    return flags, rechecks


def _start() -> None:
    """Each pool process: load the screens now (not in the first batch), and exit when the
    process that started it is gone."""
    screen_pairs([("warm", "up", "texts")])
    exit_with_parent()


def _ready() -> bool:
    return True


class ScreenPool:
    """``processes`` child processes that run :func:`screen_pairs`."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.restarts = 0
        self.gave_up = False
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=child_context(),  # the judging process has threads: not forked from it
            initializer=_start,
        )

    async def start(self) -> None:
        """Start the processes now (their imports take seconds), not on the first batch."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _ready) for _ in range(self.processes)))

    async def screen(self, texts: list[Texts]) -> list[Screened]:
        """The batch's screens, in a pool process; in a thread of this process once the pool
        has broken twice in a row (processes that cannot start: every batch would wait for
        another spawn in vain)."""
        if self.gave_up:
            return await asyncio.to_thread(screen_pairs, texts)
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            return await loop.run_in_executor(executor, screen_pairs, texts)
        except BrokenProcessPool:
            if self._executor is executor:  # not replaced by a concurrent batch already
                self._executor = self._new_executor()
                self.restarts += 1
                executor.shutdown(wait=False, cancel_futures=True)
        try:
            return await loop.run_in_executor(self._executor, screen_pairs, texts)
        except BrokenProcessPool:  # broken again at once: screen here from now on
            if not self.gave_up:
                log.error("screen processes keep dying: screening in the judging process")
            self.gave_up = True
            return await asyncio.to_thread(screen_pairs, texts)

    def cpu_s(self) -> float:
        """CPU seconds the pool's live processes have used (benchmarks report it beside the
        judging process's own)."""
        total = 0.0
        for process in list(getattr(self._executor, "_processes", {}).values()):
            try:
                times = psutil.Process(process.pid).cpu_times()
            except psutil.Error:  # gone meanwhile
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


_pools: dict[int, ScreenPool] = {}
_pools_lock = threading.Lock()


def shared_pool(processes: int) -> ScreenPool:
    """The process's pool of ``processes`` screen processes, made on first use."""
    with _pools_lock:
        pool = _pools.get(processes)
        if pool is None:
            pool = _pools[processes] = ScreenPool(processes)
            atexit.register(pool.stop)
        return pool
