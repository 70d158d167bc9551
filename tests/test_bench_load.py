"""The API stays responsive while it judges: `prelabel bench load` end to end, and /healthz
against an API whose own worker is judging (issue 10, item 4)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.main import create_app
from api.tools.cli import main
from tests.helpers import ADMIN, fast_settings, live_api, make_project, post_question_pairs, sqlite_url_for


def test_bench_load_reports_every_kind_of_request_without_errors(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["bench", "load", "--clients", "3", "--pairs-per-job", "20", "--timeout", "60", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result
    assert time.monotonic() - started < 180  # stops by itself: --timeout, plus the server start-up
    for kind in ("post_job_ms", "get_status_ms", "get_results_ms", "healthz_ms"):
        assert set(result[kind]) == {"n", "p50", "p95", "max"}
        assert result[kind]["n"] > 0
    assert result["errors"] == 0 and result["jobs_completed"] == 3 and not result["timed_out"]
    assert result["database"] == "sqlite" and result["server_tracebacks"] == 0
    assert result["server_peak_rss_mb"] > 0


def test_healthz_answers_while_the_api_judges(tmp_path: Path, engine: Engine) -> None:
    # Not a speed test: 1 s only catches an event loop blocked by judging (it was 4 s).
    settings = fast_settings(sqlite_url_for(tmp_path / "test.db"), review_prepare="0")
    with live_api(create_app(settings, engine, run_worker=True)) as base:
        with httpx.Client(base_url=base, headers=ADMIN, timeout=30) as http:
            judges = [{"model": f"mock/h{k}", "api_base": "latency_ms=20"} for k in range(2)]
            project = make_project(http, "healthz", judges)
            job = post_question_pairs(http, project, n=150)
            slowest, deadline = 0.0, time.monotonic() + 60
            while not http.get(f"/v1/jobs/{job}").json()["complete"]:
                assert time.monotonic() < deadline, "the worker did not judge the pairs"
                sent = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                slowest = max(slowest, time.perf_counter() - sent)
                time.sleep(0.05)
    assert slowest < 1.0, f"/healthz took {slowest:.2f} s while the API judged"
