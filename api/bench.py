"""Benchmarks: ratios measured in one run, on this machine, never timed unit tests."""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api.db import make_engine, upgrade
from api.main import create_app
from api.settings import Settings
from api.worker import Worker
from judge.client import litellm
from judge.prompt import render_messages


def _synthetic_pairs(n: int) -> list[dict[str, str]]:
    return [
        {
            "client_id": f"bench-{i}",
            "prompt": f"Question {i}: explain item {i * 7 % 101} briefly.",
            "response_a": f"Answer A to {i}: " + "alpha " * (i % 13 + 5),
            "response_b": f"Answer B to {i}: " + "beta " * (i % 11 + 5),
        }
        for i in range(n)
    ]


async def _bare_calls(
    models: list[str], api_base: str, pairs: list[dict[str, str]], concurrency: int
) -> float:
    """The same judge calls straight through litellm.acompletion: the floor we compare to."""
    messages = [
        render_messages(p["prompt"], first, second)
        for p in pairs
        for first, second in ((p["response_a"], p["response_b"]), (p["response_b"], p["response_a"]))
    ]
    semaphore = asyncio.Semaphore(concurrency)

    async def one(model: str, message: list[dict[str, str]]) -> None:
        async with semaphore:
            await litellm.acompletion(
                model=model, messages=message, api_base=api_base, max_retries=0, timeout=60
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(model, m) for m in messages for model in models))
    return time.perf_counter() - started


async def bench_throughput(
    pairs: int,
    judges: int,
    latency_ms: float,
    *,
    concurrency: int | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Full pipeline (API ingest, worker, litellm judging, routing, storage) vs bare calls."""
    if pairs < 1 or judges < 1 or latency_ms < 0:
        raise SystemExit("--pairs and --judges must be >= 1 and --latency-ms >= 0")
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(database_url=url, judge_retry_initial_s=0.01)
        if concurrency:
            settings.judge_concurrency = concurrency
            settings.worker_pairs_in_flight = max(4, 4 * concurrency)
        engine = make_engine(url)
        upgrade(engine)
        app = create_app(settings, engine, run_worker=False)
        api_base = f"latency_ms={latency_ms:g}"
        models = [f"mock/bench-judge-{k}" for k in range(judges)]
        data = _synthetic_pairs(pairs)
        await _bare_calls(models, api_base, data[:20], settings.judge_concurrency)  # warm-up both paths

        started = time.perf_counter()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            response = await client.post(
                "/v1/projects",
                json={
                    "name": f"bench-{time.time_ns()}",
                    "judges": [{"model": m, "api_base": api_base} for m in models],
                },
            )
            response.raise_for_status()
            project_id = response.json()["id"]
            body = "\n".join(__import__("json").dumps(p) for p in data)
            response = await client.post(
                f"/v1/projects/{project_id}/jobs",
                content=body,
                headers={"content-type": "application/x-ndjson"},
            )
            response.raise_for_status()
            job_id = response.json()["job_id"]
            ingest_s = time.perf_counter() - started
            worker = Worker(engine, settings)
            await worker.run(until_idle=True)
            status = (await client.get(f"/v1/jobs/{job_id}")).json()
        pipeline_s = time.perf_counter() - started
        if not status["complete"]:
            raise RuntimeError(f"pipeline did not finish: {status['by_state']}")
        bare_s = await _bare_calls(models, api_base, data, settings.judge_concurrency)
        engine.dispose()
    calls = pairs * judges * 2
    return {
        "pairs": pairs,
        "judges": judges,
        "latency_ms": latency_ms,
        "concurrency": settings.judge_concurrency,
        "database": url.split(":", 1)[0],
        "judge_calls": calls,
        "judge_errors": status["judge_errors"],
        "ingest_s": round(ingest_s, 3),
        "pipeline_s": round(pipeline_s, 3),
        "bare_litellm_s": round(bare_s, 3),
        "calls_per_s": round(calls / pipeline_s, 1),
        "bare_calls_per_s": round(calls / bare_s, 1),
        "overhead_ratio": round(pipeline_s / bare_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
