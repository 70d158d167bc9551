"""``prelabel demo``: API + worker + review app on SQLite over a bundled sample, offline.

With PRELABEL_JUDGES (and provider keys) set it judges the sample with live judges;
otherwise with replay judges of GPT-4 and GPT-3.5 serving their recorded verdicts.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.settings import get_settings
from api.tools.progress import cpu_seconds
from judge.recorded import load_recorded, recorded_to_five_point
from judge.verdicts import order_sensitivity
from review_app.launch import run_streamlit

SAMPLE = Path(__file__).parents[1] / "sample_data" / "llmbar_sample.jsonl"
REPLAY_JUDGES = ("gpt-4/vanilla_norules", "gpt-3.5-turbo/vanilla_norules")
console = Console(width=max(Console().width, 110))


def free_port(preferred: int) -> int:
    for port in dict.fromkeys((preferred, 0)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def wait_until_up(url: str, process: subprocess.Popen[bytes], stall_s: float = 60) -> None:
    """Until ``url`` answers (below 500). A slow start on a busy machine is waited for: this
    gives up only after ``stall_s`` seconds in which ``process`` and its children used no CPU
    second (a start-up imports for tens of seconds, and more when other work shares the cores)."""
    used, since = cpu_seconds(process.pid), time.monotonic()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with code {process.returncode} while starting")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        now, seen = time.monotonic(), cpu_seconds(process.pid)
        if seen != used:
            used, since = seen, now
        elif now - since > stall_s:
            raise RuntimeError(f"{url} did not come up: its process used no CPU for {stall_s:.0f}s")
        time.sleep(0.3)


def demo_project(api: httpx.Client) -> dict[str, Any]:
    live = get_settings().judges
    judges: list[Any] = list(live) or [
        {"model": f"replay/{j}", "api_base": str(SAMPLE)} for j in REPLAY_JUDGES
    ]
    name = "demo-live" if live else "demo-replay"
    for project in api.get("/v1/projects").json():
        if project["name"] == name:
            return project
    # The sample is small (200 pairs), so the demo project asks for 80% agreement (production
    # default: 90%); the strong judge's own AB/BA flip is a hard flag on top of the panel's
    # reversal (with two judges a reversal needs both to flip). Reviewers'
    # labels on the random calibration sample (a quarter of the pairs) refit every 10 labels.
    routing = {
        "target_agreement": 0.8,
        "n_min": 50,
        "refit_every": 10,
        "calibration_sample_rate": 0.25,
        "order_sensitive_judges": None if live else [judges[0]["model"]],
    }
    response = api.post(
        "/v1/projects",
        json={"name": name, "judges": judges, "allow_empty_responses": True, "routing": routing},
    )
    response.raise_for_status()
    return response.json()


def post_sample(api: httpx.Client, project_id: int) -> int:
    lines = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        lines.append(json.dumps({
            "client_id": record["id"], "prompt": record["prompt"],
            "response_a": record["response_a"], "response_b": record["response_b"],
            "metadata": {"source": record["source"]},
        }))  # fmt: skip
    response = api.post(
        f"/v1/projects/{project_id}/jobs",
        content="\n".join(lines),
        headers={"content-type": "application/x-ndjson"},
    )
    response.raise_for_status()
    return response.json()["job_id"]


def show_progress(api: httpx.Client, project_id: int) -> list[dict[str, Any]]:
    columns = (TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("judging", total=None)
        while True:
            jobs = api.get(f"/v1/projects/{project_id}/jobs").json()
            total, done = sum(j["pairs"] for j in jobs), sum(j["done"] for j in jobs)
            progress.update(task, total=total, completed=done)
            if done == total:
                return jobs
            time.sleep(0.5)


def summary_tables(api: httpx.Client, jobs: list[dict[str, Any]]) -> list[Table]:
    routes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for job in jobs:
        routes.update(job["by_route"])
        reasons.update(job["by_reason"])
    rows: list[dict[str, Any]] = []
    for job in jobs:
        text = api.get(f"/v1/jobs/{job['id']}/results", params={"format": "ndjson"}).text
        rows.extend(json.loads(line) for line in text.splitlines())
    by_route = Table(title="Pairs by route")
    by_route.add_column("route")
    by_route.add_column("pairs", justify="right")
    for route, n in routes.most_common():
        by_route.add_row(route, str(n))
    by_reason = Table(title="Review reasons (a pair can have several)")
    by_reason.add_column("reason")
    by_reason.add_column("pairs", justify="right")
    for reason, n in reasons.most_common():
        by_reason.add_row(reason, str(n))
    rates = order_sensitivity(
        (j["judge"], r["client_id"], j["order"], j["verdict"]) for r in rows for j in r["judgments"]
    )
    # What the recorded file itself says, so a replay run can be checked against it.
    recorded = {
        f"replay/{judge}": r
        for judge, r in order_sensitivity(
            (j.judge, p.id, j.order, recorded_to_five_point(j.verdict))
            for p in load_recorded(SAMPLE)
            for j in p.judgments
        ).items()
    }
    per_judge = Table(title="Order sensitivity per judge (AB and BA verdicts point different ways)")
    for column in ("judge", "pairs", "order-sensitive", "rate", "swap-consistent", "rate in recorded file"):
        per_judge.add_column(column, justify="left" if column == "judge" else "right", overflow="fold")
    for judge, r in rates.items():
        in_file = recorded.get(judge)
        per_judge.add_row(
            judge, str(r["pairs"]), str(r["order_sensitive"]),
            f"{r['order_sensitive_rate']:.1%}", f"{r['consistent_rate']:.1%}",
            f"{in_file['order_sensitive_rate']:.1%}" if in_file else "—",
        )  # fmt: skip
    cost = Table(title="Cost")
    cost.add_column("judge calls", justify="right")
    cost.add_column("errors", justify="right")
    cost.add_column("USD", justify="right")
    cost.add_row(
        str(sum(j["judge_calls"] for j in jobs)),
        str(sum(j["judge_errors"] for j in jobs)),
        f"{sum(j['cost'] for j in jobs):.4f}",
    )
    return [by_route, by_reason, per_judge, cost]


def show_gate(api: httpx.Client, project_id: int, when: str) -> dict[str, Any]:
    gate = api.get(f"/v1/projects/{project_id}/calibration").json()["gate"]
    colour = "green" if gate["open"] else "yellow"
    state = f"[{colour}]{gate['state'].upper()}[/{colour}]"
    console.print(f"\n[bold]Calibration gate ({when}):[/bold] {state} — {gate['reason']}")
    if gate["open"]:
        console.print(
            f"  threshold {gate['threshold']:.3f}; auto-accepted labels agree with humans >= "
            f"{gate['guaranteed_agreement']:.1%} with probability {1 - gate['delta']:.0%}; "
            f"expected coverage {gate['expected_coverage']:.1%}"
        )
    return gate


def import_gold_and_refit(api: httpx.Client, project_id: int) -> None:
    """Import the sample's human gold labels (LLMBar's) and refit the gate.

    The demo calibrates on the very pairs it routes, to show the gate opening; a real project
    imports gold for a random sample and lets the gate route the rest.
    """
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    gold = [r for r in records if r.get("gold") in ("A", "B", "tie")]
    labels = [
        {"client_id": r["id"], "label": r["gold"], "source": "gold", "annotator": "llmbar-gold"} for r in gold
    ]
    api.post(f"/v1/projects/{project_id}/labels", json={"labels": labels}).raise_for_status()
    console.print(f"\nImported the sample's {len(labels)} human gold labels and refitted.")
    api.post(f"/v1/projects/{project_id}/calibration/refit").raise_for_status()
    show_gate(api, project_id, f"after {len(labels)} gold labels")
    jobs = api.get(f"/v1/projects/{project_id}/jobs").json()
    routes: Counter[str] = Counter()
    for job in jobs:
        routes.update(job["by_route"])
    console.print("  pairs by route now: " + ", ".join(f"{k} {v}" for k, v in routes.most_common()))


def ensure_demo_reviewer(
    api_base_url: str, admin_token: str, project_id: int, name: str = "demo-reviewer"
) -> str:
    """Create (or re-key) reviewer ``name``, assigned to the demo project, through the API and
    return a working token.

    Tokens are stored hashed, so an existing reviewer gets a fresh token (the old one stops
    working): the demo always prints a token that signs in.
    """
    headers = {"authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api_base_url.rstrip("/"), headers=headers, timeout=10) as http:
        response = http.post("/v1/reviewers", json={"name": name, "projects": [project_id]})
        if response.status_code == 201:
            return response.json()["token"]
        if response.status_code != 409:
            response.raise_for_status()
        listing = http.get("/v1/reviewers")
        listing.raise_for_status()
        reviewer = next(r for r in listing.json() if r["name"] == name)
        assigned = http.put(
            f"/v1/reviewers/{reviewer['id']}/projects",
            json={"projects": sorted({*reviewer["projects"], project_id})},
        )
        assigned.raise_for_status()
        rotated = http.post(f"/v1/reviewers/{reviewer['id']}/token")
        rotated.raise_for_status()
        return rotated.json()["token"]


def run_demo(api_port: int = 8000, review_port: int = 8501, wait: bool = True) -> int:
    api_port, review_port = free_port(api_port), free_port(review_port)
    api_url, review_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{review_port}"
    database = get_settings().database_url
    console.print(f"[bold]prelabel demo[/bold] — database {database}")
    # The demo's own admin token unless one is configured: the API refuses to start without.
    admin_token = get_settings().admin_token or "adm_" + secrets.token_urlsafe(24)
    env = {**os.environ, "PRELABEL_ADMIN_TOKEN": admin_token}
    api_proc = subprocess.Popen(
        [sys.executable, "-m", "api.tools.cli", "serve", "--port", str(api_port), "--log-level", "warning"],
        env=env,
    )
    review_proc = run_streamlit(review_port, api_url)
    children = [api_proc, review_proc]
    try:
        wait_until_up(f"{api_url}/healthz", api_proc)
        api = httpx.Client(base_url=api_url, timeout=60, headers={"authorization": f"Bearer {admin_token}"})
        project = demo_project(api)
        console.print(
            f"project {project['name']!r}: judges " + ", ".join(j["model"] for j in project["judges"])
        )
        post_sample(api, project["id"])
        jobs = show_progress(api, project["id"])
        for table in summary_tables(api, jobs):
            console.print(table)
        show_gate(api, project["id"], "before any human label")
        if not get_settings().judges:  # gold labels exist for the bundled sample only
            import_gold_and_refit(api, project["id"])
        wait_until_up(f"{review_url}/_stcore/health", review_proc)
        token = ensure_demo_reviewer(api_url, admin_token, project["id"])
        key = api.post(f"/v1/projects/{project['id']}/keys", json={"name": "demo client"}).json()["key"]
        console.print(
            f"\n[bold green]Review app:[/bold green] {review_url}  — sign in with token [bold]{token}[/bold]"
        )
        console.print(
            f"[bold green]Admin token:[/bold green] {admin_token}  (create projects, keys, reviewers)"
        )
        console.print(f"[bold green]Project API key:[/bold green] {key}  (project {project['id']} only)")
        console.print(f"[bold green]API docs:[/bold green]   {api_url}/docs")
        console.print(f"[bold green]Metrics:[/bold green]    {api_url}/metrics")
        if wait:
            console.print("\nPress Ctrl-C to stop.")
            while all(child.poll() is None for child in children):
                time.sleep(1)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
