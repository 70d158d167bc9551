"""The synchronous client: ``Client(url, token)`` with one attribute per resource.

>>> from prelabel import Client
>>> with Client("http://127.0.0.1:8000", token="...") as client:  # doctest: +SKIP
...     project = client.projects.create("faq", judges=["gpt-4o", "anthropic/claude-sonnet-4-5"])
...     job = client.jobs.post(project.id, df, columns={"prompt": "question", "response_a": "answer_1",
...                                                    "response_b": "answer_2"})
...     client.jobs.wait(job.job_id)
...     for result in client.jobs.results(job.job_id):
...         print(result.client_id, result.label, result.route)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from prelabel import _calls as calls
from prelabel import _common as common
from prelabel import convert
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
    JobRetried,
    JobStatus,
    LabelsStored,
    PairResult,
    ProjectPublic,
    QueueFilter,
    QueuePage,
    ReviewStats,
    StoredLabel,
    Unassigned,
)

T = TypeVar("T")
ProjectRef = int | str  # a project's id, or its name (looked up in the projects the token sees)


class Client:
    """A connection to a prelabel API. ``url`` defaults to ``PRELABEL_URL`` (else
    http://127.0.0.1:8000), ``token`` to ``PRELABEL_TOKEN``: the admin token or a project's API key.
    Every refusal raises :class:`prelabel.PrelabelError` with the status code and the API's message.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.http = httpx.Client(
            base_url=common.base_url(url), headers=common.headers(token), timeout=timeout
        )
        self.projects = Projects(self)
        self.jobs = Jobs(self)
        self.labels = Labels(self)
        self.calibration = Calibration(self)
        self.review = Review(self)
        self.exports = Exports(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def run(self, call: calls.Call[T]) -> T:
        """Send one request and read its answer (the resources' methods all go through here)."""
        try:
            response = self.http.request(
                call.method, call.path, params=call.params, json=call.json, content=call.content,
                headers=call.headers,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            raise PrelabelError(None, f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
        body = calls.read_body(response.status_code, response.text, response.headers.get("content-type", ""))
        return call.read(response.text if call.read is str else body)

    def project_id(self, project: ProjectRef) -> int:
        if isinstance(project, int):
            return project
        return calls.find_project(self.run(calls.list_projects()), project).id


class _Resource:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._run = client.run


class Projects(_Resource):
    """``client.projects``: create, list, get, update (judges, routing), API keys."""

    def create(
        self, name: str, judges: Sequence[Any] = (), routing: Mapping[str, Any] | None = None, **fields: Any
    ) -> ProjectPublic:
        """A new project (admin token). ``judges``: model strings or judge objects
        (``{"model": ..., "api_base": ...}``); ``fields``: rubric, guidelines, prompt_version, ...

        >>> client.projects.create("faq", ["mock/a", "mock/b"], routing={"n_min": 50})  # doctest: +SKIP
        ProjectPublic(id=1, name='faq', ...)
        """
        return self._run(calls.create_project(name, list(judges), routing, **fields))

    def list(self) -> list[ProjectPublic]:
        """The projects this token may read."""
        return self._run(calls.list_projects())

    def get(self, project: ProjectRef) -> ProjectPublic:
        """One project by id, or by name."""
        if isinstance(project, str):
            return calls.find_project(self.list(), project)
        return self._run(calls.get_project(project))

    def update(
        self,
        project: ProjectRef,
        *,
        judges: Sequence[Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        aspects: Sequence[Mapping[str, Any]] | None = None,
        overall: str | None = None,
    ) -> ProjectPublic:
        """Change a project's judges, routing settings and/or aspects (admin; ``PATCH
        /v1/projects/{id}``; ``aspects`` replaces the list, ``overall``: "question" | "weighted")."""
        judge_list = list(judges) if judges is not None else None
        listed = [dict(a) for a in aspects] if aspects is not None else None
        return self._run(
            calls.update_project(
                self._client.project_id(project), judge_list, routing, aspects=listed, overall=overall
            )
        )

    def create_key(self, project: ProjectRef, name: str) -> ApiKeyCreated:
        """A project API key (admin); ``.key`` is shown this once."""
        return self._run(calls.create_key(self._client.project_id(project), name))


class Jobs(_Resource):
    """``client.jobs``: post pairs, read status, wait, stream results, retry, cancel."""

    def post(
        self,
        project: ProjectRef,
        data: Any,
        *,
        columns: Mapping[str, str] | None = None,
        dpo: bool = False,
        labels: bool = False,
        seed: int = 0,
        metadata_columns: Sequence[str] = (),
        split: str | None = None,
    ) -> JobCreated:
        """Post pairs as one job (one NDJSON request). ``data``: a list of dicts, a pandas
        DataFrame or a ``datasets.Dataset``; ``columns`` maps API fields to your columns
        (:func:`prelabel.convert.to_pairs`). ``dpo``: rows are ``prompt, chosen, rejected``
        (:func:`prelabel.convert.dpo_to_pairs`), and ``labels`` also imports the chosen side as
        gold. Posting the same pairs again returns the same job (``resubmitted``).

        >>> job = client.jobs.post("faq", df, columns={"prompt": "question"})  # doctest: +SKIP
        """
        return self.post_many(
            project, data, columns=columns, dpo=dpo, labels=labels, seed=seed,
            metadata_columns=metadata_columns, split=split, chunk_size=None,
        )[0]  # fmt: skip

    def post_many(
        self,
        project: ProjectRef,
        data: Any,
        *,
        columns: Mapping[str, str] | None = None,
        dpo: bool = False,
        labels: bool = False,
        seed: int = 0,
        metadata_columns: Sequence[str] = (),
        split: str | None = None,
        chunk_size: int | None = common.CHUNK_SIZE,
    ) -> list[JobCreated]:
        """Like :meth:`post`, in requests of ``chunk_size`` pairs (one job each): for inputs
        beyond one request's limits. A failed chunk raises; the chunks before it are stored, and
        posting again resumes (stored chunks come back as ``resubmitted``)."""
        if labels and not dpo:
            raise ValueError("labels=True imports a DPO dataset's chosen side: it needs dpo=True")
        pid = self._client.project_id(project)
        pairs = common.pairs_from(
            data, columns, dpo=dpo, seed=seed, metadata_columns=metadata_columns, split=split
        )
        jobs = [
            self._run(calls.post_job(pid, chunk))
            for chunk in common.chunks(pairs, chunk_size or len(pairs) or 1)
        ]
        if labels:
            self._run(calls.post_labels(pid, convert.dpo_labels(pairs)))
        return jobs

    def status(self, job_id: int) -> JobStatus:
        """Counts by state and route, reasons, progress, judge calls and cost so far."""
        return self._run(calls.job_status(job_id))

    def list(self, project: ProjectRef) -> list[JobStatus]:
        """Every job of a project, oldest first."""
        return self._run(calls.list_jobs(self._client.project_id(project)))

    def wait(self, job_id: int, *, poll_s: float = 1.0, stall_s: float = 300.0) -> JobStatus:
        """Poll until every pair of the job is judged and routed; raises
        :class:`prelabel.JobStalled` after ``stall_s`` seconds without progress (no deadline
        while the job moves)."""
        progress = common.Progress(job_id, stall_s, time.monotonic())
        while True:
            status = self.status(job_id)
            if progress.update(status, time.monotonic()):
                return status
            time.sleep(poll_s)

    def results(self, job_id: int, *, page_size: int = 500) -> Iterator[PairResult]:
        """Every pair's result, fetched a page at a time as you iterate."""
        after = 0
        while True:
            page = self._run(calls.results_page(job_id, after, page_size))
            yield from page.results
            if page.next_after is None:
                return
            after = page.next_after

    def retry(
        self, job_id: int, *, include_invalid: bool = True, judges: Sequence[Any] | None = None
    ) -> JobRetried:
        """Judge the job's failed (and, with ``include_invalid``, unreadable) judgments again,
        optionally with another panel (``judges``); ``.requeued`` says how many pairs."""
        return self._run(
            calls.retry_job(job_id, include_invalid, list(judges) if judges is not None else None)
        )

    def cancel(self, job_id: int) -> JobCancelled:
        """Stop the job's pending work; what is judged stays. ``.cancelled`` says how many pairs."""
        return self._run(calls.cancel_job(job_id))


class Labels(_Resource):
    """``client.labels``: import human labels (gold, annotations) and list them."""

    def post(
        self,
        project: ProjectRef,
        data: Any,
        *,
        columns: Mapping[str, str] | None = None,
        source: str = "gold",
        annotator: str | None = None,
    ) -> LabelsStored:
        """Import labels from rows (:func:`prelabel.convert.to_labels`: ``client_id``/``id`` and
        ``label``/``gold``, one label per annotator for a list). ``source``: gold (a random sample:
        calibrates the gate) or import. All or nothing; a repeat is a no-op.

        >>> client.labels.post("faq", [{"client_id": "q1", "label": "A>B"}])  # doctest: +SKIP
        LabelsStored(labels_created=1, labels_existing=0)
        """
        labels = convert.to_labels(data, columns, source=source, annotator=annotator)
        return self._run(calls.post_labels(self._client.project_id(project), labels))

    def list(
        self, project: ProjectRef, *, source: str | None = None, page_size: int = 1000
    ) -> Iterator[StoredLabel]:
        """The project's stored labels (optionally of one source), a page at a time."""
        pid, after = self._client.project_id(project), 0
        while page := self._run(calls.labels_page(pid, source, after, page_size)):
            yield from page
            after = page[-1].id


class Calibration(_Resource):
    """``client.calibration``: the gate's state and its report (read only: nothing is refitted)."""

    def state(self, project: ProjectRef) -> CalibrationState:
        """Gate (open/closed, reason, threshold, guarantee, coverage), versions and report data."""
        return self._run(calls.calibration(self._client.project_id(project)))

    def report_html(self, project: ProjectRef) -> str:
        """The report page (reliability diagram, coverage curve) as HTML."""
        return self._run(calls.report_html(self._client.project_id(project)))


class Review(_Resource):
    """``client.review``: the review dashboards (admin or an assigned reviewer's token)."""

    def stats(self, project: ProjectRef, *, hours: int = 24) -> ReviewStats:
        """Queue depth, labels per reviewer per hour, override rates, time on task."""
        return self._run(calls.review_stats(self._client.project_id(project), hours))

    def queue(
        self,
        project: ProjectRef,
        *,
        filter: QueueFilter | Mapping[str, Any] | None = None,
        queue: str = "review",
        assigned: str = "any",
        offset: int = 0,
        limit: int = 50,
    ) -> QueuePage:
        """What waits in the queue and matches ``filter`` (reasons, jobs, metadata, text), best first."""
        flt = calls.as_filter(filter)
        return self._run(
            calls.review_queue(self._client.project_id(project), queue, flt, assigned, offset, limit)
        )

    def assignments(self, project: ProjectRef) -> Assignments:
        """The project's reviewers and assignments (a senior reviewer's token, or the admin's)."""
        return self._run(calls.review_assignments(self._client.project_id(project)))

    def assign(
        self,
        project: ProjectRef,
        reviewer_id: int,
        *,
        item_ids: Sequence[int] | None = None,
        filter: QueueFilter | Mapping[str, Any] | None = None,
        queue: str = "review",
        limit: int = 500,
    ) -> Assigned:
        """Assign items (by id, or every waiting item matching ``filter``) to a reviewer."""
        body = calls.assign_body(reviewer_id, item_ids, filter, queue, limit)
        return self._run(calls.assign_items(self._client.project_id(project), body))

    def unassign(
        self, project: ProjectRef, *, item_ids: Sequence[int] | None = None, reviewer_id: int | None = None
    ) -> Unassigned:
        """Give items (or all of one reviewer's) back to the pool."""
        body = {"item_ids": list(item_ids)} if item_ids is not None else {"reviewer_id": reviewer_id}
        return self._run(calls.unassign_items(self._client.project_id(project), body))

    def control_charts(
        self, project: ProjectRef, *, window: int = 20, sigma: float = 3.0, run_length: int = 8
    ) -> ControlCharts:
        """p-charts of agreement with the reference, per reviewer (``window`` labels a point) and
        per batch, each point with its limits and the rules it breaks."""
        project_id = self._client.project_id(project)
        return self._run(calls.control_charts(project_id, window, sigma, run_length))


class Exports(_Resource):
    """``client.exports``: make a numbered export, read it, download its files. The server
    writes an export before it answers ``create``: there is nothing to wait for."""

    def create(self, project: ProjectRef, format: str, **options: Any) -> ExportPublic:
        """Export (dpo, hf, label-studio, argilla); ``options``: split, min_source, force,
        reason, redact (see ``POST /v1/projects/{id}/exports``). A refusal by the promotion
        gate is a 409 whose ``errors`` name every reason."""
        return self._run(calls.create_export(self._client.project_id(project), format, **options))

    def get(self, project: ProjectRef, number: int) -> ExportPublic:
        return self._run(calls.get_export(self._client.project_id(project), number))

    def list(self, project: ProjectRef) -> list[ExportPublic]:
        return self._run(calls.list_exports(self._client.project_id(project)))

    def download(self, project: ProjectRef, number: int, folder: str | Path) -> Path:
        """Download the export's files (data, manifest.json, README.md, rows.sha256) into ``folder``.

        >>> client.exports.download("faq", 1, "exports/faq-1")  # doctest: +SKIP
        PosixPath('exports/faq-1')
        """
        path = calls.download_path(self._client.project_id(project), number)
        with tempfile.TemporaryDirectory(prefix="prelabel-export-") as work:
            archive = Path(work) / "export.zip"
            with self._client.http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    calls.read_body(
                        response.status_code, response.text, response.headers.get("content-type", "")
                    )
                with archive.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
            return common.unzip(archive, Path(folder))
