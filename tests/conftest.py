"""Shared fixtures: a fresh, fully migrated, empty database per test (SQLite always, PostgreSQL
when PRELABEL_TEST_DATABASE_URL is set).

Running the Alembic migrations costs ~0.5 s per database, paid by every database test before.
Now one SQLite file is migrated per session and each test gets a copy of it, and PostgreSQL
clones a migrated template database per test (``CREATE DATABASE ... TEMPLATE``, ~0.1 s).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The admin token every test service (and `prelabel` subprocess) runs with: tests.helpers.ADMIN.
os.environ.setdefault("PRELABEL_ADMIN_TOKEN", "admin-test-token")
# Replay judges read recorded files from the shared data and from tests' temporary directories.
_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("PRELABEL_REPLAY_DIRS", f"{_SHARED_DATA},{tempfile.gettempdir()}")
# Exports made by tests that do not choose a directory land in a temporary one, not the checkout.
os.environ.setdefault("PRELABEL_EXPORT_DIR", tempfile.mkdtemp(prefix="prelabel-test-exports-"))

# Two xdist workers on two cores: one BLAS / OpenMP thread each. OpenBLAS's threads on top
# (waking for tiny products, and two workers' threads fighting for two cores) made the
# statistical tests about 3x slower. Set for the servers and CLIs tests start as subprocesses;
# this process loaded numpy with pytest's plugins already, so it is limited through threadpoolctl.
for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
threadpool_limits(limits=1)

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.exc import ProgrammingError  # noqa: E402

from api.db import make_engine, upgrade  # noqa: E402
from api.main import create_app  # noqa: E402
from api.models import utcnow  # noqa: E402
from api.settings import Settings  # noqa: E402
from tests.helpers import (  # noqa: E402
    ADMIN,
    PG_URL,
    copy_sqlite,
    fast_settings,
    fold_wal,
    pg_clone,
    sqlite_url_for,
)
from tests.waiting import Clock  # noqa: E402


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head; tests copy it instead of migrating their own."""
    path = tmp_path_factory.mktemp("migrated") / "migrated.db"
    engine = make_engine(sqlite_url_for(path))
    upgrade(engine)
    engine.dispose()
    fold_wal(path)  # the copies take the main file only
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return sqlite_url_for(tmp_path / "test.db")


def _sqlite_engine(url: str, migrated: Path) -> Iterator[Engine]:
    eng = copy_sqlite(migrated, Path(make_url(url).database or ""))
    yield eng
    eng.dispose()


@pytest.fixture
def engine(sqlite_url: str, migrated_sqlite: Path) -> Iterator[Engine]:
    yield from _sqlite_engine(sqlite_url, migrated_sqlite)


@dataclass(frozen=True)
class PgServer:
    admin: Engine  # AUTOCOMMIT: CREATE/DROP DATABASE cannot run in a transaction
    url: str
    template: str | None  # None: cloning is not allowed here, each test migrates a schema


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    """A migrated template database for the session, or None without PostgreSQL.

    A clone from a template is a file-level copy, several times cheaper than migrating;
    a role without CREATEDB falls back to migrating a fresh schema per test, as before.
    """
    if not PG_URL:
        yield None
        return
    url = Settings(database_url=PG_URL).database_url
    base = make_engine(url)
    admin = base.execution_options(isolation_level="AUTOCOMMIT")
    template: str | None = f"prelabel_tmpl_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{template}"'))
    except ProgrammingError:  # e.g. no CREATEDB privilege
        template = None
    try:
        if template is not None:
            eng = make_engine(_database_url(url, template))
            upgrade(eng)
            eng.dispose()  # a template with a connection open cannot be cloned
        yield PgServer(admin, url, template)
    finally:
        if template is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
        base.dispose()


def _database_url(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _pg_engine(server: PgServer | None) -> Iterator[Engine]:
    if server is None:
        pytest.skip("PostgreSQL tests need PRELABEL_TEST_DATABASE_URL")
    if server.template is None:
        yield from _pg_schema_engine(server)
        return
    with pg_clone(server.admin, server.url, server.template) as eng:
        yield eng


def _pg_schema_engine(server: PgServer) -> Iterator[Engine]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with server.admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(server.url, schema=schema)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()
        with server.admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def pg_engine(pg_server: PgServer | None) -> Iterator[Engine]:
    yield from _pg_engine(pg_server)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, sqlite_url: str, migrated_sqlite: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield from _sqlite_engine(sqlite_url, migrated_sqlite)
    else:
        # Looked up here, not requested: SQLite runs must not need a PostgreSQL server.
        yield from _pg_engine(request.getfixturevalue("pg_server"))


@pytest.fixture
def settings(engine: Engine) -> Settings:
    return fast_settings(str(engine.url))


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """The API as the admin (the role that may do everything); a test of another role sends
    its own Authorization header, which replaces this one."""
    app = create_app(settings, engine, run_worker=False)
    with TestClient(app, headers=ADMIN) as test_client:
        yield test_client


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The service's clock, stopped: a test of leases a fraction of a second long moves it
    itself, so a busy machine's pause between two calls cannot expire one."""
    stopped = Clock(utcnow())
    stopped.install(monkeypatch)
    return stopped


# The slowest test files, slowest first (summed test times of a `make test` run, junit XML).
# xdist's --dist loadfile hands whole files to the two workers in collection order; by default it
# reorders them by test count, which left the files of one to three long tests (processes killed
# and replaced, browsers, load) for last, and one worker ran them alone for minutes at the end.
# Started first, they overlap with the many short files instead. Only the order changes: a file
# missing here runs after these, in its usual place.
SLOWEST_FILES_FIRST = (
    "test_faults.py",
    "test_bad_inputs.py",
    "test_queue_filters.py",
    "test_schemathesis.py",
    "test_shift.py",
    "test_priority.py",
    "test_bench_load.py",
    "test_bench_replay.py",
    "test_toe.py",
    "test_calibration_service.py",
    "test_injection.py",
    "test_review_inert.py",
    "test_demo_story_browser.py",
    "test_aspects_data.py",
    "test_gold_side.py",
    "test_control_charts_app.py",
    "test_browser_e2e.py",
    "test_layering.py",
    "test_review_layout.py",
    "test_queue_browser.py",
    "test_cli_and_bench.py",
    "test_reviewer_quality.py",
    "test_audit_log.py",
    "test_calibration_threshold.py",
    "test_threshold_procedures.py",
    "test_redaction_world.py",
    "test_review_concurrency.py",
    "test_authz.py",
    "test_bench_reviewers.py",
    "test_promotion.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole
