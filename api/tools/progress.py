"""How much CPU a process and its children have used: the progress of a process that shows
nothing else while it starts (imports, model loading), so a wait for it can follow progress
instead of a fixed budget that a busy machine overruns."""

from __future__ import annotations

import psutil


def cpu_seconds(pid: int | None = None) -> int:
    """Whole CPU seconds used so far by the process ``pid`` and its children; without ``pid``,
    by this process's children only (its own polling must not count as progress). Whole
    seconds: a process importing or judging moves it every second or so, one idling in a poll
    loop hardly ever, so an idle hang still shows as a stall. Processes that exited count 0."""
    try:
        if pid is None:
            processes = psutil.Process().children(recursive=True)
        else:
            parent = psutil.Process(pid)
            processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:  # ``pid`` exited
        return 0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # exited between the listing and the reading
            continue
        total += times.user + times.system
    return int(total)
