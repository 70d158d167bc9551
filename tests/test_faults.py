"""Faults proven by tests: a misbehaving provider and a worker killed mid-job.

1. A fault-injecting OpenAI-compatible server (tests/fault_server.py) behind litellm's real
   ``openai/`` provider drives a 250-pair job through the API and the worker, with the gate
   open: no pair lost, none auto-accepted on a failed judge, every attempt and retry counted.
2. On PostgreSQL, three ``prelabel worker`` processes judge a job and one is SIGKILLed: the job
   completes once the dead worker's short leases expire, with one judgment per
   (pair, judge, order) and one decision per pair.
3. The API's own background process is SIGKILLed: /healthz reports it, the API replaces it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.ingest import store
from api.main import create_app
from api.models import Decision, Judgment, Pair, Project
from api.schemas import PairIn
from api.settings import Settings
from judge.client import RetryPolicy, call_judge
from tests.fault_server import RETRYABLE, FaultServer
from tests.helpers import (
    ADMIN,
    fast_settings,
    job_progress,
    live_api,
    make_project,
    post_question_pairs,
    run_worker,
    sqlite_url_for,
)
from tests.waiting import HTTP_TIMEOUT_S, cpu_seconds, slowdown, wait_for_progress

if TYPE_CHECKING:
    from tests.conftest import PgServer

pytestmark = pytest.mark.slow

JUDGES = ["openai/fault-judge-1", "openai/fault-judge-2"]
MAX_ATTEMPTS = 4
# Pairs judged to open the gate, and the faulty job's: ~1,200 requests at 25 % faults still
# meet every kind of fault dozens of times (the hangs ~12), at half the CPU of 500 pairs.
N_CALIBRATION = 120
N_JOB = 250
RETRY_AFTER_S = 0.1
# Shares of requests per kind in the faulty phase: ~25% of requests misbehave.
FAULTS = {
    "valid": 0.75,
    "rate_limit": 0.06,
    "server_error": 0.04,
    "garbage_body": 0.03,
    "hang": 0.01,
    "garbage_text": 0.05,
    "empty_choices": 0.06,
}
# Pairs whose every request fails the same way: retries run out (or, for empty choices, none help).
STICKY = {"[fault:server_error]": "server_error", "[fault:hang]": "hang", "[fault:empty]": "empty_choices"}


def _pairs(prefix: str, n: int, sticky: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """Pairs whose longer response wins (the fault server's verdict): A on even i, B on odd."""
    sticky = sticky or {}
    good, bad = "Use sorted(xs); it returns a new sorted list and leaves xs alone.", "Sort it."
    return [
        {
            "client_id": f"{prefix}{i}",
            "prompt": f"Question {prefix}{i}: how do I sort a list in Python? {sticky.get(i, '')}".strip(),
            "response_a": good if i % 2 == 0 else bad,
            "response_b": bad if i % 2 == 0 else good,
        }
        for i in range(n)
    ]


def _post_job(client: TestClient, project_id: int, pairs: list[dict[str, Any]]) -> int:
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": pairs})
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


def _results(client: TestClient, job_id: int) -> list[dict[str, Any]]:
    r = client.get(f"/v1/jobs/{job_id}/results", params={"format": "ndjson"})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def _retries_metric(client: TestClient) -> float:
    text = client.get("/metrics").text
    return sum(float(v) for v in re.findall(r"^prelabel_judge_retries_total\{[^}]*\} (\S+)$", text, re.M))


def test_a_faulty_provider_loses_no_pair_and_auto_accepts_no_failed_judgment(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(
        update={
            # A hang costs this per attempt; it is ample for a valid answer with 32 calls in
            # flight (the server shares this process), so every timeout is a hang. Stretched by
            # the contention measured now: a valid answer must not time out on a busy machine
            # (a hang lasts FaultServer's 30 s, far beyond it).
            "judge_timeout_s": min(3.0 * slowdown(), 15.0),
            "judge_concurrency": 32,
            "judge_max_attempts": MAX_ATTEMPTS,
            "judge_retry_initial_s": 0.01,
            "judge_retry_max_s": 0.05,
        }
    )
    with FaultServer({"valid": 1.0}, seed=7, retry_after_s=RETRY_AFTER_S, sticky=STICKY) as server:
        # A local endpoint the admin allow-lists (judge/endpoints.py); it gets no provider key.
        monkeypatch.setenv("PRELABEL_JUDGE_API_BASES", server.base_url)  # direct call_judge calls
        settings = settings.model_copy(update={"judge_api_bases": [server.base_url]})  # the service
        client.app.state.settings = settings  # type: ignore[attr-defined]
        # litellm's first call imports and sets up the provider (seconds): not a timeout to count.
        policy = RetryPolicy(max_attempts=1, timeout_s=60)
        warm = call_judge(
            JUDGES[0], "warm-up", "longer", "short", "ab", api_base=server.base_url, policy=policy
        )
        assert asyncio.run(warm).verdict == "A>B"

        # Calibrate on a clean provider so the gate opens: the check below is then not vacuous.
        judges = [{"model": m, "api_base": server.base_url, "custom": True} for m in JUDGES]
        routing = {"target_agreement": 0.8, "audit_rate": 0.0, "calibration_sample_rate": 0.0}
        r = client.post("/v1/projects", json={"name": "faults", "judges": judges, "routing": routing})
        assert r.status_code == 201, r.text
        project_id = r.json()["id"]
        calibration = _pairs("cal", N_CALIBRATION)
        _post_job(client, project_id, calibration)
        run_worker(engine, settings)
        # Humans agree with the judges on 95% (all-correct labels leave the calibrator one class).
        gold = [
            {
                "client_id": p["client_id"],
                "label": "AB"[(i + (i % 20 == 3)) % 2],
                "source": "gold",
                "annotator": "t",
            }
            for i, p in enumerate(calibration)
        ]
        assert client.post(f"/v1/projects/{project_id}/labels", json={"labels": gold}).status_code == 201
        version = client.post(f"/v1/projects/{project_id}/calibration/refit").json()
        assert version["state"] == "open", json.dumps(version)[:3000]

        # The faulty phase: N_JOB pairs, ten of them failing on every request.
        server.reset()
        server.schedule(FAULTS)
        sticky = {7: "[fault:server_error]", 77: "[fault:server_error]", 177: "[fault:server_error]"}
        sticky.update({11: "[fault:hang]", 111: "[fault:hang]", 211: "[fault:hang]"})
        sticky.update({13: "[fault:empty]", 113: "[fault:empty]", 213: "[fault:empty]", 243: "[fault:empty]"})
        retries_before = _retries_metric(client)
        started = time.monotonic()
        job_id = _post_job(client, project_id, _pairs("job", N_JOB, sticky))
        run_worker(engine, settings)
        elapsed = time.monotonic() - started
    counts = dict(server.counts)

    rows = _results(client, job_id)
    with Session(engine) as session:
        stored = session.exec(
            select(Judgment).join(Pair, Pair.id == Judgment.pair_id).where(Pair.job_id == job_id)
        ).all()
    calls = [j for j in stored if not j.cached]
    failed = [j for j in stored if j.error is not None]
    exhausted = [j for j in failed if not j.error.startswith("MalformedAnswer")]  # type: ignore[union-attr]
    routes = Counter(row["route"] for row in rows)
    garbled = {j.pair_id for j in stored if j.verdict == "invalid" and j.error is None}
    accepted_garbled = sum(row["route"] == "auto_accept" for row in rows if row["pair_id"] in garbled)
    print(
        f"\nfault job: {elapsed:.1f} s, requests by kind {counts}, judge calls {len(calls)}, "
        f"retries {sum(j.attempts - 1 for j in calls)}, failed judgments {len(failed)} "
        f"({len(exhausted)} out of attempts), routes {dict(routes)} ({accepted_garbled} auto-accepted "
        f"of {len(garbled)} with an unreadable verdict), "
        f"Retry-After waits {min(server.retry_gaps):.2f}-{max(server.retry_gaps):.2f} s"
    )

    # 0 pairs lost: every pair decided, each judged once per (judge, order).
    assert client.get(f"/v1/jobs/{job_id}").json()["complete"]
    assert len(rows) == N_JOB and all(row["state"] == "done" and row["route"] for row in rows)
    assert len({(j.pair_id, j.judge, j.order) for j in stored}) == len(stored) == N_JOB * len(JUDGES) * 2
    # 0 auto-accepted on a failed judge; and the gate did accept the clean ones.
    for row in rows:
        if any(j["error"] and not j["error"].startswith("InvalidAnswer") for j in row["judgments"]):
            assert row["route"] != "auto_accept" and "judge_failed" in row["reasons"], row
    # Every pair whose judgments all came back readable is accepted (the judges agree on each:
    # the longer answer wins), and those are most pairs (~53 % here: a quarter of requests fail).
    clean = [r for r in rows if all(j["error"] is None and j["verdict"] != "invalid" for j in r["judgments"])]
    assert len(clean) > 0.4 * N_JOB and all(r["route"] == "auto_accept" for r in clean)
    assert routes["auto_accept"] > 0.4 * N_JOB
    always_failing = {f"job{i}" for i in sticky}
    assert all(
        all(j["error"] for j in row["judgments"]) for row in rows if row["client_id"] in always_failing
    )
    # Every attempt reached the server, and every retry is counted: a retryable answer was
    # retried unless it was a call's last attempt.
    assert sum(j.attempts for j in calls) == server.total
    retries = sum(j.attempts - 1 for j in calls)
    assert sum(counts.get(kind, 0) for kind in RETRYABLE) == retries + len(exhausted)
    assert all(j.attempts == MAX_ATTEMPTS for j in exhausted)
    assert len(exhausted) >= 3 * 2 * 4  # the sticky 500s and hangs: 6 pairs x 4 calls
    assert _retries_metric(client) - retries_before == retries
    # Empty choices and garbage text are answers, not errors to retry: invalid judgments.
    malformed = [j for j in failed if j.error.startswith("MalformedAnswer")]  # type: ignore[union-attr]
    assert len(malformed) == counts["empty_choices"]  # each ended its call: never retried
    unreadable = [j for j in stored if j.verdict == "invalid" and j.error is None]
    assert len(unreadable) == counts["garbage_text"]
    # Retry-After honoured: a rate-limited request came back no sooner than asked (the
    # backoff alone would have waited at most judge_retry_max_s = 0.05 s).
    assert server.retry_gaps and min(server.retry_gaps) >= RETRY_AFTER_S


# --- a worker SIGKILLed mid-job ---------------------------------------------------------------

# On a quiet machine; both stretch with the contention measured when the test starts, since a
# worker's heartbeat runs on its judging loop, which a busy machine stalls for seconds.
LEASE_S = 4.0  # short (production: 30 s), renewed every lease / 3 while a worker lives
LATENCY_MS = 5000  # each pair takes longer than a lease: only heartbeats keep live workers' leases
# Two rounds of every worker's batch: the victim dies holding its second one.
IN_FLIGHT = 25
N_PAIRS = 2 * 3 * IN_FLIGHT
MOCK_JUDGES = ["mock/kill-judge"]


def _start_worker(url: str, log: Path, lease_s: float) -> subprocess.Popen[bytes]:
    prelabel = Path(sys.executable).with_name("prelabel")
    env = {
        **os.environ,
        "PRELABEL_DATABASE_URL": url,
        "PRELABEL_LEASE_SECONDS": str(lease_s),
        "PRELABEL_WORKER_PAIRS_IN_FLIGHT": str(IN_FLIGHT),
        "PRELABEL_JUDGE_CONCURRENCY": "256",
        "PRELABEL_POLL_INTERVAL_S": "0.2",
        # No review-queue preparation (torch, embeddings) in the workers: not what this test is
        # about, and its thread took the CPU (and the GIL) the heartbeats need.
        "PRELABEL_REVIEW_PREPARE": "0",
    }
    with log.open("wb") as out:
        return subprocess.Popen([str(prelabel), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)


def _own_cpu_seconds(process: subprocess.Popen[bytes]) -> int:
    """``cpu_seconds(process.pid)`` without its children (a worker starts none): one read,
    where a scan of every process for children cost ~2.5 ms a poll, three times a poll."""
    try:
        times = psutil.Process(process.pid).cpu_times()
    except psutil.Error:  # the killed one
        return 0
    return int(times.user + times.system)


def _held_by(engine: Engine, pid: int) -> set[int]:
    """The pairs the worker process ``pid`` holds (worker ids are host-pid-random)."""
    owner = Pair.lease_owner.like(f"%-{pid}-%")  # type: ignore[union-attr]
    with Session(engine) as session:
        return set(session.exec(select(Pair.id).where(Pair.state == "judging", owner)))


@pytest.mark.postgres
def test_a_sigkilled_worker_loses_nothing_and_its_pairs_return_within_a_lease(
    pg_server: PgServer, pg_engine: Engine, tmp_path: Path
) -> None:
    if pg_server.template is None:
        pytest.skip("worker processes need a database of their own (a role with CREATEDB)")
    stretch = slowdown(sample_s=0.5)
    lease_s, latency_ms = LEASE_S * stretch, LATENCY_MS * stretch
    url = pg_engine.url.render_as_string(hide_password=False)
    with Session(pg_engine, expire_on_commit=False) as session:
        judges = [{"model": m, "api_base": f"latency_ms={latency_ms:.0f}"} for m in MOCK_JUDGES]
        project = Project(name="sigkill", judges=judges, routing={})
        session.add(project)
        session.commit()
    pairs = [
        PairIn(client_id=f"k{i}", prompt=f"Question {i}?", response_a=f"Answer {i}.", response_b=f"No ({i}).")
        for i in range(N_PAIRS)
    ]
    store.create_job(pg_engine, project.id, pairs)  # type: ignore[arg-type]

    def count(*where: Any) -> int:
        with Session(pg_engine) as session:
            return session.exec(select(func.count()).select_from(Pair).where(*where)).one()

    def progress() -> tuple[int, ...]:
        """Pairs done and in hand, and the workers' CPU seconds: three processes importing
        litellm on a busy CI machine show nothing else for a minute or more."""
        in_hand = count(Pair.state == "judging")
        return count(Pair.state == "done"), in_hand, *(_own_cpu_seconds(w) for w in workers)

    started = time.monotonic()
    workers = [_start_worker(url, tmp_path / f"worker-{i}.log", lease_s) for i in range(3)]
    try:
        victim = workers[0]
        # Mid-job: some pairs stored, and the victim holding a batch.
        wait_for_progress(lambda: count(Pair.state == "done") >= 50, progress, "the first 50 pairs")
        wait_for_progress(lambda: bool(_held_by(pg_engine, victim.pid)), progress, "the victim to hold pairs")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.monotonic()
        orphans = _held_by(pg_engine, victim.pid)
        orphaned = Pair.id.in_(orphans)  # type: ignore[union-attr]
        victim_owner = Pair.lease_owner.like(f"%-{victim.pid}-%")  # type: ignore[union-attr]
        reclaimed_at = wait_for_progress(lambda: count(orphaned, victim_owner) == 0, progress, "a re-claim")
        rejudged_at = wait_for_progress(
            lambda: count(orphaned, Pair.state == "done") == len(orphans), progress, "re-judging"
        )
        wait_for_progress(lambda: count(Pair.state == "done") == N_PAIRS, progress, "the whole job")
        finished_at = time.monotonic()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
    print(
        f"\nSIGKILL {killed_at - started:.1f} s after start, {len(orphans)} pairs held: "
        f"re-claimed after {reclaimed_at - killed_at:.1f} s "
        f"(lease {lease_s:.1f} s), re-judged after {rejudged_at - killed_at:.1f} s "
        f"(judging takes {latency_ms / 1000:.1f} s), job done {finished_at - killed_at:.1f} s after the kill"
    )

    # Claimed again once the lease ran out and a survivor had room (at worst after its own
    # batch in hand was judged), with 5 s of polling and scheduling on top.
    assert orphans and reclaimed_at - killed_at <= lease_s + latency_ms / 1000 + 5 * stretch
    with Session(pg_engine) as session:
        stored = session.exec(select(Pair)).all()
        keys = session.exec(select(Judgment.pair_id, Judgment.judge, Judgment.order)).all()
        decided = session.exec(select(Decision.pair_id, Decision.id)).all()
    assert all(p.state == "done" and p.decision_id is not None and p.lease_owner is None for p in stored)
    # Exactly one judgment per (pair, judge, order) and one decision per pair, the current one.
    assert len(keys) == len(set(keys)) == N_PAIRS * len(MOCK_JUDGES) * 2
    assert len(decided) == N_PAIRS and {p.id: p.decision_id for p in stored} == dict(decided)
    # The dead worker's pairs were claimed twice; every other pair once: the survivors'
    # heartbeats kept their leases through judging that outlasts a lease.
    attempts = Counter(p.attempts for p in stored if p.id not in orphans)
    assert attempts == {1: N_PAIRS - len(orphans)}
    assert {p.attempts for p in stored if p.id in orphans} == {2}


def test_the_api_replaces_its_killed_background_process(tmp_path: Path, engine: Engine) -> None:
    """3. The API's own judging process is SIGKILLed (the OOM killer, a crash): /healthz says
    so, the API starts a new one, and the job still completes."""
    settings = fast_settings(sqlite_url_for(tmp_path / "test.db"), review_prepare="0", lease_seconds=2)
    app = create_app(settings, engine, run_worker=True)
    with live_api(app) as base:
        with httpx.Client(base_url=base, headers=ADMIN, timeout=HTTP_TIMEOUT_S) as http:
            assert http.get("/healthz").json()["background"] == "running"
            judges = [{"model": "mock/k", "api_base": "latency_ms=20"}]
            job = post_question_pairs(http, make_project(http, "killed", judges), n=60)
            pid = _background_pid(app)
            os.kill(pid, signal.SIGKILL)
            wait_for_progress(
                lambda: http.get("/healthz").json().get("background_restarts") == 1, cpu_seconds, "a restart"
            )
            health = http.get("/healthz")
            assert health.status_code == 200 and health.json()["background"] == "running"
            wait_for_progress(
                lambda: bool(http.get(f"/v1/jobs/{job}").json()["complete"]),
                lambda: (job_progress(http, job), cpu_seconds()),
                "the job to complete",
            )
            assert _background_pid(app) != pid


def _background_pid(app: FastAPI) -> int:
    """The API's background child, running (asked of the API: this process has other children,
    the fork server, multiprocessing's resource tracker, other tests' processes)."""
    pid = app.state.background.process.pid
    assert pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return int(pid)
