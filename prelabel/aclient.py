"""The asynchronous client: ``AsyncClient(url, token)``, the same resources as :class:`Client`
with ``await`` (and ``async for`` over results and labels).

>>> import asyncio
>>> from prelabel import AsyncClient
>>> async def main() -> None:
...     async with AsyncClient("http://127.0.0.1:8000", token="...") as client:
...         job = await client.jobs.post("faq", rows)
...         await client.jobs.wait(job.job_id)
...         async for result in client.jobs.results(job.job_id):
...             print(result.client_id, result.label)
>>> asyncio.run(main())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from prelabel import _calls as calls
from prelabel import _common as common
from prelabel import convert
from prelabel.client import ProjectRef
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


class AsyncClient:
    """:class:`prelabel.Client` for asyncio: same arguments, same resources, same errors."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.http = httpx.AsyncClient(
            base_url=common.base_url(url), headers=common.headers(token), timeout=timeout
        )
        self.projects = AsyncProjects(self)
        self.jobs = AsyncJobs(self)
        self.labels = AsyncLabels(self)
        self.calibration = AsyncCalibration(self)
        self.review = AsyncReview(self)
        self.exports = AsyncExports(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, call: calls.Call[T]) -> T:
        """Send one request and read its answer."""
        try:
            response = await self.http.request(
                call.method, call.path, params=call.params, json=call.json, content=call.content,
                headers=call.headers,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            raise PrelabelError(None, f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
        body = calls.read_body(response.status_code, response.text, response.headers.get("content-type", ""))
        return call.read(response.text if call.read is str else body)

    async def project_id(self, project: ProjectRef) -> int:
        if isinstance(project, int):
            return project
        return calls.find_project(await self.run(calls.list_projects()), project).id


class _AsyncResource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._run = client.run


class AsyncProjects(_AsyncResource):
    """``client.projects`` (see :class:`prelabel.client.Projects`)."""

    async def create(
        self, name: str, judges: Sequence[Any] = (), routing: Mapping[str, Any] | None = None, **fields: Any
    ) -> ProjectPublic:
        return await self._run(calls.create_project(name, list(judges), routing, **fields))

    async def list(self) -> list[ProjectPublic]:
        return await self._run(calls.list_projects())

    async def get(self, project: ProjectRef) -> ProjectPublic:
        if isinstance(project, str):
            return calls.find_project(await self.list(), project)
        return await self._run(calls.get_project(project))

    async def update(
        self,
        project: ProjectRef,
        *,
        judges: Sequence[Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        aspects: Sequence[Mapping[str, Any]] | None = None,
        overall: str | None = None,
    ) -> ProjectPublic:
        judge_list = list(judges) if judges is not None else None
        listed = [dict(a) for a in aspects] if aspects is not None else None
        project_id = await self._client.project_id(project)
        return await self._run(
            calls.update_project(project_id, judge_list, routing, aspects=listed, overall=overall)
        )

    async def create_key(self, project: ProjectRef, name: str) -> ApiKeyCreated:
        return await self._run(calls.create_key(await self._client.project_id(project), name))


class AsyncJobs(_AsyncResource):
    """``client.jobs`` (see :class:`prelabel.client.Jobs`)."""

    async def post(
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
        jobs = await self.post_many(
            project, data, columns=columns, dpo=dpo, labels=labels, seed=seed,
            metadata_columns=metadata_columns, split=split, chunk_size=None,
        )  # fmt: skip
        return jobs[0]

    async def post_many(
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
        if labels and not dpo:
            raise ValueError("labels=True imports a DPO dataset's chosen side: it needs dpo=True")
        pid = await self._client.project_id(project)
        pairs = common.pairs_from(
            data, columns, dpo=dpo, seed=seed, metadata_columns=metadata_columns, split=split
        )
        # One chunk at a time, in order: a failed chunk leaves the ones before it stored, as in Client.
        jobs = [
            await self._run(calls.post_job(pid, c))
            for c in common.chunks(pairs, chunk_size or len(pairs) or 1)
        ]
        if labels:
            await self._run(calls.post_labels(pid, convert.dpo_labels(pairs)))
        return jobs

    async def status(self, job_id: int) -> JobStatus:
        return await self._run(calls.job_status(job_id))

    async def list(self, project: ProjectRef) -> list[JobStatus]:
        return await self._run(calls.list_jobs(await self._client.project_id(project)))

    async def wait(self, job_id: int, *, poll_s: float = 1.0, stall_s: float = 300.0) -> JobStatus:
        progress = common.Progress(job_id, stall_s, time.monotonic())
        while True:
            status = await self.status(job_id)
            if progress.update(status, time.monotonic()):
                return status
            await asyncio.sleep(poll_s)

    async def results(self, job_id: int, *, page_size: int = 500) -> AsyncIterator[PairResult]:
        after = 0
        while True:
            page = await self._run(calls.results_page(job_id, after, page_size))
            for result in page.results:
                yield result
            if page.next_after is None:
                return
            after = page.next_after

    async def retry(
        self, job_id: int, *, include_invalid: bool = True, judges: Sequence[Any] | None = None
    ) -> JobRetried:
        return await self._run(
            calls.retry_job(job_id, include_invalid, list(judges) if judges is not None else None)
        )

    async def cancel(self, job_id: int) -> JobCancelled:
        return await self._run(calls.cancel_job(job_id))


class AsyncLabels(_AsyncResource):
    """``client.labels`` (see :class:`prelabel.client.Labels`)."""

    async def post(
        self,
        project: ProjectRef,
        data: Any,
        *,
        columns: Mapping[str, str] | None = None,
        source: str = "gold",
        annotator: str | None = None,
    ) -> LabelsStored:
        labels = convert.to_labels(data, columns, source=source, annotator=annotator)
        return await self._run(calls.post_labels(await self._client.project_id(project), labels))

    async def list(
        self, project: ProjectRef, *, source: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[StoredLabel]:
        pid, after = await self._client.project_id(project), 0
        while page := await self._run(calls.labels_page(pid, source, after, page_size)):
            for label in page:
                yield label
            after = page[-1].id


class AsyncCalibration(_AsyncResource):
    """``client.calibration`` (read only)."""

    async def state(self, project: ProjectRef) -> CalibrationState:
        return await self._run(calls.calibration(await self._client.project_id(project)))

    async def report_html(self, project: ProjectRef) -> str:
        return await self._run(calls.report_html(await self._client.project_id(project)))


class AsyncReview(_AsyncResource):
    """``client.review``."""

    async def stats(self, project: ProjectRef, *, hours: int = 24) -> ReviewStats:
        return await self._run(calls.review_stats(await self._client.project_id(project), hours))

    async def queue(
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
        return await self._run(
            calls.review_queue(await self._client.project_id(project), queue, flt, assigned, offset, limit)
        )

    async def assignments(self, project: ProjectRef) -> Assignments:
        """The project's reviewers and assignments (a senior reviewer's token, or the admin's)."""
        return await self._run(calls.review_assignments(await self._client.project_id(project)))

    async def assign(
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
        return await self._run(calls.assign_items(await self._client.project_id(project), body))

    async def unassign(
        self, project: ProjectRef, *, item_ids: Sequence[int] | None = None, reviewer_id: int | None = None
    ) -> Unassigned:
        """Give items (or all of one reviewer's) back to the pool."""
        body = {"item_ids": list(item_ids)} if item_ids is not None else {"reviewer_id": reviewer_id}
        return await self._run(calls.unassign_items(await self._client.project_id(project), body))

    async def control_charts(
        self, project: ProjectRef, *, window: int = 20, sigma: float = 3.0, run_length: int = 8
    ) -> ControlCharts:
        project_id = await self._client.project_id(project)
        return await self._run(calls.control_charts(project_id, window, sigma, run_length))


class AsyncExports(_AsyncResource):
    """``client.exports``."""

    async def create(self, project: ProjectRef, format: str, **options: Any) -> ExportPublic:
        return await self._run(calls.create_export(await self._client.project_id(project), format, **options))

    async def get(self, project: ProjectRef, number: int) -> ExportPublic:
        return await self._run(calls.get_export(await self._client.project_id(project), number))

    async def list(self, project: ProjectRef) -> list[ExportPublic]:
        return await self._run(calls.list_exports(await self._client.project_id(project)))

    async def download(self, project: ProjectRef, number: int, folder: str | Path) -> Path:
        path = calls.download_path(await self._client.project_id(project), number)
        with tempfile.TemporaryDirectory(prefix="prelabel-export-") as work:
            archive = Path(work) / "export.zip"
            async with self._client.http.stream("GET", path) as response:
                if response.status_code >= 400:
                    await response.aread()
                    calls.read_body(
                        response.status_code, response.text, response.headers.get("content-type", "")
                    )
                with archive.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
            return common.unzip(archive, Path(folder))
