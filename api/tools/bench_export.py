"""``prelabel bench export``: export every format from a project of N judged pairs.

The project is built straight into the database in bulk (mock-judge decisions, some human
labels, an open calibration version, a few frozen_eval pairs, some of them duplicated in the
train split), not through the worker, which would take far longer than the exports. Each
format is then exported with :func:`api.export.snapshots.create_export` (forced past the
promotion gate: the project is synthetic), the ``hf`` export is reloaded with ``datasets``,
and the process's peak RSS is read at the end.
"""

from __future__ import annotations

import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.db import make_engine, upgrade
from api.models import CalibrationVersion, Decision, Job, Judgment, Label, Pair, Project
from api.schemas import RoutingSettings

FIVE = ("A>>B", "A>B", "tie", "B>A", "B>>A")
JUDGES = ("mock/judge-a", "mock/judge-b")
BUILD_CHUNK = 5000


def build_project(engine: Engine, pairs: int, seed: int = 0, name: str | None = None) -> Project:
    """A project with ``pairs`` judged pairs inserted in bulk: ~70 % auto-accepted, ~25 %
    review, ~5 % safety incidents; gold labels on ~7 %, review labels on ~3 %; ~1 %
    frozen_eval, and ~1 % of the train prompts copied from a frozen one."""
    rng = random.Random(seed)
    with Session(engine, expire_on_commit=False) as session:
        project = Project(
            name=name or f"bench-export-{pairs}",
            judges=[{"model": j} for j in JUDGES],
            routing=RoutingSettings(target_agreement=0.85).model_dump(),
        )
        session.add(project)
        session.flush()
        job = Job(project_id=project.id, n_pairs=pairs)
        session.add(job)
        session.flush()
        session.add(
            CalibrationVersion(
                project_id=project.id,
                version=1,
                trigger="refit",
                open=True,
                reason="bench: open",
                threshold=0.8,
                guaranteed_agreement=0.86,
                expected_coverage=0.7,
                n_labels=max(pairs // 20, 1),
            )
        )
        session.commit()
        project_id, job_id = project.id, job.id
    frozen_prompts: list[str] = []
    with Session(engine) as session:
        # Explicit ids (a pair's decision_id is known before either row is stored), after any
        # already taken; PostgreSQL's sequences are moved past them at the end.
        first_pair = session.exec(select(func.coalesce(func.max(Pair.id), 0))).one()
        first_decision = session.exec(select(func.coalesce(func.max(Decision.id), 0))).one()
        for start in range(0, pairs, BUILD_CHUNK):
            pair_rows, decision_rows, judgment_rows, label_rows = [], [], [], []
            for i in range(start, min(start + BUILD_CHUNK, pairs)):
                pid, did = first_pair + i + 1, first_decision + i + 1
                split = "frozen_eval" if rng.random() < 0.01 else "train"
                prompt = f"Question {i}: explain topic {rng.randrange(10**9)} in two short paragraphs."
                if split == "frozen_eval":
                    frozen_prompts.append(prompt)
                elif frozen_prompts and rng.random() < 0.01:
                    prompt = rng.choice(frozen_prompts)  # a leak the gate must hold back
                draw = rng.random()
                route = "auto_accept" if draw < 0.7 else "review" if draw < 0.95 else "incident"
                label = rng.choice(FIVE)
                pair_rows.append(
                    {
                        "id": pid,
                        "project_id": project_id,
                        "job_id": job_id,
                        "client_id": f"bench-{i}",
                        "prompt": prompt,
                        "response_a": f"Answer A to question {i}. " * rng.randint(3, 12),
                        "response_b": f"Answer B to question {i}. " * rng.randint(3, 12),
                        "meta": {"topic": i % 17},
                        "split": split,
                        "content_hash": f"{pid:064x}",
                        "state": "done",
                        "attempts": 1,
                        "safety_flag": route == "incident",
                        "safety_reasons": [],
                        "injection_reasons": [],
                        "decision_id": did,
                    }
                )
                decision_rows.append(
                    {
                        "id": did,
                        "pair_id": pid,
                        "label": label,
                        "chosen": "A" if label.startswith("A") else "B" if label.startswith("B") else "tie",
                        "confidence": rng.uniform(0.5, 1.0),
                        "route": route,
                        "reasons": {"auto_accept": [], "review": ["low_confidence"]}.get(
                            route, ["safety_flag"]
                        ),
                        "version": "cal-1",
                        "judge_calls_saved": 0,
                    }
                )
                for judge in JUDGES:
                    judgment_rows.append(
                        {
                            "pair_id": pid,
                            "judge": judge,
                            "order": "ab",
                            "verdict": label,
                            "prompt_version": "rubric-v1",
                            "content_hash": f"{pid:064x}",
                            "cost": 0.0001,
                        }
                    )
                # Gold on some auto-accepted pairs and some incidents, review labels on some others.
                source = "gold" if draw < 0.05 or draw >= 0.98 else "review" if 0.7 <= draw < 0.73 else None
                if source is not None:
                    label_rows.append(
                        {
                            "project_id": project_id,
                            "pair_id": pid,
                            "label": rng.choice(FIVE),
                            "both_bad": source == "review" and rng.random() < 0.1,
                            "source": source,
                            "annotator": f"annotator-{rng.randrange(5)}",
                            "idempotency_key": f"{source}:{pid}",
                        }
                    )
            session.execute(insert(Pair), pair_rows)
            session.execute(insert(Decision), decision_rows)
            session.execute(insert(Judgment), judgment_rows)
            if label_rows:
                session.execute(insert(Label), label_rows)
            session.commit()
        if engine.dialect.name == "postgresql":
            for table in ("pair", "decision"):
                session.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}")
                )
            session.commit()
    with Session(engine, expire_on_commit=False) as session:
        built = session.get(Project, project_id)
        assert built is not None
        return built


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bench_export(pairs: int) -> dict[str, Any]:
    """Build the project on a temporary SQLite file, export every format (split "all"), reload
    the hf export; timings and peak memory."""
    from datasets import load_from_disk

    from api.export import FORMATS
    from api.export.snapshots import ExportRequest, create_export

    work = Path(tempfile.mkdtemp(prefix="prelabel-bench-export-"))
    engine = make_engine(f"sqlite:///{work / 'bench.db'}")
    try:
        upgrade(engine)
        started = time.perf_counter()
        project = build_project(engine, pairs)
        build_s = time.perf_counter() - started
        seconds: dict[str, float] = {}
        cpu: dict[str, float] = {}  # this process's CPU time: the machine may be shared
        rows: dict[str, int] = {}
        held_back = 0
        for fmt in FORMATS:
            request = ExportRequest(
                format=fmt, split="all", force=True, reason="benchmark (synthetic project)"
            )
            started, cpu_started = time.perf_counter(), time.process_time()
            export = create_export(engine, project, request, export_dir=work / "exports")
            seconds[fmt] = round(time.perf_counter() - started, 3)
            cpu[fmt] = round(time.process_time() - cpu_started, 3)
            rows[fmt] = export.rows
            held_back = export.manifest["held_back"]["total"]
            if fmt == "hf":
                started = time.perf_counter()
                reloaded = load_from_disk(str(Path(export.path) / "dataset"))
                assert sum(len(split) for split in reloaded.values()) == export.rows
                seconds["hf_reload"] = round(time.perf_counter() - started, 3)
        return {
            "pairs": pairs,
            "seconds_per_format": seconds,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "rows_per_s": round(rows["dpo"] / seconds["dpo"], 1) if seconds["dpo"] else None,
            "cpu_seconds_per_format": cpu,
            "dpo_rows_per_cpu_s": round(rows["dpo"] / cpu["dpo"], 1) if cpu["dpo"] else None,
            "rows_per_format": rows,
            "held_back": held_back,
            "build_seconds": round(build_s, 3),
            "database": engine.dialect.name,
        }
    finally:
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
