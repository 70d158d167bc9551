"""Engine, schema upgrades (Alembic, run programmatically at start-up) and batching helpers."""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, event, make_url
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine

try:
    import fcntl
except ImportError:  # Windows: writers queue per process only
    fcntl = None  # type: ignore[assignment]  # the module or None, checked before use

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# SQLite allows 32766 bound parameters; stay far below it for IN (...) lists.
CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``items``, for IN (...) lists and batched writes."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# The statements before which pysqlite begins a transaction (its default, "legacy" control).
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
WRITER_WAIT_S = 30.0  # as long as SQLite's busy timeout


class _WriterQueue:
    """One write transaction at a time among the SQLite connections of every engine and
    process writing one database file.

    SQLite has one write lock per database. A writer that finds it taken waits in SQLite's busy
    handler, which sleeps in growing steps (up to 100 ms) and so leaves the lock idle after it
    is freed: concurrent job posts waited far longer than their writes took, and a busy
    judging process kept re-taking the lock while a request slept (README: load). Here writers
    queue first on a thread lock (one waiter per process) and then on an advisory lock on a
    file beside the database, shared with the other processes (the API's judging process,
    ``prelabel worker``), polled every millisecond or few, so the next writer starts as soon
    as the previous ends.
    Writers that bypass it (another tool) still meet at SQLite's own lock and busy timeout.
    """

    def __init__(self, lock_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._lock_path = lock_path
        self._file: int | None = None  # the lock file's descriptor, opened on first use
        self._holds_file = False

    def acquire(self) -> bool:
        """Wait for the queue; False (go on unqueued, to SQLite's busy timeout) if this thread
        already holds it on another connection, which would wait for itself, or after
        WRITER_WAIT_S."""
        deadline = time.monotonic() + WRITER_WAIT_S
        if self._owner == threading.get_ident() or not self._lock.acquire(timeout=WRITER_WAIT_S):
            return False
        self._owner = threading.get_ident()
        self._holds_file = self._lock_file(deadline)
        return True

    def release(self) -> None:
        if self._holds_file:
            self._holds_file = False
            assert self._file is not None  # held through the open lock file
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._owner = None
        self._lock.release()

    def _lock_file(self, deadline: float) -> bool:
        """Take the lock shared with other processes; False without one (an in-memory
        database, no fcntl, an unwritable directory) or after the deadline."""
        if self._lock_path is None or fcntl is None:
            return False
        try:
            if self._file is None:
                self._file = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                weakref.finalize(self, os.close, self._file)  # closed with its engine
            # Polled, not a blocking flock: a blocking call cannot give up at the deadline.
            while True:
                try:
                    fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    now = time.monotonic()
                    if now >= deadline:
                        return False
                    time.sleep(0.001 if deadline - now > WRITER_WAIT_S - 0.05 else 0.004)
        except OSError:
            return False


def _queued_connection(queue: _WriterQueue) -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose write transactions take turns on ``queue``: taken
    before the statement that begins one, given back when it ends (commit, rollback, close,
    or a statement that began none: autocommit, an error)."""

    class QueuedCursor(sqlite3.Cursor):
        @property
        def queued(self) -> QueuedConnection:
            return cast("QueuedConnection", self.connection)

        def execute(self, sql: str, parameters: Any = (), /) -> QueuedCursor:
            self.queued._before(sql)
            try:
                return super().execute(sql, parameters)
            finally:
                self.queued._after()

        def executemany(self, sql: str, parameters: Iterable[Any], /) -> QueuedCursor:
            self.queued._before(sql)
            try:
                return super().executemany(sql, parameters)
            finally:
                self.queued._after()

    class QueuedConnection(sqlite3.Connection):
        _queued = False

        def cursor(self, factory: Any = QueuedCursor) -> Any:
            return super().cursor(factory)

        def _before(self, sql: str) -> None:
            if not self._queued and not self.in_transaction and _WRITE.match(sql):
                self._queued = queue.acquire()

        def _after(self) -> None:
            if self._queued and not self.in_transaction:
                self._queued = False
                queue.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._after()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._after()

        def close(self) -> None:
            try:
                super().close()  # rolls back an open transaction
            finally:
                if self._queued:
                    self._queued = False
                    queue.release()

    return QueuedConnection


def _writer_lock_path(url: str) -> str | None:
    """The file beside a SQLite database that its writers queue on; None for an in-memory one."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writer.lock"


def _lower(value: str | int | float | bytes | None) -> str | int | float | bytes | None:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine for ``url``. ``schema`` (PostgreSQL only) isolates test databases.

    Up to 40 pooled connections, as many as the API's threadpool has threads (anyio's
    default): a burst of requests then waits for a thread, never for a connection (waiting
    longer than the pool timeout, 30 s, fails the request with a 500). Kept open: 10.
    """
    pool = {"pool_size": 10, "max_overflow": 30}
    if url.startswith("sqlite"):
        # ``timeout``: SQLite's busy timeout. A writer waits up to 30 s for the one write lock
        # instead of failing with "database is locked" at once.
        connect_args = {
            "check_same_thread": False,
            "timeout": 30,
            "factory": _queued_connection(_WriterQueue(_writer_lock_path(url))),
        }
        engine = create_engine(url, connect_args=connect_args, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            # WAL lets the API read while a worker writes; foreign keys are off by default.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # The queue's text search folds case like Python (SQLite's lower() is ASCII-only).
            dbapi_conn.create_function("prelabel_lower", 1, _lower, deterministic=True)

        return engine
    # Custom plans always: psycopg prepares a statement run five times on a connection, and
    # PostgreSQL may then switch to a generic plan made while a table was small. A job post's
    # "which of these client ids exist" became a sequential scan of a pair table that had
    # grown since (README: load).
    options = "-cplan_cache_mode=force_custom_plan" + (f" -csearch_path={schema}" if schema else "")
    return create_engine(url, pool_pre_ping=True, connect_args={"options": options}, **pool)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; an existing database keeps its data."""
    command.upgrade(alembic_config(engine), revision)


@functools.cache
def _insert_ignore_statement(table: Any, dialect: str, keys: tuple[str, ...]) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys))


def insert_ignore(session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING (two writers may prepare the same pair at once)."""
    if not rows:
        return
    connection = session.connection()
    connection.execute(_insert_ignore_statement(table, connection.dialect.name, tuple(keys)), rows)


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows (keyed by column name) in the session's transaction.

    On PostgreSQL through COPY: psycopg's executemany sends one INSERT per row, which costs a
    job post more client CPU than streaming the rows (README: load). Elsewhere a Core
    executemany.
    A duplicate key raises SQLAlchemy's ``IntegrityError`` either way.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    import psycopg  # the PostgreSQL driver: only where it is the dialect

    columns = list(rows[0])
    as_json = {column.key for column in table.columns if isinstance(column.type, JSON)}
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None  # an open connection's psycopg connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c in as_json else row[c] for c in columns])
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE or INSERT changed. ``Session.execute`` is typed to
    return a ``Result``; for these statements it is a ``CursorResult``, which counts them."""
    assert isinstance(result, CursorResult)
    return result.rowcount
