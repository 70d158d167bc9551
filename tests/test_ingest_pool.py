"""Job posts parsed and stored in a process of their own (api/ingest/pool.py).

`prelabel serve` runs with one ingest process; the other tests store jobs in the test's own
process (``ingest_processes=0``). Here the same answers come from the pool: created, the same
job on a re-post, refused lines and id conflicts with nothing stored, and a killed pool
process replaced without losing the post that found it dead.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from api import background as api_background
from api.main import create_app
from api.models import Job, Pair
from tests import fakes
from tests.helpers import ADMIN, fast_settings, make_project, service_children
from tests.waiting import cpu_seconds, wait_for_progress


def _pairs(prefix: str, n: int) -> list[dict[str, str]]:
    return [
        {"client_id": f"{prefix}{i}", "prompt": f"Q{i}?", "response_a": f"A{i}.", "response_b": f"B{i}."}
        for i in range(n)
    ]


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def _pool_pids(others: set[int]) -> set[int]:
    """The pool's processes: the service's children but ``others``, those that lived before the
    app started (this app runs no background process)."""
    return service_children() - others


# The module's app, its engine, and the service processes that lived before it started.
Pooled = tuple[TestClient, Engine, set[int]]


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    """``fake/`` judges are known to litellm here (project creation checks that judges exist)."""
    return fakes.install()


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pooled]:
    """One app with one ingest process for the module (starting one takes seconds), and the
    service processes that lived before it (another test's, in this test process)."""
    from api.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('pool') / 'api.db'}"
    engine = make_engine(url)
    upgrade(engine)
    others = service_children()
    app = create_app(fast_settings(url, ingest_processes=1), engine, run_worker=False)
    with TestClient(app, headers=ADMIN) as client:
        yield client, engine, others
    engine.dispose()


def test_a_job_stored_by_the_pool_reads_like_one_stored_in_process(pooled: Pooled) -> None:
    client, engine, _ = pooled
    assert client.app.state.ingest_pool is not None  # type: ignore[attr-defined]
    project = make_project(client, "pool-basic")
    first = client.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs("a", 30)})
    assert first.status_code == 201, first.text
    assert first.json()["pairs_created"] == 30
    again = client.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs("a", 30)})
    assert again.status_code == 200 and again.json()["resubmitted"] is True
    assert again.json()["job_id"] == first.json()["job_id"]
    status = client.get(f"/v1/jobs/{first.json()['job_id']}")
    assert status.status_code == 200 and status.json()["pairs"] == 30
    ndjson = "\n".join(
        f'{{"client_id": "n{i}", "prompt": "q", "response_a": "a", "response_b": "b"}}' for i in range(5)
    )
    posted = client.post(
        f"/v1/projects/{project}/jobs", content=ndjson, headers={"content-type": "application/x-ndjson"}
    )
    assert posted.status_code == 201 and posted.json()["pairs_created"] == 5


def test_refused_lines_and_conflicts_store_nothing_through_the_pool(
    pooled: Pooled,
) -> None:
    client, engine, _ = pooled
    project = make_project(client, "pool-refusals")
    pairs_before, jobs_before = _count(engine, Pair), _count(engine, Job)
    bad = _pairs("b", 3) + [{"client_id": "b-bad", "prompt": "q\u0000", "response_a": "a", "response_b": "b"}]
    refused = client.post(f"/v1/projects/{project}/jobs", json={"pairs": bad})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["line"] == 4 and "NUL" in refused.json()["errors"][0]["errors"][0]
    assert (_count(engine, Pair), _count(engine, Job)) == (pairs_before, jobs_before)

    assert client.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs("c", 2)}).status_code == 201
    changed = _pairs("c", 2)
    changed[1]["response_b"] = "something else"
    conflict = client.post(f"/v1/projects/{project}/jobs", json={"pairs": changed + _pairs("d", 2)})
    assert conflict.status_code == 409 and conflict.json()["client_ids"] == ["c1"]
    assert _count(engine, Pair) == pairs_before + 2


def test_a_killed_pool_process_is_replaced_and_the_post_goes_through(
    pooled: Pooled,
) -> None:
    client, _, others = pooled
    pool = client.app.state.ingest_pool  # type: ignore[attr-defined]
    project = make_project(client, "pool-killed")
    assert client.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs("e", 3)}).status_code == 201
    (pid,) = _pool_pids(others)
    restarts = pool.restarts  # before the kill: the API's supervisor may replace the pool first
    os.kill(pid, signal.SIGKILL)
    posted = client.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs("f", 4)})
    assert posted.status_code == 201, posted.text
    assert posted.json()["pairs_created"] == 4
    assert pool.restarts == restarts + 1
    health = client.get("/healthz").json()
    assert health["ingest_processes"] == 1 and health["ingest_restarts"] == restarts + 1
    assert _pool_pids(others) and pid not in _pool_pids(others)


@pytest.mark.parametrize("supervise_every_s", [3600.0, 0.05])
def test_healthz_reports_a_dead_ingest_process_until_it_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, supervise_every_s: float
) -> None:
    """A pool process killed while no post is running: /healthz says so (503) at once, not "ok"
    until the next post finds out; the API's supervisor replaces the pool (here either never,
    to watch the "down", or every 50 ms)."""
    from api.db import make_engine, upgrade

    monkeypatch.setattr(api_background, "SUPERVISE_EVERY_S", supervise_every_s)
    url = f"sqlite:///{tmp_path / 'api.db'}"
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(fast_settings(url, ingest_processes=1), engine, run_worker=False)
    others = service_children()  # another test's processes may still be running
    with TestClient(app, headers=ADMIN) as client:
        pool = client.app.state.ingest_pool  # type: ignore[attr-defined]
        healthy = client.get("/healthz")
        assert healthy.status_code == 200 and healthy.json()["ingest"] == "running"
        (pid,) = _pool_pids(others)
        os.kill(pid, signal.SIGKILL)
        if supervise_every_s > 60:
            wait_for_progress(pool.broken, what="the executor to notice the death", every_s=0.02)
            down = client.get("/healthz")
            assert down.status_code == 503, down.text
            assert down.json()["ingest"] == "down" and down.json()["status"] == "degraded"
            # The next post replaces it and goes through, and health is back.
            project = make_project(client, "pool-health")
            posted = client.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs("h", 2)})
            assert posted.status_code == 201, posted.text
        else:
            wait_for_progress(lambda: pool.restarts == 1, cpu_seconds, "the supervisor to replace the pool")
            wait_for_progress(
                lambda: bool(_pool_pids(others) - {pid}), cpu_seconds, "the new pool process"
            )
        back = client.get("/healthz")
        assert back.status_code == 200 and back.json()["ingest"] == "running", back.text
        assert back.json()["ingest_restarts"] == 1
    engine.dispose()
