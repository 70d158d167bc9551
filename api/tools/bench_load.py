"""``prelabel bench load``: how the real server answers while it judges under concurrent clients.

Starts ``prelabel serve`` (the API and its judging process) on 127.0.0.1 over a fresh
database (a temporary SQLite file, or a new PostgreSQL database created and dropped for the
run), with a panel of mock judges (offline, a fixed latency per call, litellm's real CPU cost).
Then ``clients`` threads each post a job of ``pairs_per_job`` distinct pairs with the project's
API key, poll the job until it is complete and read its results, while another thread hits
``/healthz`` every ~100 ms. Reports p50/p95/max latency per kind of request, every error
(a non-2xx answer or an exception), jobs completed, and the server's peak RSS. Everything stops
by itself after ``timeout_s``: the clients give up, the server is terminated.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text

from api.db import make_engine
from api.settings import Settings
from api.tools.demo import free_port, wait_until_up

KINDS = ("post_job", "get_status", "get_results", "healthz")
HEALTH_EVERY_S = 0.1
STATUS_EVERY_S = 0.5
RESULTS_PAGE = 1000
ERROR_SAMPLES = 10
JSON_HEADERS = {"content-type": "application/json"}


@dataclass
class _Record:
    """Latencies and errors of every request, from all client threads."""

    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, kind: str, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        """Send one request and record its latency; None (and an error) unless it answered 2xx."""
        started = time.perf_counter()
        try:
            response = send()
        except httpx.HTTPError as exc:
            # A timeout counts in the latencies too (as the time waited): leaving it out would
            # flatter the percentiles exactly when the server stalls.
            elapsed_s = time.perf_counter() - started
            with self.lock:
                self.latencies_ms[kind].append(1000 * elapsed_s)
            self._error(kind, f"{kind}: {type(exc).__name__} after {elapsed_s:.1f}s")
            return None
        elapsed_ms = 1000 * (time.perf_counter() - started)
        with self.lock:
            self.latencies_ms[kind].append(elapsed_ms)
        if not response.is_success:
            self._error(kind, f"{kind}: HTTP {response.status_code} {response.text[:200]}")
            return None
        return response

    def _error(self, kind: str, sample: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.samples) < ERROR_SAMPLES:
                self.samples.append(sample)


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)

    return {"n": len(ordered), "p50": at(0.5), "p95": at(0.95), "max": round(ordered[-1], 1)}


def _pairs(run: str, client: int, n: int) -> list[dict[str, str]]:
    """Distinct pairs (no two share a content hash, so nothing comes from the judgment cache)."""
    return [
        {
            "client_id": f"c{client}-{i}",
            "prompt": f"[{run}/{client}/{i}] Explain step {i} of procedure {client} to a new engineer.",
            "response_a": f"Answer A ({client}/{i}): " + "first do this, then check that. " * (i % 7 + 3),
            "response_b": f"Answer B ({client}/{i}): " + "it depends on the situation. " * (i % 5 + 3),
        }
        for i in range(n)
    ]


@contextmanager
def _fresh_database(database_url: str | None) -> Iterator[str]:
    """A URL of an empty database for one run: a temporary SQLite file, or a PostgreSQL
    database created for the run and dropped after it (the server needs a plain URL, so a
    schema on the search path, as the in-process benchmarks use, would not reach it)."""
    if database_url is None:
        with tempfile.TemporaryDirectory(prefix="prelabel-bench-load-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    url = Settings(database_url=database_url).database_url
    if not url.startswith("postgresql"):
        yield url
        return
    name = f"bench_load_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.engine.dispose()


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout)\b.*$", re.MULTILINE)


def _exceptions(log_text: str) -> dict[str, int]:
    """The exception lines of the server's log (type and message, truncated), counted."""
    return dict(Counter(m.group(0)[:160] for m in _EXCEPTION_LINE.finditer(log_text)).most_common(5))


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM (the resident set's high-water mark) of a live process, in MiB (Linux only)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (the server's judging process), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _client(base: str, key: str, project_id: int, body: bytes, record: _Record, deadline: float) -> bool:
    """One batch client: post the job, poll it until complete, read every page of results.
    Returns whether the job completed and its results were read before the deadline."""
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=max(1.0, deadline - time.monotonic())) as api:
        send = partial(api.post, f"/v1/projects/{project_id}/jobs", content=body, headers=JSON_HEADERS)
        posted = record.request("post_job", send)
        if posted is None:
            return False
        job_id = posted.json()["job_id"]
        while time.monotonic() < deadline:
            status = record.request("get_status", lambda: api.get(f"/v1/jobs/{job_id}"))
            if status is not None and status.json()["complete"]:
                break
            time.sleep(STATUS_EVERY_S)
        else:
            return False
        after: int | None = 0
        while after is not None and time.monotonic() < deadline:
            page_after = {"after": after, "limit": RESULTS_PAGE}
            read = partial(api.get, f"/v1/jobs/{job_id}/results", params=page_after)
            page = record.request("get_results", read)
            if page is None:
                return False
            after = page.json()["next_after"]
        return after is None


def _health(base: str, record: _Record, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=30) as api:
        while not stop.is_set():
            record.request("healthz", lambda: api.get("/healthz"))
            stop.wait(HEALTH_EVERY_S)


def _project(base: str, admin_token: str, judges: int, latency_ms: float) -> tuple[int, str]:
    """A project with a panel of mock judges, and an API key for its batch clients."""
    panel = [{"model": f"mock/load-{k}", "api_base": f"latency_ms={latency_ms:g}"} for k in range(judges)]
    with httpx.Client(base_url=base, timeout=60, headers={"authorization": f"Bearer {admin_token}"}) as admin:
        project = admin.post("/v1/projects", json={"name": f"load-{uuid.uuid4().hex[:8]}", "judges": panel})
        project.raise_for_status()
        project_id = project.json()["id"]
        key = admin.post(f"/v1/projects/{project_id}/keys", json={"name": "bench load"})
        key.raise_for_status()
        return project_id, key.json()["key"]


def bench_load(
    clients: int = 20,
    pairs_per_job: int = 1000,
    judges: int = 2,
    latency_ms: float = 50.0,
    database_url: str | None = None,
    timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Run the load benchmark; the result is one flat-ish dict (printed as JSON by the CLI)."""
    admin_token = "adm_" + secrets.token_urlsafe(24)
    port = free_port(0)
    base = f"http://127.0.0.1:{port}"
    load_before = round(os.getloadavg()[0], 2)  # another busy process on the machine skews everything
    started = time.monotonic()
    deadline = started + timeout_s
    record = _Record()
    with _fresh_database(database_url) as url, tempfile.TemporaryFile() as server_log:
        env = {**os.environ, "PRELABEL_ADMIN_TOKEN": admin_token, "PRELABEL_DATABASE_URL": url}
        server = subprocess.Popen(
            [sys.executable, "-m", "api.tools.cli", "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        peak_rss: float | None = None
        children_rss: list[float] = []
        completed, judging_s, timed_out = 0, None, False
        try:
            wait_until_up(f"{base}/healthz", server)
            project_id, key = _project(base, admin_token, judges, latency_ms)
            run = uuid.uuid4().hex[:8]
            # Encoded before any client starts: the clients' JSON work is not the server's latency.
            jobs = [json.dumps({"pairs": _pairs(run, c, pairs_per_job)}).encode() for c in range(clients)]
            stop_health = threading.Event()
            health = threading.Thread(target=_health, args=(base, record, stop_health), daemon=True)
            results: list[bool] = []
            judging_started = time.monotonic()

            def one(c: int) -> None:
                results.append(_client(base, key, project_id, jobs[c], record, deadline))

            threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in range(clients)]
            health.start()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()) + 5)
            judging_s = time.monotonic() - judging_started
            stop_health.set()
            health.join(35)
            completed = sum(results)
            timed_out = time.monotonic() >= deadline
            peak_rss = _peak_rss_mb(server.pid)
            children_rss = [_peak_rss_mb(child) or 0.0 for child in _children(server.pid)]
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server_log.seek(0)
            log_text = server_log.read().decode(errors="replace")
    errors = sum(record.errors.values())
    return {
        "database": make_url(url).get_backend_name(),
        "clients": clients,
        "pairs_per_job": pairs_per_job,
        "judges": judges,
        "judge_latency_ms": latency_ms,
        "jobs_completed": completed,
        "jobs_failed": clients - completed,
        "pairs_per_s": round(completed * pairs_per_job / judging_s, 1) if judging_s else None,
        "seconds": round(time.monotonic() - started, 1),
        "timed_out": timed_out,
        **{f"{kind}_ms": percentiles(record.latencies_ms[kind]) for kind in KINDS},
        "errors": errors,
        "errors_by_kind": record.errors,
        "error_samples": record.samples,
        "server_tracebacks": log_text.count("Traceback"),
        "server_exceptions": _exceptions(log_text),
        "load_average_1m_before": load_before,
        "server_peak_rss_mb": peak_rss,
        # The server's child processes (its judging process), each its own peak, summed.
        "server_children_peak_rss_mb": round(sum(children_rss), 1),
        "measured": "real server (prelabel serve, with its worker) on 127.0.0.1; latencies seen by "
        "the clients; healthz polled every 100 ms while jobs run",
    }
