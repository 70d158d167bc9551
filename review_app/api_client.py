"""The review app's only way to data: the prelabel HTTP API (never the database)."""

from __future__ import annotations

import os
from typing import Any

import httpx


class ApiClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = (base_url or os.environ.get("PRELABEL_API_URL", "http://127.0.0.1:8000")).rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    def projects(self) -> list[dict[str, Any]]:
        return self.get("/v1/projects")

    def jobs(self, project_id: int) -> list[dict[str, Any]]:
        return self.get(f"/v1/projects/{project_id}/jobs")

    def results(self, job_id: int, limit: int = 200, after: int = 0) -> dict[str, Any]:
        return self.get(f"/v1/jobs/{job_id}/results", limit=limit, after=after)
