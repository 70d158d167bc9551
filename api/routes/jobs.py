"""Jobs: post pairs (JSON or NDJSON), read progress, stream results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from sqlmodel import Session, col, select

from api.calibrate.project_settings import SettingsRefused, edit_settings
from api.deps import (
    AdminDep,
    CallerDep,
    ClientJobDep,
    ClientProjectDep,
    EngineDep,
    MemberProjectDep,
    SessionDep,
    SettingsDep,
)
from api.errors import bounded_path_ids, errors
from api.export import results
from api.fields import MAX_ID
from api.ingest import store
from api.media_types import NDJSON, batch_request_body
from api.models import Job, Pair
from api.routing import decisions
from api.schemas import (
    JobCancelled,
    JobCreated,
    JobResultsPage,
    JobRetried,
    JobRetry,
    JobStatus,
    PairIn,
    PairJudgments,
)

router = APIRouter(
    tags=["jobs"], dependencies=[Depends(bounded_path_ids)], responses=errors(401, 403, 404, 422)
)


@router.post(
    "/v1/projects/{project_id}/jobs",
    response_model=JobCreated,
    status_code=201,
    responses={
        200: {
            "model": JobCreated,
            "description": "The same pairs as an earlier job (a retry): that job, nothing stored",
        },
        **errors(409, 413),
    },
    openapi_extra=batch_request_body(
        "pairs",
        PairIn,
        'A JSON body {"pairs": [...]} (or a bare array), or NDJSON: one pair per line. '
        "Each pair: client_id, prompt, response_a, response_b, optional metadata and split.",
    ),
)
async def create_job(
    request: Request, project: ClientProjectDep, session: SessionDep, engine: EngineDep, settings: SettingsDep
) -> JSONResponse:
    """Store a job's pairs for judging. All-or-nothing: any bad line refuses the whole request."""
    # The caller is authorised: give the request's pooled connection back now, not after the
    # body has arrived and the pairs are stored (ingest uses a session of its own).
    session.close()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > settings.max_request_bytes:
            raise HTTPException(413, f"request body exceeds {settings.max_request_bytes} bytes")
    limits: dict[str, Any] = {
        "max_field_chars": settings.max_field_chars,
        "max_pairs": settings.max_pairs_per_request,
        "allow_empty_responses": project.allow_empty_responses,
    }
    content_type = request.headers.get("content-type", "application/json")
    pool = request.app.state.ingest_pool
    if pool is not None:  # parsed and stored in a process of its own (api/ingest/pool.py)
        posted = await pool.post_job(project.id, bytes(body), content_type, **limits)
    else:  # in the threadpool: on the event loop, a large job stalled every other request
        posted = await run_in_threadpool(
            store.post_job, engine, project.id, bytes(body), content_type, **limits
        )
    if posted.errors:
        return JSONResponse(
            status_code=422,
            content={
                "detail": f"{len(posted.errors)} invalid line(s); nothing was stored",
                "errors": [e.__dict__ for e in posted.errors],
            },
        )
    if posted.conflicts:
        return JSONResponse(
            status_code=409,
            content={
                "detail": "client_id already used with different content: "
                + ", ".join(posted.conflicts[:20]),
                "client_ids": posted.conflicts,
            },
        )
    created = posted.created
    assert created is not None  # neither refused nor in conflict: stored
    return JSONResponse(
        status_code=200 if created.resubmitted else 201,
        content=jsonable_encoder(
            {
                "job_id": created.job_id,
                "project_id": project.id,
                "pairs_created": created.created,
                "pairs_existing": len(created.existing),
                "existing_client_ids": created.existing[:1000],
                "resubmitted": created.resubmitted,
            }
        ),
    )


@router.get("/v1/projects/{project_id}/jobs", response_model=list[JobStatus])
def list_jobs(project: MemberProjectDep, session: SessionDep) -> list[dict[str, Any]]:
    jobs = session.exec(select(Job).where(Job.project_id == project.id).order_by(col(Job.id))).all()
    return [results.job_status(session, job) for job in jobs]


@router.get("/v1/jobs/{job_id}", response_model=JobStatus)
def read_job(job: ClientJobDep, session: SessionDep) -> dict[str, Any]:
    """Counts by state and route, reasons, progress, cost so far, errors."""
    return results.job_status(session, job)


@router.post("/v1/jobs/{job_id}/retry", response_model=JobRetried, responses=errors(400, 403))
def retry_job(
    job: ClientJobDep,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    caller: CallerDep,
    body: JobRetry | None = None,
) -> dict[str, Any]:
    """Re-judge the job's failed (and, by default, invalid) judgments; resume its cancelled pairs.

    Only those (judge, order) calls are made again: the pairs go back to the judging queue
    and keep their valid verdicts. With ``judges``, the project's panel is replaced first
    (admin only: checked, audited and refitted as PATCH /v1/projects/{id} is).
    """
    body = body or JobRetry()
    if body.judges is not None:
        if caller.role != "admin":
            raise HTTPException(403, "changing the judge panel takes the admin token")
        try:
            why = f"retry of job {job.id}"
            edit_settings(engine, job.project_id, settings, judges=list(body.judges), why=why)
        except SettingsRefused as e:
            raise HTTPException(422, str(e)) from None
    requeued = decisions.retry_job(session, job.project_id, job.id, include_invalid=body.include_invalid)
    session.commit()
    return {**results.job_status(session, job), "requeued": requeued}


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobCancelled)
def cancel_job(job: ClientJobDep, session: SessionDep) -> dict[str, Any]:
    """Stop the job's pending work: every pair not yet judged ends ``cancelled`` (calls in
    flight are dropped); judged pairs keep their judgments and decisions. Idempotent."""
    decisions.cancel_job(session, job.project_id, job.id)
    session.commit()
    return results.job_status(session, job)


@router.get(
    "/v1/jobs/{job_id}/results",
    response_model=None,
    responses={
        200: {
            "model": JobResultsPage,
            "description": "A page of results (JSON), or every result (NDJSON: one PairResult per line)",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        }
    },
)
def job_results(
    request: Request,
    job: ClientJobDep,
    engine: EngineDep,
    session: SessionDep,
    format: str | None = Query(None, pattern="^(json|ndjson)$"),
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor: the last pair_id of the previous page"),
    limit: int = Query(500, ge=1, le=5000),
) -> JSONResponse | StreamingResponse:
    """Per-pair results: NDJSON stream (Accept: application/x-ndjson or ?format=ndjson) or JSON pages."""
    wants_ndjson = format == "ndjson" or (format is None and NDJSON in request.headers.get("accept", ""))
    if wants_ndjson:
        return StreamingResponse(_stream(engine, job.id), media_type=NDJSON)
    rows = results.result_rows(session, job.id, after, limit)
    next_cursor = rows[-1]["pair_id"] if len(rows) == limit else None
    return JSONResponse(jsonable_encoder({"job_id": job.id, "results": rows, "next_after": next_cursor}))


@router.get("/v1/admin/pairs/{pair_id}/judgments", response_model=PairJudgments)
def pair_judgments(pair_id: int, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """Every judgment of a pair with the judge's raw answer, error, attempts, tokens and cost:
    why a verdict is invalid or a call failed. Admins only (raw answers quote the pair)."""
    if session.get(Pair, pair_id) is None:
        raise HTTPException(404, f"pair {pair_id} not found")
    return {"pair_id": pair_id, "judgments": results.pair_judgments(session, pair_id)}


def _stream(engine: Any, job_id: int) -> Iterator[bytes]:
    after = 0
    while True:
        with Session(engine) as session:
            rows = results.result_rows(session, job_id, after, 1000)
        if not rows:
            return
        yield "".join(json.dumps(jsonable_encoder(r)) + "\n" for r in rows).encode()
        after = rows[-1]["pair_id"]
