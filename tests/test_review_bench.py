"""`prelabel bench queue` runs end to end on a small queue and reports latency percentiles."""

from __future__ import annotations

import json

import pytest

from api.tools.bench_queue import bench_queue
from api.tools.cli import main
from tests.helpers import PG_URL


def test_bench_queue_reports_latency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "queue", "--pending", "400", "--samples", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"pending", "p50_ms", "p95_ms", "database"} <= set(result)
    assert result["pending"] == 400 and result["database"] == "sqlite"
    assert 0 < result["p50_ms"] <= result["p95_ms"]


@pytest.mark.postgres
def test_bench_queue_on_postgres_cleans_up_its_schema() -> None:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need PRELABEL_TEST_DATABASE_URL")
    result = bench_queue(pending=300, database_url=PG_URL, samples=10)
    assert result["database"] == "postgresql" and result["p95_ms"] > 0
