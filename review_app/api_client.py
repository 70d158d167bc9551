"""The review app's only way to data: the prelabel HTTP API (never the database)."""

from __future__ import annotations

import os
from typing import Any

import httpx


class ApiError(Exception):
    """An API answer the app shows to the reviewer: status code, a readable message, and the
    machine-readable code when the API gave one (``{"detail": {"code", "message"}}``)."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.code = code


def _code(response: httpx.Response) -> str | None:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return str(detail["code"]) if isinstance(detail, dict) and "code" in detail else None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict) and "message" in detail:
        return str(detail["message"])
    if isinstance(detail, list):  # FastAPI validation errors: keep just the messages
        messages = []
        for error in detail:
            message = str(error.get("msg", error)) if isinstance(error, dict) else str(error)
            messages.append(message.removeprefix("Value error, "))
        return "; ".join(messages)
    return str(detail)


def filter_params(flt: dict[str, Any] | None) -> dict[str, Any]:
    """A ``QueueFilter`` body as the queue list's query parameters.

    >>> filter_params({"reasons": ["audit"], "jobs": [2], "metadata": {"lang": "de"}, "text": "x"})
    {'reason': ['audit'], 'job': [2], 'meta': ['lang:de'], 'text': 'x'}
    """
    flt = flt or {}
    params: dict[str, Any] = {}
    if flt.get("reasons"):
        params["reason"] = list(flt["reasons"])
    if flt.get("jobs"):
        params["job"] = list(flt["jobs"])
    if flt.get("metadata"):
        params["meta"] = [f"{key}:{value}" for key, value in flt["metadata"].items()]
    if flt.get("text"):
        params["text"] = flt["text"]
    return params


class ApiClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = (base_url or os.environ.get("PRELABEL_API_URL", "http://127.0.0.1:8000")).rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response), _code(response))
        return response

    def projects(self) -> list[dict[str, Any]]:
        return self.get("/v1/projects")

    def project(self, project_id: int) -> dict[str, Any]:
        return self._call("GET", f"/v1/projects/{project_id}").json()

    def jobs(self, project_id: int) -> list[dict[str, Any]]:
        return self.get(f"/v1/projects/{project_id}/jobs")

    def results(self, job_id: int, limit: int = 200, after: int = 0) -> dict[str, Any]:
        return self.get(f"/v1/jobs/{job_id}/results", limit=limit, after=after)

    # --- review ----------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/v1/review/me").json()

    def next_item(self, project_id: int, queue: str, filter: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{"item": {...} | None, "detail": "..."}``; ``filter`` as the API's ``QueueFilter``."""
        body: dict[str, Any] = {"queue": queue}
        if filter:
            body["filter"] = filter
        return self._call("POST", f"/v1/projects/{project_id}/review/next", json=body).json()

    # --- the queue steered: list, search, assign -----------------------------------------

    def queue(
        self,
        project_id: int,
        queue: str,
        filter: dict[str, Any] | None = None,
        assigned: str = "any",
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        """What waits and matches ``filter``: ``{"items", "matched", "assigned_to_you", ...}``."""
        params: dict[str, Any] = {"queue": queue, "assigned": assigned, "offset": offset, "limit": limit}
        params.update(filter_params(filter))
        return self._call("GET", f"/v1/projects/{project_id}/review/queue", params=params).json()

    def assignments(self, project_id: int) -> dict[str, Any]:
        """The project's reviewers and assignments (senior reviewers)."""
        return self._call("GET", f"/v1/projects/{project_id}/review/assignments").json()

    def assign(self, project_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v1/projects/{project_id}/review/assignments", json=body).json()

    def unassign(self, project_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v1/projects/{project_id}/review/assignments/release", json=body).json()

    def submit(self, lease_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v1/review/leases/{lease_id}/submit", json=body).json()

    def history(self, project_id: int, limit: int = 20) -> list[dict[str, Any]]:
        """The caller's own current labels in the project, newest first."""
        return self._call("GET", f"/v1/projects/{project_id}/review/history", params={"limit": limit}).json()

    def revise(self, label_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Replace one's own label (the old one is kept, superseded by the new one)."""
        return self._call("POST", f"/v1/review/labels/{label_id}/revise", json=body).json()

    def skip(self, lease_id: int, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/review/leases/{lease_id}/skip", json={"reason": reason}).json()

    def progress(self, project_id: int, queue: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/projects/{project_id}/review/progress", params={"queue": queue}).json()

    def stats(self, project_id: int) -> dict[str, Any]:
        return self._call("GET", f"/v1/projects/{project_id}/review/stats").json()

    def labels(self, project_id: int, annotator: str | None = None) -> list[dict[str, Any]]:
        params = {"annotator": annotator} if annotator else None
        return self._call("GET", f"/v1/projects/{project_id}/review/labels", params=params).json()["labels"]

    def quality(self, project_id: int) -> dict[str, Any]:
        """Per-reviewer quality: labels, speed, honeypot accuracy, flags, pauses."""
        return self._call("GET", f"/v1/projects/{project_id}/review/quality").json()

    def agreement(self, project_id: int) -> dict[str, Any]:
        """Inter-reviewer agreement: project, reviewer pairs, batches, Dawid–Skene accuracy."""
        return self._call("GET", f"/v1/projects/{project_id}/agreement").json()

    def control_charts(self, project_id: int, window: int = 20) -> dict[str, Any]:
        """p-charts of agreement with the reference: per reviewer (windows of labels), per batch."""
        path = f"/v1/projects/{project_id}/review/control-charts"
        return self._call("GET", path, params={"window": window}).json()

    # --- calibration (may not exist on older servers: None instead of an error) -------

    def calibration(self, project_id: int) -> dict[str, Any] | None:
        response = self.http.get(f"/v1/projects/{project_id}/calibration")
        if response.status_code in (404, 405, 501):
            return None
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json()

    def calibration_report_url(self, project_id: int) -> str:
        return f"{self.base_url}/v1/projects/{project_id}/calibration/report.html"

    def calibration_report_html(self, project_id: int) -> str | None:
        response = self.http.get(f"/v1/projects/{project_id}/calibration/report.html", timeout=30)
        if response.status_code >= 400:
            return None
        return response.text
