"""The worker's pairs in flight, collected as they finish.

The judging loop used to wait with ``asyncio.wait`` on every pair in flight: each turn of the
loop added a done-callback to each of up to ``worker_pairs_in_flight`` tasks (256) and removed
them all again, about 1 ms of CPU a turn, hundreds of turns per 2,000 pairs, in the CPU-bound
judging process (README, "Judge path CPU"). Here each task gets one callback for its life, and
the loop waits on one event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Finished(Generic[T]):
    """Tasks handed to :meth:`watch`, gathered as they finish, for the loop to :meth:`take`."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[T]] = []
        self._event = asyncio.Event()
        self._waiter: asyncio.Task[bool] | None = None

    def watch(self, tasks: Iterable[asyncio.Task[T]]) -> None:
        for task in tasks:
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[T]) -> None:
        self._tasks.append(task)
        self._event.set()

    def waiter(self) -> asyncio.Task[bool]:
        """A task that ends when a watched task has finished since the last :meth:`take`."""
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.ensure_future(self._event.wait())
        return self._waiter

    def take(self) -> list[asyncio.Task[T]]:
        """The tasks finished since the last call, in the order they finished."""
        tasks, self._tasks = self._tasks, []
        self._event.clear()
        return tasks

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
