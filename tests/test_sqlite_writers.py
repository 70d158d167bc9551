"""SQLite writers of every engine and process queue on one lock file beside the database.

Without it, a writer that found SQLite's lock taken slept in SQLite's busy handler (up to
100 ms a step) while a busy judging process kept re-taking the lock: a job post waited up to
30 s behind a worker (`prelabel bench load`). The lock is advisory (``flock``) on
``<database>-writer.lock``, held from a write transaction's first statement to its end.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.db import make_engine
from tests.waiting import wait_for_progress


def _held_by_someone(lock_file: Path) -> bool:
    """Is the writer lock taken? (Probed through a descriptor of our own.)"""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor lets go of a lock it took
    return False


@pytest.fixture
def two_engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine, Path]]:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield first, second, tmp_path / "w.db-writer.lock"
    first.dispose()
    second.dispose()


def test_a_write_transaction_holds_the_lock_file_until_it_ends(
    two_engines: tuple[Engine, Engine, Path],
) -> None:
    first, _, lock_file = two_engines
    with first.connect() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
        assert not _held_by_someone(lock_file)  # reads take no writer lock
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _held_by_someone(lock_file)
        conn.commit()
        assert not _held_by_someone(lock_file)
        conn.execute(text("INSERT INTO t VALUES (2)"))
        conn.rollback()
        assert not _held_by_someone(lock_file)


def test_another_engine_waits_for_the_lock_and_then_writes(two_engines: tuple[Engine, Engine, Path]) -> None:
    first, second, _ = two_engines
    wrote_at: list[float] = []

    def write_from_second() -> None:
        with second.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (20)"))
        wrote_at.append(time.monotonic())

    with first.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (10)"))
        other = threading.Thread(target=write_from_second)
        other.start()
        time.sleep(0.3)
        assert not wrote_at  # queued behind the open transaction, not failed
        committed_at = time.monotonic()
        conn.commit()
    wait_for_progress(lambda: not other.is_alive(), what="the second engine's write")
    assert wrote_at and wrote_at[0] >= committed_at
    with first.connect() as conn:
        assert sorted(conn.execute(text("SELECT n FROM t")).scalars()) == [10, 20]
