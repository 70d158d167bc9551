"""Prometheus metrics: judge calls, errors, latency, cost (process counters), pairs by state (from the DB)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import Pair

# prometheus_client's multiprocess mode, chosen by this variable before its first import:
# `prelabel serve` sets it, so the counters of its judging child process reach /metrics.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
REGISTRY = CollectorRegistry(auto_describe=True)
JUDGE_CALLS = Counter(
    "prelabel_judge_calls", "Judge calls made (cache hits excluded)", ["judge", "outcome"], registry=REGISTRY
)
JUDGE_CACHE_HITS = Counter(
    "prelabel_judge_cache_hits", "Judgments served from the cache", ["judge"], registry=REGISTRY
)
JUDGE_ERRORS = Counter(
    "prelabel_judge_errors", "Judge calls that failed after retries", ["judge"], registry=REGISTRY
)
JUDGE_RETRIES = Counter(
    "prelabel_judge_retries",
    "Judge call attempts after the first (rate limits, 5xx, timeouts)",
    ["judge"],
    registry=REGISTRY,
)
JUDGE_LATENCY = Histogram(
    "prelabel_judge_latency_seconds",
    "Judge call latency including retries",
    ["judge"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
JUDGE_COST = Counter(
    "prelabel_judge_cost_usd", "Judge cost in USD (litellm pricing)", ["judge"], registry=REGISTRY
)
JUDGE_CALLS_SAVED = Counter(
    "prelabel_judge_calls_saved",
    "Judge calls (one judge, one order) a cascade did not need, against the full panel",
    ["project"],
    registry=REGISTRY,
)
PAIRS_ROUTED = Counter("prelabel_pairs_routed", "Pairs routed by this process", ["route"], registry=REGISTRY)
INJECTION_RECHECKS = Counter(
    "prelabel_injection_rechecks",
    "Pairs judged again without the text that may address the judge (judge.injection.neutralize): "
    "moved (a verdict changed: flagged injection_suspected) or held",
    ["outcome"],
    registry=REGISTRY,
)


class PairStateCollector(Collector):
    """Pairs by state, read from the database at scrape time (true across all workers)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("prelabel_pairs", "Pairs by state (all workers)", labels=["state"])
        with Session(self.engine) as session:
            counts = dict(session.exec(select(Pair.state, func.count()).group_by(Pair.state)).all())
        for state in ("pending", "judging", "done"):
            gauge.add_metric([state], counts.get(state, 0))
        yield gauge


def render(engine: Engine) -> bytes:
    per_db = CollectorRegistry()
    per_db.register(PairStateCollector(engine))
    counters = REGISTRY
    if MULTIPROCESS:  # this server's processes' counters, summed from their files
        counters = CollectorRegistry()
        MultiProcessCollector(counters)
    return generate_latest(counters) + generate_latest(per_db)
