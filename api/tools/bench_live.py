"""``prelabel bench live``: a user's own model endpoint as a judge, through the real pipeline.

The pairs go in through the jobs API and one in-process worker judges them (both display
orders) against ``--api-base``, on a temporary SQLite database, as ``bench throughput`` runs its
mock judges. What comes back is what a user needs before pointing a project at the endpoint:
how many calls gave a readable verdict (valid), an answer no parser reads (invalid) or no answer
at all (failed, by kind: timeout, context window, connection...), latency percentiles, how many
verdicts carry a confidence, the cost, and a few raw invalid answers to see what the model said.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from api.db import make_engine, upgrade
from api.main import create_app
from api.models import Decision, Judgment
from api.schemas import JudgeSpec
from api.settings import Settings
from api.tools.bench_load import percentiles
from api.tools.bench_throughput import run_pipeline
from judge.verdicts import INVALID

REPO = Path(__file__).resolve().parents[2]
# LLMBar dev from the shared data beside the repository, else the 200-pair sample shipped with it.
DEFAULT_DATA = (
    REPO.parent / "shared" / "data" / "replay" / "llmbar_dev.jsonl",
    REPO / "api" / "sample_data" / "llmbar_sample.jsonl",
)
SAMPLE_CHARS = 300  # of each invalid answer shown
SAMPLES = 3

# What litellm and judge.client name a failed call (the exception's class, before ": "), as the
# kinds a user acts on: a longer --timeout-s, a smaller prompt or context, a server that is up.
_FAILURE_KINDS = (
    ("ContextWindowExceeded", "context_window"),
    ("Timeout", "timeout"),
    ("APIConnectionError", "connection"),
    ("ConnectError", "connection"),
    ("RateLimit", "rate_limit"),
    ("EndpointRefused", "endpoint_refused"),
    ("AuthenticationError", "authentication"),
    ("NotFoundError", "not_found"),
    ("BadRequestError", "bad_request"),
    ("InternalServerError", "server_error"),
    ("ServiceUnavailable", "server_error"),
    ("BadGateway", "server_error"),
)


def failure_kind(error: str) -> str:
    """The kind of a failed call from its stored error ("Timeout: ..." -> "timeout")."""
    name = error.split(":", 1)[0]
    return next((kind for marker, kind in _FAILURE_KINDS if marker in name), name.strip() or "unknown")


def read_pairs(path: Path, n: int) -> list[dict[str, str]]:
    """The first ``n`` pairs of a JSONL file whose lines have ``prompt``, ``response_a`` and
    ``response_b`` (the recorded-judgments format has them; other fields are ignored)."""
    pairs: list[dict[str, str]] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if len(pairs) == n:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pair = {key: row[key] for key in ("prompt", "response_a", "response_b")}
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}:{number}: not a pair with prompt, response_a, response_b ({exc})"
                ) from exc
            if not all(isinstance(text, str) for text in pair.values()):
                raise ValueError(f"{path}:{number}: prompt, response_a and response_b must be strings")
            pairs.append({"client_id": f"live-{number}", **pair})
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def judge_entry(
    model: str, api_base: str, *, custom: bool, logprobs: bool, options: dict[str, Any]
) -> dict[str, Any]:
    """The panel entry for the endpoint: a JudgeSpec with the per-judge ``options`` that are set
    (``max_tokens``, ``timeout_s``, ``max_concurrency``, ``temperature``, ``response_format``).
    Raises ValueError with JudgeSpec's own message for an option it refuses."""
    entry: dict[str, Any] = {"model": model, "api_base": api_base, "custom": custom, "logprobs": logprobs}
    entry.update({name: value for name, value in options.items() if value is not None})
    try:
        JudgeSpec.model_validate(entry)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"judge options refused: {problems}") from exc
    return entry


def summarize(judgments: list[Judgment], routes: Counter[str]) -> dict[str, Any]:
    """Counts, failure kinds, latency, confidence and cost of the calls; a few invalid answers."""
    calls = [j for j in judgments if not j.cached]
    failed = [j for j in calls if j.verdict is None]
    invalid = [j for j in calls if j.verdict == INVALID]
    valid = [j for j in calls if j.verdict not in (None, INVALID)]
    kinds = Counter(failure_kind(j.error or "") for j in failed)
    examples = {kind: next(j.error for j in failed if failure_kind(j.error or "") == kind) for kind in kinds}
    return {
        "calls": len(calls),
        "valid": len(valid),
        "invalid": len(invalid),
        "failed": len(failed),
        "failure_kinds": dict(kinds.most_common()),
        "failure_examples": {kind: (error or "")[:SAMPLE_CHARS] for kind, error in examples.items()},
        "latency_ms": percentiles([j.latency_ms for j in calls if j.latency_ms is not None]),
        "with_confidence": sum(j.confidence is not None for j in valid),
        "retries": sum(max(0, j.attempts - 1) for j in calls),
        "prompt_tokens": sum(j.prompt_tokens or 0 for j in calls),
        "completion_tokens": sum(j.completion_tokens or 0 for j in calls),
        "cost_usd": round(sum(j.cost for j in calls), 6),
        "routes": dict(routes.most_common()),
        "invalid_samples": [(j.raw or j.error or "")[:SAMPLE_CHARS] for j in invalid[:SAMPLES]],
    }


async def bench_live(
    model: str,
    api_base: str,
    pairs: int,
    *,
    custom: bool = False,
    logprobs: bool = True,
    max_tokens: int | None = None,
    timeout_s: float = 60.0,
    concurrency: int = 4,
    attempts: int = 1,
    temperature: float | None = None,
    response_format: str | None = None,
    data: str | None = None,
) -> dict[str, Any]:
    """Judge ``pairs`` pairs with ``model`` at ``api_base`` through the pipeline; the summary."""
    if pairs < 1 or timeout_s <= 0 or concurrency < 1 or attempts < 1:
        raise ValueError("--pairs, --concurrency and --attempts must be >= 1 and --timeout-s > 0")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("--max-tokens must be >= 1")
    path = Path(data) if data else next((p for p in DEFAULT_DATA if p.exists()), DEFAULT_DATA[-1])
    rows = read_pairs(path, pairs)
    options = {
        "max_tokens": max_tokens,
        "timeout_s": timeout_s,
        "max_concurrency": concurrency,
        "temperature": temperature,
        "response_format": response_format,
    }
    entry = judge_entry(model, api_base, custom=custom, logprobs=logprobs, options=options)
    with tempfile.TemporaryDirectory(prefix="prelabel-bench-live-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'live.db'}"
        settings = Settings(
            database_url=url,
            admin_token=secrets.token_urlsafe(24),
            ingest_processes=0,
            judge_api_bases=[api_base],  # the user's endpoint is the one this run calls
            # The panel has one judge: the process-wide limits are set to its own as well.
            judge_timeout_s=timeout_s,
            judge_concurrency=concurrency,
            worker_pairs_in_flight=max(4, 2 * concurrency),
            judge_max_attempts=attempts,
        )
        engine = make_engine(url)
        upgrade(engine)
        try:
            app = create_app(settings, engine, run_worker=False)
            await run_pipeline(app, engine, settings, [entry], rows)
            with Session(engine) as session:
                judgments = list(session.exec(select(Judgment)).all())
                routes = Counter(d.route for d in session.exec(select(Decision)).all())
        finally:
            engine.dispose()
    return {
        "model": model,
        "api_base": api_base,
        "data": str(path),
        "pairs": len(rows),
        "judge": entry,
        **summarize(judgments, routes),
    }


def run(**kwargs: Any) -> dict[str, Any]:
    """:func:`bench_live` from synchronous code (the CLI)."""
    return asyncio.run(bench_live(**kwargs))
