"""``prelabel bench queue``: latency of the review queue's next-item call with many items waiting.

Seeds ``pending`` judged pairs routed to review (bulk inserts, then the same enqueue hook
the worker calls), then times ``POST /v1/projects/{id}/review/next`` through the ASGI
app in-process (no network), each call followed by an untimed submit so every sample is a
fresh claim. Also times the service function alone. PostgreSQL runs in a throw-away schema.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.db import make_engine, upgrade
from api.main import create_app
from api.models import Decision, Job, Pair, Project, Reviewer, utcnow
from api.review import queue
from api.review.reviewers import assign_projects, create_reviewer
from api.review.submit import submit_label
from api.schemas import ReviewSubmit, RoutingSettings
from api.settings import Settings

SEED_CHUNK = 5000
REVIEWERS = 8

_PROMPTS = [
    "Summarise the following support ticket from {name} ({email}) in two sentences.",
    "Write a Python function that returns the n-th Fibonacci number, iteratively.",
    "My neighbour {name} keeps parking in my spot. How do I raise it politely?",
    "Explain the difference between a process and a thread to a new engineer.",
]


def _texts(i: int, rng: random.Random) -> tuple[str, str, str]:
    name = rng.choice(["Maria Garcia", "John Smith", "Aisha Khan", "Wei Chen"])
    prompt = rng.choice(_PROMPTS).format(name=name, email=f"user{i}@example.com") + f" (case {i})"
    a = "Here is a careful answer. " * rng.randint(4, 12) + f"```python\nprint({i})\n```"
    b = "A shorter answer that misses a step. " * rng.randint(2, 8)
    return prompt, a, b


def seed_pending(engine: Engine, pending: int, project_name: str = "bench-queue", seed: int = 0) -> int:
    """Store ``pending`` judged pairs that wait for review; returns the project id.

    Mostly uncertainty-ranked review items, ~5 % audits and ~3 % incidents, like a live queue.
    """
    rng = random.Random(seed)
    now = utcnow()
    with Session(engine) as session:
        project = Project(
            name=project_name, judges=[{"model": "mock/bench"}], routing=RoutingSettings().model_dump()
        )
        session.add(project)
        session.flush()
        job = Job(project_id=project.id, n_pairs=pending)
        session.add(job)
        session.flush()
        project_id, job_id = project.id, job.id
        base = session.execute(text("SELECT COALESCE(MAX(id), 0) FROM pair")).scalar_one()
        dbase = session.execute(text("SELECT COALESCE(MAX(id), 0) FROM decision")).scalar_one()
        for start in range(0, pending, SEED_CHUNK):
            pairs, decisions = [], []
            for i in range(start, min(pending, start + SEED_CHUNK)):
                prompt, a, b = _texts(i, rng)
                draw = rng.random()
                route, reasons = (
                    ("incident", ["both_bad"]) if draw < 0.03 else ("review", ["below_threshold"])
                )
                if 0.03 <= draw < 0.08:
                    reasons = ["audit"]
                pairs.append(
                    {
                        "id": base + i + 1,
                        "project_id": project_id,
                        "job_id": job_id,
                        "client_id": f"bench-{i}",
                        "prompt": prompt,
                        "response_a": a,
                        "response_b": b,
                        "meta": {},
                        "split": "train",
                        "content_hash": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "state": "done",
                        "attempts": 1,
                        "safety_flag": False,
                        "safety_reasons": [],
                        "decision_id": dbase + i + 1,
                        "created_at": now,
                        "judged_at": now,
                    }
                )
                decisions.append(
                    {
                        "id": dbase + i + 1,
                        "pair_id": base + i + 1,
                        "label": rng.choice(["A>B", "B>A", "A>>B", "tie"]),
                        "chosen": "A",
                        "confidence": rng.uniform(0.5, 1.0),
                        "route": route,
                        "reasons": reasons,
                        "version": "bench",
                        "created_at": now,
                    }
                )
            session.execute(insert(Pair), pairs)
            session.execute(insert(Decision), decisions)
            queue.on_decisions_written(session, [p["id"] for p in pairs])
            session.commit()
        if engine.dialect.name == "postgresql":
            # Explicit ids above leave the sequences behind; later inserts must not collide.
            for table in ("pair", "decision"):
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                session.execute(text(f"SELECT setval({sequence}, (SELECT MAX(id) FROM {table}))"))
            session.execute(text("ANALYZE"))
            session.commit()
    return project_id


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _engine_for(database_url: str | None) -> tuple[Engine, str, Any]:
    """An engine on a fresh database: a temporary SQLite file, or a new PostgreSQL schema."""
    if database_url is None:
        tmp = tempfile.TemporaryDirectory(prefix="prelabel-bench-queue-")
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
        return make_engine(url), url, tmp.cleanup
    url = Settings(database_url=database_url).database_url
    if not url.startswith("postgresql"):
        return make_engine(url), url, lambda: None
    schema = f"bench_queue_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return make_engine(url, schema=schema), url, drop


def bench_queue(
    pending: int = 100_000, database_url: str | None = None, samples: int = 500
) -> dict[str, Any]:
    engine, url, cleanup = _engine_for(database_url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        project_id = seed_pending(engine, pending)
        seed_s = time.perf_counter() - started
        with Session(engine, expire_on_commit=False) as session:
            project = session.get_one(Project, project_id)
            reviewers: list[tuple[Reviewer, str]] = [
                create_reviewer(session, f"bench-{i}") for i in range(REVIEWERS)
            ]
            for reviewer, _ in reviewers:
                assign_projects(session, reviewer, [project_id])
        settings = Settings(database_url=url, ingest_processes=0)
        # No worker and so no background preparation competing for the CPU. Entered once (the
        # lifespan only re-checks the schema) so requests share one event loop, as in a server.
        client = TestClient(create_app(settings, engine, run_worker=False))
        answer = ReviewSubmit(label="A>B", time_on_task_s=1.0)

        def http_next(i: int) -> float:
            reviewer, token = reviewers[i % REVIEWERS]
            t0 = time.perf_counter()
            response = client.post(
                f"/v1/projects/{project_id}/review/next",
                json={"queue": "review"},
                headers={"authorization": f"Bearer {token}"},
            )
            elapsed = time.perf_counter() - t0
            item = response.json()["item"]
            submit_label(engine, item["lease_id"], reviewer, answer)
            return elapsed

        def service_next(i: int) -> float:
            reviewer, _ = reviewers[i % REVIEWERS]
            t0 = time.perf_counter()
            item = queue.next_item(engine, project, reviewer, "review")
            elapsed = time.perf_counter() - t0
            if item is None:
                raise RuntimeError("the review queue ran dry during the benchmark")
            submit_label(engine, item["lease_id"], reviewer, answer)
            return elapsed

        with client:
            for i in range(10):  # warm-up: connections, caches, the redactor's name lists
                http_next(i)
            http_ms = [1000 * http_next(i) for i in range(samples)]
        service_ms = [1000 * service_next(i) for i in range(samples)]
        return {
            "pending": pending,
            "database": engine.dialect.name,
            "samples": samples,
            "p50_ms": round(statistics.median(http_ms), 2),
            "p95_ms": round(_percentile(http_ms, 0.95), 2),
            "max_ms": round(max(http_ms), 2),
            "service_p50_ms": round(statistics.median(service_ms), 2),
            "service_p95_ms": round(_percentile(service_ms, 0.95), 2),
            "goal_p95_ms": 50,
            "meets_goal": _percentile(http_ms, 0.95) <= 50,
            "seed_s": round(seed_s, 1),
            "measured": "POST /review/next through the ASGI app in-process (auth, claim, lease, "
            "redaction on demand, JSON); service_* = the queue function alone",
        }
    finally:
        engine.dispose()
        cleanup()
