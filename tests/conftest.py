"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from api.db import make_engine, upgrade  # noqa: E402
from api.main import create_app  # noqa: E402
from api.pipeline.worker import Worker  # noqa: E402
from api.settings import Settings  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LLMBAR = SHARED_DATA / "replay" / "llmbar_dev.jsonl"
PG_URL = os.environ.get("PRELABEL_TEST_DATABASE_URL")


def fast_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "judge_retry_initial_s": 0.001,
        "judge_retry_max_s": 0.01,
        "judge_timeout_s": 5.0,
        "poll_interval_s": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _pg_engine() -> Iterator[Engine]:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need PRELABEL_TEST_DATABASE_URL")
    url = Settings(database_url=PG_URL).database_url
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(url, schema=schema)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    yield from _pg_engine()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(sqlite_url)
        upgrade(eng)
        yield eng
        eng.dispose()
    else:
        yield from _pg_engine()


@pytest.fixture
def settings(engine: Engine) -> Settings:
    return fast_settings(str(engine.url))


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, engine, run_worker=False)
    with TestClient(app) as test_client:
        yield test_client


def run_worker(engine: Engine, settings: Settings, worker_id: str | None = None) -> int:
    """Judge everything claimable, then return (the tests' synchronous worker)."""
    return asyncio.run(Worker(engine, settings, worker_id).run(until_idle=True))
