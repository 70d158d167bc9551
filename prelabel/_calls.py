"""Every request the client makes, built once for both clients (sync and async).

A :class:`Call` is what to send and how to read the answer; ``Client`` and ``AsyncClient`` only
differ in how they send it. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from prelabel.errors import PrelabelError
from prelabel.types import (
    ApiKeyCreated,
    Assigned,
    Assignments,
    CalibrationState,
    ControlCharts,
    ExportPublic,
    JobCancelled,
    JobCreated,
    JobResultsPage,
    JobRetried,
    JobStatus,
    LabelsStored,
    ProjectPublic,
    QueueFilter,
    QueuePage,
    ReviewStats,
    StoredLabel,
    Unassigned,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

NDJSON = "application/x-ndjson"  # the jobs and labels routes read one JSON object per line


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: method, path, query, body; ``read`` turns the answer's body into the result."""

    method: str
    path: str
    read: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def model(cls: type[M]) -> Callable[[Any], M]:
    return cls.model_validate


def models(cls: type[M]) -> Callable[[Any], list[M]]:
    return TypeAdapter(list[cls]).validate_python  # type: ignore[valid-type]  # cls is a class at run time


def ndjson(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """One compact JSON object per line (what the jobs and labels routes read).

    >>> ndjson([{"a": 1}, {"b": "é"}])
    b'{"a":1}\\n{"b":"\\xc3\\xa9"}\\n'
    """
    return "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows).encode()


def read_body(status_code: int, text: str, content_type: str) -> Any:
    """The answer's JSON, or a :class:`PrelabelError` carrying the API's message for a 4xx/5xx."""
    try:
        body = json.loads(text) if "json" in content_type and text else None
    except ValueError:
        body = None
    if status_code >= 400:
        raise PrelabelError.from_body(status_code, body, text)
    return body


# --- projects ---------------------------------------------------------------------------------


def create_project(
    name: str, judges: list[Any], routing: Mapping[str, Any] | None, **fields: Any
) -> Call[ProjectPublic]:
    body: dict[str, Any] = {"name": name, "judges": judges, **fields}
    if routing is not None:
        body["routing"] = dict(routing)
    return Call("POST", "/v1/projects", model(ProjectPublic), json=body)


def list_projects() -> Call[list[ProjectPublic]]:
    return Call("GET", "/v1/projects", models(ProjectPublic))


def get_project(project_id: int) -> Call[ProjectPublic]:
    return Call("GET", f"/v1/projects/{project_id}", model(ProjectPublic))


def update_project(
    project_id: int, judges: list[Any] | None, routing: Mapping[str, Any] | None, **aspects: Any
) -> Call[ProjectPublic]:
    """``aspects``: ``aspects`` (the new list) and/or ``overall``, when given (not None)."""
    body: dict[str, Any] = {k: v for k, v in aspects.items() if v is not None}
    if judges is not None:
        body["judges"] = judges
    if routing is not None:
        body["routing"] = dict(routing)
    if not body:
        raise ValueError("nothing to change: give judges, routing, aspects and/or overall")
    return Call("PATCH", f"/v1/projects/{project_id}", model(ProjectPublic), json=body)


def create_key(project_id: int, name: str) -> Call[ApiKeyCreated]:
    return Call("POST", f"/v1/projects/{project_id}/keys", model(ApiKeyCreated), json={"name": name})


def find_project(projects: list[ProjectPublic], name_or_id: str | int) -> ProjectPublic:
    """The project named ``name_or_id`` (or, failing that, with that id) among ``projects``."""
    for project in projects:
        if project.name == name_or_id:
            return project
    for project in projects:
        if str(project.id) == str(name_or_id):
            return project
    raise PrelabelError(404, f"no project {name_or_id!r} visible to this token")


# --- jobs -------------------------------------------------------------------------------------


def post_job(project_id: int, pairs: Iterable[Mapping[str, Any]]) -> Call[JobCreated]:
    return Call(
        "POST", f"/v1/projects/{project_id}/jobs", model(JobCreated),
        content=ndjson(pairs), headers={"content-type": NDJSON},
    )  # fmt: skip


def job_status(job_id: int) -> Call[JobStatus]:
    return Call("GET", f"/v1/jobs/{job_id}", model(JobStatus))


def list_jobs(project_id: int) -> Call[list[JobStatus]]:
    return Call("GET", f"/v1/projects/{project_id}/jobs", models(JobStatus))


def results_page(job_id: int, after: int, limit: int) -> Call[JobResultsPage]:
    params = {"format": "json", "after": after, "limit": limit}
    return Call("GET", f"/v1/jobs/{job_id}/results", model(JobResultsPage), params=params)


def retry_job(job_id: int, include_invalid: bool, judges: list[Any] | None) -> Call[JobRetried]:
    body = {"include_invalid": include_invalid, "judges": judges}
    return Call("POST", f"/v1/jobs/{job_id}/retry", model(JobRetried), json=body)


def cancel_job(job_id: int) -> Call[JobCancelled]:
    return Call("POST", f"/v1/jobs/{job_id}/cancel", model(JobCancelled))


# --- labels, calibration, review ----------------------------------------------------------------


def post_labels(project_id: int, labels: Iterable[Mapping[str, Any]]) -> Call[LabelsStored]:
    return Call(
        "POST", f"/v1/projects/{project_id}/labels", model(LabelsStored),
        content=ndjson(labels), headers={"content-type": NDJSON},
    )  # fmt: skip


def labels_page(project_id: int, source: str | None, after: int, limit: int) -> Call[list[StoredLabel]]:
    params: dict[str, Any] = {"after": after, "limit": limit}
    if source is not None:
        params["source"] = source
    read = models(StoredLabel)
    return Call("GET", f"/v1/projects/{project_id}/labels", lambda body: read(body["labels"]), params=params)


def calibration(project_id: int) -> Call[CalibrationState]:
    return Call("GET", f"/v1/projects/{project_id}/calibration", model(CalibrationState))


def report_html(project_id: int) -> Call[str]:
    return Call("GET", f"/v1/projects/{project_id}/calibration/report.html", str)


def review_stats(project_id: int, hours: int) -> Call[ReviewStats]:
    return Call("GET", f"/v1/projects/{project_id}/review/stats", model(ReviewStats), params={"hours": hours})


def queue_params(flt: QueueFilter | None) -> dict[str, Any]:
    """A filter as the queue list's query parameters (``meta`` as ``key:value``)."""
    if flt is None:
        return {}
    params: dict[str, Any] = {"reason": [str(r) for r in flt.reasons], "job": list(flt.jobs)}
    params["meta"] = [
        f"{key}:{json.dumps(v) if not isinstance(v, str) else v}" for key, v in flt.metadata.items()
    ]
    if flt.text:
        params["text"] = flt.text
    return {k: v for k, v in params.items() if v}


def as_filter(flt: QueueFilter | Mapping[str, Any] | None) -> QueueFilter | None:
    """A filter given as a ``QueueFilter`` or a plain mapping (checked here, as the API would)."""
    return flt if flt is None or isinstance(flt, QueueFilter) else QueueFilter.model_validate(dict(flt))


def assign_body(
    reviewer_id: int,
    item_ids: Iterable[int] | None,
    flt: QueueFilter | Mapping[str, Any] | None,
    queue: str,
    limit: int,
) -> dict[str, Any]:
    body: dict[str, Any] = {"reviewer_id": reviewer_id, "queue": queue}
    if item_ids is not None:
        body["item_ids"] = list(item_ids)
    checked = as_filter(flt)
    if checked is not None:
        body["filter"] = checked.model_dump(mode="json", exclude_defaults=True)
        body["limit"] = limit
    return body


def review_queue(
    project_id: int, queue: str, flt: QueueFilter | None, assigned: str, offset: int, limit: int
) -> Call[QueuePage]:
    params = {"queue": queue, "assigned": assigned, "offset": offset, "limit": limit, **queue_params(flt)}
    return Call("GET", f"/v1/projects/{project_id}/review/queue", model(QueuePage), params=params)


def review_assignments(project_id: int) -> Call[Assignments]:
    return Call("GET", f"/v1/projects/{project_id}/review/assignments", model(Assignments))


def assign_items(project_id: int, body: dict[str, Any]) -> Call[Assigned]:
    return Call("POST", f"/v1/projects/{project_id}/review/assignments", model(Assigned), json=body)


def unassign_items(project_id: int, body: dict[str, Any]) -> Call[Unassigned]:
    return Call("POST", f"/v1/projects/{project_id}/review/assignments/release", model(Unassigned), json=body)


def control_charts(project_id: int, window: int, sigma: float, run_length: int) -> Call[ControlCharts]:
    params = {"window": window, "sigma": sigma, "run_length": run_length}
    return Call(
        "GET", f"/v1/projects/{project_id}/review/control-charts", model(ControlCharts), params=params
    )


# --- exports ----------------------------------------------------------------------------------


def create_export(project_id: int, format: str, **options: Any) -> Call[ExportPublic]:
    body = {"format": format, **{k: v for k, v in options.items() if v is not None}}
    return Call("POST", f"/v1/projects/{project_id}/exports", model(ExportPublic), json=body)


def get_export(project_id: int, number: int) -> Call[ExportPublic]:
    return Call("GET", f"/v1/projects/{project_id}/exports/{number}", model(ExportPublic))


def list_exports(project_id: int) -> Call[list[ExportPublic]]:
    return Call("GET", f"/v1/projects/{project_id}/exports", models(ExportPublic))


def download_path(project_id: int, number: int) -> str:
    return f"/v1/projects/{project_id}/exports/{number}/download"
