"""Helpers shared by the tests (fixtures live in conftest.py; this module holds no tests)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psutil
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.db import make_engine
from api.ingest import store
from api.judging.worker import Worker
from api.main import create_app
from api.models import Decision, Job, Pair, Project
from api.review import queue
from api.schemas import PairIn, RoutingSettings
from api.settings import Settings
from api.vocab import LabelSource
from judge.recorded import RecordedPair
from tests.waiting import cpu_seconds, wait_for_progress

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LLMBAR = SHARED_DATA / "replay" / "llmbar_dev.jsonl"
HH = SHARED_DATA / "hh-rlhf" / "harmless_base_test.jsonl"
PG_URL = os.environ.get("PRELABEL_TEST_DATABASE_URL")

# Debian's chromium for real-browser tests (never a browser a tool downloads), headless and offline.
CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def fast_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "judge_retry_initial_s": 0.001,
        "judge_retry_max_s": 0.01,
        "judge_timeout_s": 5.0,
        "poll_interval_s": 0.05,
        "admin_token": ADMIN_TOKEN,
        # Jobs stored in the test's own process (tests/test_ingest_pool.py covers the pool).
        "ingest_processes": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def run_worker(engine: Engine, settings: Settings, worker_id: str | None = None) -> int:
    """Judge everything claimable, then return (the tests' synchronous worker)."""
    return asyncio.run(Worker(engine, settings, worker_id).run(until_idle=True))


# --- SQLite snapshots: build an expensive state once, copy it per test ------------------------


def sqlite_url_for(path: Path) -> str:
    return f"sqlite:///{path}"


def fold_wal(path: Path) -> None:
    """Fold the write-ahead log into the main file, so copying ``path`` alone copies the whole
    database. Call only once every engine on ``path`` is disposed (a reader would pin the WAL)."""
    connection = sqlite3.connect(path)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        connection.close()
    wal = path.with_name(path.name + "-wal")
    assert busy == 0 and (not wal.exists() or wal.stat().st_size == 0), f"{path}: WAL still in use"


def copy_sqlite(source: Path, target: Path) -> Engine:
    """An engine on a copy of the (WAL-folded) database ``source`` at ``target``."""
    shutil.copyfile(source, target)
    return make_engine(sqlite_url_for(target))


class Served(NamedTuple):
    client: TestClient
    engine: Engine
    settings: Settings


@contextmanager
def served_copy(source: Path, target: Path) -> Iterator[Served]:
    """The API in-process (TestClient, no background worker) on a copy of ``source`` at ``target``.

    Every connection is closed on exit: ``fold_wal(target)`` then makes ``target`` a snapshot.
    """
    engine = copy_sqlite(source, target)
    settings = fast_settings(sqlite_url_for(target))
    try:
        with TestClient(create_app(settings, engine, run_worker=False), headers=ADMIN) as client:
            yield Served(client, engine, settings)
    finally:
        engine.dispose()


# --- data in through the API -----------------------------------------------------------------


def post_recorded_pairs(client: TestClient, project_id: int, pairs: list[RecordedPair]) -> int:
    """Recorded pairs in through the jobs API (NDJSON); returns the job id."""
    body = "\n".join(
        json.dumps(
            {"client_id": p.id, "prompt": p.prompt, "response_a": p.response_a, "response_b": p.response_b}
        )
        for p in pairs
    )
    response = client.post(
        f"/v1/projects/{project_id}/jobs", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def store_reviewer_labels(
    engine: Engine, project_id: int, labels: list[dict[str, Any]]
) -> store.LabelsStored:
    """Labels as the review flow stores reviewers' answers (source review, audit, calibration),
    written in-process without leasing each item: for tests of what such labels do downstream
    (calibration, the kill-switch). Over HTTP only a reviewer gives them (tests/test_authz.py)."""
    with Session(engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
    assert project is not None
    body = json.dumps({"labels": labels}).encode()
    return store.store_labels(engine, project, body, "application/json", sources=tuple(LabelSource))


def post_labels(client: TestClient, project_id: int, labels: list[tuple[str, str]], source: str) -> None:
    """``(client_id, label)`` pairs in through the labels API (NDJSON)."""
    if not labels:
        return
    body = "\n".join(
        json.dumps({"client_id": cid, "label": label, "source": source, "annotator": "test-gold"})
        for cid, label in labels
    )
    response = client.post(
        f"/v1/projects/{project_id}/labels", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 201, response.text


# --- data straight into the database ---------------------------------------------------------


def seed(engine: Engine, n: int, judges: list[str]) -> Project:
    """A project with one job of ``n`` pending pairs, stored as the jobs API stores them."""
    with Session(engine, expire_on_commit=False) as session:
        project = Project(name="p", judges=[{"model": m} for m in judges], routing={})
        session.add(project)
        session.commit()
    pairs = [
        PairIn(client_id=f"c{i}", prompt=f"p{i}", response_a=f"a{i}", response_b=f"b{i}") for i in range(n)
    ]
    store.create_job(engine, project.id, pairs)  # type: ignore[arg-type]
    return project


def seed_review_queue(engine: Engine, pending: int, seed: int = 0) -> int:
    """Store ``pending`` judged pairs that wait for a human; returns the project id.

    Like a live queue: mostly uncertainty-ranked review items, ~5 % audits and ~3 % incidents.
    Decisions are written as the worker writes them, then queued by the worker's own hook
    (``queue.on_decisions_written``), so the queue holds what judging would have left there.
    """
    rng = random.Random(seed)
    with Session(engine) as session:
        project = Project(
            name="review-queue", judges=[{"model": "fake/ok"}], routing=RoutingSettings().model_dump()
        )
        session.add(project)
        session.flush()
        job = Job(project_id=project.id, n_pairs=pending)  # type: ignore[arg-type]
        session.add(job)
        session.flush()
        pairs = [
            Pair(
                project_id=project.id,  # type: ignore[arg-type]
                job_id=job.id,  # type: ignore[arg-type]
                client_id=f"queue-{i}",
                # Names and e-mail addresses: what the reviewer is served passes redaction.
                prompt=f"Summarise the ticket from Maria Garcia (user{i}@example.com) in two lines ({i}).",
                response_a="Here is a careful answer. " * rng.randint(4, 12),
                response_b="A shorter answer that misses a step. " * rng.randint(2, 8),
                content_hash=uuid.UUID(int=rng.getrandbits(128)).hex,
                state="done",
                attempts=1,
            )
            for i in range(pending)
        ]
        session.add_all(pairs)
        session.flush()
        decisions = []
        for pair in pairs:
            draw = rng.random()
            route, reasons = ("incident", ["both_bad"]) if draw < 0.03 else ("review", ["below_threshold"])
            if 0.03 <= draw < 0.08:
                reasons = ["audit"]
            decision = Decision(
                pair_id=pair.id,  # type: ignore[arg-type]
                label=rng.choice(["A>B", "B>A", "A>>B", "tie"]),
                chosen="A",
                confidence=rng.uniform(0.5, 1.0),
                route=route,
                reasons=reasons,
                version="seeded",
            )
            decisions.append(decision)
        session.add_all(decisions)
        session.flush()
        for pair, decision in zip(pairs, decisions, strict=True):
            pair.decision_id = decision.id
            pair.judged_at = decision.created_at
        queue.on_decisions_written(session, [p.id for p in pairs])  # type: ignore[misc]
        session.commit()
        return project.id  # type: ignore[return-value]


# --- review: accounts, projects and a live API on loopback ----------------------------------

ADMIN_TOKEN = os.environ.get("PRELABEL_ADMIN_TOKEN", "admin-test-token")  # set by tests/conftest.py
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
NO_AUTH = {"authorization": ""}  # replaces a client's default header: a request with no token


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def make_project(
    client: TestClient | httpx.Client,
    name: str,
    judges: list[Any] | None = None,
    routing: dict[str, Any] | None = None,
) -> int:
    body: dict[str, Any] = {"name": name, "judges": judges or ["fake/ok"]}
    if routing:
        body["routing"] = routing
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def post_question_pairs(
    client: TestClient | httpx.Client, project_id: int, n: int = 0, pairs: list[dict[str, Any]] | None = None
) -> int:
    pairs = pairs or [
        {
            "client_id": f"c{i}",
            "prompt": f"Question {i}: how do I sort a list in Python?",
            "response_a": f"Use `sorted(xs)` ({i}).",
            "response_b": f"Write a bubble sort by hand ({i}).",
        }
        for i in range(n)
    ]
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": pairs})
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


def job_progress(client: TestClient | httpx.Client, job_id: int) -> tuple[int, int]:
    """How far a job has come (pairs done, judge calls made): a ``progress`` for
    ``tests.waiting.wait_for_progress``."""
    status = client.get(f"/v1/jobs/{job_id}").json()
    return status["done"], status["judge_calls"]


def new_reviewer(client: TestClient | httpx.Client, name: str, projects: list[int] | None = None) -> str:
    """A reviewer's token; assigned to ``projects``, by default to every project there is."""
    if projects is None:
        projects = [p["id"] for p in client.get("/v1/projects", headers=ADMIN).json()]
    r = client.post("/v1/reviewers", json={"name": name, "projects": projects}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_api(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("the API did not start")
        return server.started

    # Its start-up (the lifespan starts the background and ingest processes) runs here and
    # in children: on a busy machine it is slow, never still.
    wait_for_progress(started, lambda: cpu_seconds(os.getpid()), "the API to start", every_s=0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _record(path: Path, record_id: str) -> dict[str, Any]:
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] == record_id:
            return record
    raise LookupError(record_id)


def llmbar_pair(index: int) -> dict[str, str]:
    """Line ``index`` of the shared LLMBar file as a pair to post (its id as client_id)."""
    record = json.loads(LLMBAR.read_text(encoding="utf-8").splitlines()[index])
    return {k: record[k] for k in ("prompt", "response_a", "response_b")} | {"client_id": record["id"]}


def hh_pair(record_id: str) -> dict[str, str]:
    """An HH-RLHF harmlessness record as a pair to post: rejected shown as A, chosen as B."""
    record = _record(HH, record_id)
    return {
        "client_id": record_id,
        "prompt": record["prompt"],
        "response_a": record["rejected"],
        "response_b": record["chosen"],
    }


def service_children() -> set[int]:
    """Live processes the service started from this process: the background and ingest processes.

    The fork server forks them (api.child_processes), so they are its children; where there is
    no fork server they are spawned (``spawn_main`` in their command line). The fork server itself
    and multiprocessing's resource tracker are children of this process too, and are left out.
    """
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            parent = child.parent()
            forked = parent is not None and "forkserver" in " ".join(parent.cmdline())
            if forked or "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:  # gone meanwhile
            continue
    return found


# --- PostgreSQL snapshots: a database built once per module, cloned per test ---------------------


@contextmanager
def pg_clone(admin: Engine, url: str, template: str) -> Iterator[Engine]:
    """An engine on a new PostgreSQL database cloned from ``template`` (``CREATE DATABASE ...
    TEMPLATE``, a file-level copy), dropped on exit. ``admin`` is an AUTOCOMMIT engine on the
    server (conftest's ``PgServer.admin``), ``url`` any database URL on it. The template must
    have no connection open: dispose its engines first."""
    from sqlalchemy import make_url, text

    database = f"prelabel_c_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{template}"'))
    engine = make_engine(make_url(url).set(database=database).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:  # FORCE: a connection a failed test leaked
            conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
