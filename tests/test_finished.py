"""The worker's collector of finished pair tasks (api/judging/finished.py)."""

from __future__ import annotations

import asyncio

from api.judging.finished import Finished


def test_finished_tasks_are_taken_once_in_the_order_they_finish() -> None:
    async def scenario() -> list[list[int]]:
        finished: Finished[int] = Finished()
        gates = [asyncio.Event() for _ in range(3)]

        async def pair(k: int) -> int:
            await gates[k].wait()
            return k

        tasks = [asyncio.create_task(pair(k)) for k in range(3)]
        finished.watch(tasks)
        taken = []
        for k in (2, 0, 1):
            waiter = finished.waiter()
            await asyncio.sleep(0)
            assert not waiter.done()  # nothing finished since the last take
            gates[k].set()
            await asyncio.wait_for(waiter, timeout=5)
            taken.append([t.result() for t in finished.take()])
        assert finished.take() == []
        finished.close()
        return taken

    assert asyncio.run(scenario()) == [[2], [0], [1]]
