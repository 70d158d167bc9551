"""Benchmarks: ratios measured in one run, on this machine, never timed unit tests."""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api.background import tune_gc_for_serving
from api.db import make_engine, upgrade
from api.judging.screens import shared_pool
from api.judging.worker import Worker
from api.main import create_app
from api.metrics import JUDGE_CALLS
from api.settings import Settings
from judge.client import completion_kwargs
from judge.litellm_loader import load_litellm
from judge.prompt import render_messages


def _synthetic_pairs(n: int, tag: str = "bench") -> list[dict[str, str]]:
    """Plain question-and-answer pairs. The responses must not name a slot ("Answer A to 3:"
    did): the injection re-check reads a line that names the answer the judge should pick as
    addressed to the judge and asks every judge once more, so every pair cost three calls per
    judge instead of two (on the shared data it is 5 % of pairs; README, issue 20)."""
    note = "" if tag == "bench" else f" ({tag})"  # another tag, other texts: no shared content hash
    return [
        {
            "client_id": f"{tag}-{i}",
            "prompt": f"Question {i}{note}: explain item {i * 7 % 101} briefly.",
            "response_a": f"Item {i * 7 % 101} in short: " + "alpha " * (i % 13 + 5),
            "response_b": f"About item {i * 7 % 101}: " + "beta " * (i % 11 + 5),
        }
        for i in range(n)
    ]


def _judge_calls_made() -> int:
    """Judge calls this process has made (the worker's counter: re-check calls included)."""
    return int(sum(s.value for m in JUDGE_CALLS.collect() for s in m.samples if s.name.endswith("_total")))


def _screen_cpu_s(processes: int) -> float:
    """CPU seconds of the worker's screen processes so far (0 without them)."""
    return shared_pool(processes).cpu_s() if processes else 0.0


def _litellm_logging_worker() -> Any:
    """litellm's background queue of each call's success logging, or None (older litellm: the
    logging runs inside the call). Imported through :func:`load_litellm`: importing litellm
    before it sets LITELLM_LOCAL_MODEL_COST_MAP made litellm fetch its price table from the
    network (three failed attempts and warnings on every bench run here)."""
    load_litellm()
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except ImportError:
        return None
    return GLOBAL_LOGGING_WORKER


class _Clock:
    """Wall and process CPU time (all threads) of one benchmark phase.

    Each phase starts from a collected heap and an empty litellm logging queue, and ends once
    litellm has finished the deferred success logging of the phase's own calls. Without that the
    bare calls, which return faster than that queue drains, left about half of their logging
    (~1.4 s of 8000 calls) to run after their clock stopped, while the pipeline drains its own
    inside its window. CPU time is the steadier number on a shared machine, where other
    processes stretch wall time.
    """

    async def __aenter__(self) -> _Clock:
        await _flush_litellm_logging()
        gc.collect()  # neither phase pays for the other's garbage
        self.flush_s = 0.0
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    async def __aexit__(self, *exc: object) -> None:
        flush_started = time.perf_counter()
        await _flush_litellm_logging()
        ended = time.perf_counter()
        self.flush_s = ended - flush_started
        self.wall, self.cpu = ended - self.wall, time.process_time() - self.cpu


async def _flush_litellm_logging() -> None:
    worker = _litellm_logging_worker()
    if worker is not None:
        await worker.flush()


async def _bare_calls(
    models: list[str], api_base: str, pairs: list[dict[str, str]], concurrency: int, timeout_s: float
) -> _Clock:
    """The same judge calls straight through litellm.acompletion: the floor we compare to.

    Same models, provider, messages and arguments as the worker's calls (judge.client's
    completion_kwargs), at the worker's concurrency.
    """
    kwargs = completion_kwargs(timeout_s, api_base)
    messages = [
        render_messages(p["prompt"], first, second)
        for p in pairs
        for first, second in ((p["response_a"], p["response_b"]), (p["response_b"], p["response_a"]))
    ]
    semaphore = asyncio.Semaphore(concurrency)

    async def one(model: str, message: list[dict[str, str]]) -> None:
        async with semaphore:
            await load_litellm().acompletion(model=model, messages=message, **kwargs)

    async with _Clock() as clock:
        await asyncio.gather(*(one(model, m) for m in messages for model in models))
    return clock


def _refused(response: httpx.Response, what: str) -> None:
    """Raise ValueError with the API's own reason when it refused the bench's project or job (a
    user's judge entry in ``bench live`` can be refused: an unknown model, a bad api_base)."""
    if response.is_error:
        raise ValueError(f"the API refused the {what} ({response.status_code}): {response.text[:2000]}")


async def run_pipeline(
    app: Any, engine: Any, settings: Settings, judges: list[dict[str, Any]], data: list[dict[str, str]]
) -> tuple[dict[str, Any], float]:
    """Create a project with the panel ``judges`` (JudgeSpec dicts), ingest the pairs over the
    API, run a worker until idle: (job status, ingest s). ``bench live`` runs it too."""
    started = time.perf_counter()
    transport = httpx.ASGITransport(app=app)
    admin = {"authorization": f"Bearer {settings.admin_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=admin) as client:
        response = await client.post(
            "/v1/projects",
            json={"name": f"bench-{time.time_ns()}", "judges": judges},
        )
        _refused(response, "project")
        project_id = response.json()["id"]
        body = "\n".join(json.dumps(p) for p in data)
        response = await client.post(
            f"/v1/projects/{project_id}/jobs",
            content=body,
            headers={"content-type": "application/x-ndjson"},
        )
        _refused(response, "job")
        job_id = response.json()["job_id"]
        ingest_s = time.perf_counter() - started
        worker = Worker(engine, settings)
        await worker.run(until_idle=True)
        status = (await client.get(f"/v1/jobs/{job_id}")).json()
    if not status["complete"]:
        raise RuntimeError(f"pipeline did not finish: {status['by_state']}")
    return status, ingest_s


async def bench_throughput(
    pairs: int,
    judges: int,
    latency_ms: float,
    *,
    concurrency: int | None = None,
    database_url: str | None = None,
    screen_processes: int = 0,
) -> dict[str, Any]:
    """Full pipeline (API ingest, worker, litellm judging, routing, storage) vs bare calls.

    ``screen_processes``: processes that run the worker's per-pair screens beside the judging
    process (``Settings.screen_processes``; 0: in it). The output names them and their CPU."""
    if pairs < 1 or judges < 1 or latency_ms < 0:
        raise SystemExit("--pairs and --judges must be >= 1 and --latency-ms >= 0")
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(
            database_url=url,
            judge_retry_initial_s=0.01,
            admin_token=secrets.token_urlsafe(24),
            ingest_processes=0,  # ingest in this process: what is measured is the pipeline
            screen_processes=screen_processes,
        )
        if concurrency:
            settings.judge_concurrency = concurrency
            settings.worker_pairs_in_flight = max(4, 4 * concurrency)
        engine = make_engine(url)
        upgrade(engine)
        app = create_app(settings, engine, run_worker=False)
        api_base = f"latency_ms={latency_ms:g}"
        models = [f"mock/bench-judge-{k}" for k in range(judges)]
        data = _synthetic_pairs(pairs)
        timeout_s = settings.judge_timeout_s
        # Warm-up of both paths: first calls pay one-off setup (litellm's, and the API's, the
        # worker's and the database's) that neither measurement should. The pipeline warms up on
        # other texts in another project, so the measured run gets no judgment cache hits from it.
        await _bare_calls(models, api_base, data[:20], settings.judge_concurrency, timeout_s)
        panel = [{"model": m, "api_base": api_base} for m in models]
        await run_pipeline(app, engine, settings, panel, _synthetic_pairs(20, "warm-up"))
        # The judging processes' garbage-collector settings (api/background.py), for both phases
        # alike: the heap the warm-ups loaded is frozen, young collections are rarer.
        tune_gc_for_serving()

        calls_before, screen_cpu_before = _judge_calls_made(), _screen_cpu_s(screen_processes)
        async with _Clock() as pipeline:
            status, ingest_s = await run_pipeline(app, engine, settings, panel, data)
        pipeline_calls = _judge_calls_made() - calls_before
        screen_cpu = _screen_cpu_s(screen_processes) - screen_cpu_before
        bare = await _bare_calls(models, api_base, data, settings.judge_concurrency, timeout_s)
        engine.dispose()
    pipeline_s, bare_s = pipeline.wall, bare.wall
    calls = pairs * judges * 2
    return {
        "pairs": pairs,
        "judges": judges,
        "latency_ms": latency_ms,
        "concurrency": settings.judge_concurrency,
        "database": url.split(":", 1)[0],
        "judge_calls": calls,
        # Calls the pipeline made: more than judge_calls when the injection re-check asks again.
        "pipeline_judge_calls": pipeline_calls,
        "judge_errors": status["judge_errors"],
        "ingest_s": round(ingest_s, 3),
        "pipeline_s": round(pipeline_s, 3),
        "bare_litellm_s": round(bare_s, 3),
        "calls_per_s": round(pipeline_calls / pipeline_s, 1),
        "bare_calls_per_s": round(calls / bare_s, 1),
        # Per call: the two phases make the same calls unless the pipeline re-checks some pairs.
        "overhead_ratio": round((pipeline_s / pipeline_calls) / (bare_s / calls), 3),
        "pipeline_cpu_s": round(pipeline.cpu, 3),
        "bare_litellm_cpu_s": round(bare.cpu, 3),
        "cpu_overhead_ratio": round((pipeline.cpu / pipeline_calls) / (bare.cpu / calls), 3),
        # The pipeline's processes besides the judging one (the screens'), and their CPU: with
        # it, the whole pipeline's CPU per call against the bare calls'.
        "screen_processes": screen_processes,
        "screen_cpu_s": round(screen_cpu, 3),
        "all_cpu_overhead_ratio": round((pipeline.cpu + screen_cpu) / pipeline_calls / (bare.cpu / calls), 3),
        # Part of each wall time: waiting for litellm's deferred logging of the phase's calls.
        "pipeline_log_flush_s": round(pipeline.flush_s, 3),
        "bare_log_flush_s": round(bare.flush_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
