"""The CLI entry points that a newcomer and CI run: demo, bench, settings, migrations."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy import inspect
from sqlmodel import Session, select

from api.db import make_engine, upgrade
from api.models import Project
from api.settings import Settings
from api.tools.bench_throughput import bench_throughput
from tests.waiting import run_process

ROOT = Path(__file__).resolve().parents[1]


def test_bench_throughput_reports_the_promised_keys(tmp_path: Path) -> None:
    result = asyncio.run(
        bench_throughput(
            40, 2, 0.0, concurrency=8, screen_processes=1, database_url=f"sqlite:///{tmp_path / 'b.db'}"
        )
    )
    for key in (
        "pairs",
        "judges",
        "latency_ms",
        "judge_calls",
        "calls_per_s",
        "overhead_ratio",
        "peak_rss_mb",
    ):
        assert key in result
    assert result["judge_calls"] == 160 and result["judge_errors"] == 0
    # The bench's pairs trigger no injection re-check: the pipeline makes the bare calls, no more.
    assert result["pipeline_judge_calls"] == 160
    assert result["overhead_ratio"] > 0 and result["calls_per_s"] > 0
    # The screens ran in a process of their own, and the output says so, with its CPU.
    assert result["screen_processes"] == 1 and result["screen_cpu_s"] >= 0
    assert result["all_cpu_overhead_ratio"] >= result["cpu_overhead_ratio"]


def test_judges_setting_reads_a_comma_separated_list(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PRELABEL_JUDGES", "gpt-4o, anthropic/claude-3-5-sonnet-20240620 ,")
    monkeypatch.setenv("PRELABEL_DATABASE_URL", "postgresql://u@h/db")
    settings = Settings()
    assert settings.judges == ["gpt-4o", "anthropic/claude-3-5-sonnet-20240620"]
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_upgrade_is_repeatable_and_keeps_data(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with Session(engine) as session:
        session.add(Project(name="kept", judges=[{"model": "x"}], routing={}))
        session.commit()
    upgrade(engine)
    with Session(engine) as session:
        assert [p.name for p in session.exec(select(Project))] == ["kept"]
    assert {"project", "job", "pair", "judgment", "decision", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )


def test_demo_runs_offline_and_prints_the_summary(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELABEL_")}
    env.update(PRELABEL_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}", NO_COLOR="1", COLUMNS="160")
    process = run_process(
        [sys.executable, "-m", "api.tools.cli", "demo", "--no-wait", "--api-port", "0", "--review-port", "0"],
        cwd=tmp_path,
        env=env,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    out = process.stdout
    for expected in (
        "Pairs by route",
        "gate_closed",
        "Order sensitivity per judge",
        "Calibration gate (before any human label): CLOSED",
        "Calibration gate (after 200 gold labels): OPEN",
        "auto_accept",
        "sign in with token rvw_",
        "Review app:",
        "API docs:",
    ):
        assert expected in out, out
    # The rate the demo measured through the API equals the rate in the recorded file.
    rows = [line for line in out.splitlines() if line.startswith("│ replay/gpt-4/vanilla_norules")]
    assert rows, out
    cells = [c.strip() for c in rows[0].split("│") if c.strip()]
    assert cells[3] == cells[5], rows[0]
    json.dumps(out)  # printable


def test_serve_refuses_to_start_without_an_admin_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PRELABEL_ADMIN_TOKEN"}
    env["PRELABEL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.db'}"
    done = run_process([sys.executable, "-m", "api.tools.cli", "serve", "--port", "0"], env=env)
    assert done.returncode != 0
    assert "PRELABEL_ADMIN_TOKEN is not set" in done.stderr and "--dev" in done.stderr
