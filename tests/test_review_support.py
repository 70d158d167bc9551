"""Helpers shared by the review tests (this module holds no tests of its own)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

ADMIN_TOKEN = "admin-dev-token"  # Settings' default, which the test settings keep
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def make_project(
    client: TestClient | httpx.Client,
    name: str,
    judges: list[Any] | None = None,
    routing: dict[str, Any] | None = None,
) -> int:
    body: dict[str, Any] = {"name": name, "judges": judges or ["fake/ok"]}
    if routing:
        body["routing"] = routing
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def post_pairs(
    client: TestClient | httpx.Client, project_id: int, n: int = 0, pairs: list[dict[str, Any]] | None = None
) -> int:
    pairs = pairs or [
        {
            "client_id": f"c{i}",
            "prompt": f"Question {i}: how do I sort a list in Python?",
            "response_a": f"Use `sorted(xs)` ({i}).",
            "response_b": f"Write a bubble sort by hand ({i}).",
        }
        for i in range(n)
    ]
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": pairs})
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


def new_reviewer(client: TestClient | httpx.Client, name: str) -> str:
    r = client.post("/v1/reviewers", json={"name": name}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_api(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
