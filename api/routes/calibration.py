"""Human labels in; the calibration gate's state, history and report out."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api import calibrate
from api.db import chunks
from api.deps import EngineDep, ProjectDep, SettingsDep
from api.ingest import LineError, _records_from_body
from api.models import Label, LabelIn, Pair, utcnow
from judge.verdicts import from_side

router = APIRouter(prefix="/v1/projects/{project_id}", tags=["calibration"])


def _five_point(label: str) -> str:
    return from_side(label) if label in ("A", "B") else label


@router.post(
    "/labels",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"labels": {"type": "array"}}}
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
            "description": "Human labels by client_id: label (A>>B, A>B, tie, B>A, B>>A, or A/B), both_bad, "
            "safety_flag, rationale, source (import | review | audit | gold), annotator, idempotency_key. "
            "Only gold (a random sample) and audit labels calibrate the gate.",
        }
    },
)
async def import_labels(
    request: Request, project: ProjectDep, engine: EngineDep, settings: SettingsDep
) -> JSONResponse:
    """Store human labels. All-or-nothing; the same idempotency key with the same label is a no-op."""
    body = await request.body()
    if len(body) > settings.max_request_bytes:
        raise HTTPException(413, f"request body exceeds {settings.max_request_bytes} bytes")
    content_type = request.headers.get("content-type", "application/json")
    if "ndjson" not in content_type and body.strip().startswith(b"{"):
        try:
            document = json.loads(body)
        except json.JSONDecodeError:
            document = None
        if isinstance(document, dict) and "labels" in document:
            body = json.dumps(document["labels"]).encode()
    records, errors = _records_from_body(body, content_type)
    if not records and not errors:
        errors.append(LineError(0, None, ["request holds no labels"]))
    parsed: list[tuple[int, LabelIn]] = []
    for number, record in records:
        client_id = record.get("client_id") if isinstance(record, dict) else None
        try:
            item = LabelIn.model_validate(record)
        except ValidationError as exc:
            messages = [f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors()]
            errors.append(LineError(number, client_id if isinstance(client_id, str) else None, messages))
            continue
        parsed.append((number, item))
    with Session(engine) as session:
        ids = [item.client_id for _, item in parsed]
        pair_of: dict[str, int] = {}
        for part in chunks(ids):
            pair_of.update(
                session.exec(
                    select(Pair.client_id, Pair.id).where(
                        Pair.project_id == project.id, Pair.client_id.in_(part)
                    )
                ).all()  # type: ignore[arg-type]
            )
        keys = {}
        for number, item in parsed:
            if item.client_id not in pair_of:
                errors.append(
                    LineError(
                        number, item.client_id, [f"client_id: no pair {item.client_id!r} in this project"]
                    )
                )
            key = item.idempotency_key or f"{item.source}:{item.annotator}:{item.client_id}"
            if key in keys:
                errors.append(
                    LineError(number, item.client_id, [f"idempotency key {key!r} repeats line {keys[key]}"])
                )
            keys.setdefault(key, number)
        if errors:
            return JSONResponse(
                status_code=422,
                content={
                    "detail": f"{len(errors)} invalid line(s); nothing was stored",
                    "errors": [e.__dict__ for e in sorted(errors, key=lambda e: e.line)],
                },
            )
        existing: dict[str, Label] = {}
        for part in chunks(list(keys)):
            existing.update(
                {
                    row.idempotency_key: row
                    for row in session.exec(
                        select(Label).where(Label.project_id == project.id, Label.idempotency_key.in_(part))
                    )  # type: ignore[attr-defined]
                }
            )
        now = utcnow()
        rows: list[dict[str, Any]] = []
        conflicts = []
        for _, item in parsed:
            key = item.idempotency_key or f"{item.source}:{item.annotator}:{item.client_id}"
            row = {
                "project_id": project.id,
                "pair_id": pair_of[item.client_id],
                "label": _five_point(item.label),
                "both_bad": item.both_bad,
                "safety_flag": item.safety_flag,
                "rationale": item.rationale,
                "source": item.source,
                "annotator": item.annotator,
                "idempotency_key": key,
                "created_at": now,
            }
            if key in existing:
                old = existing[key]
                if (old.label, old.pair_id, old.source) != (row["label"], row["pair_id"], row["source"]):
                    conflicts.append(key)
                continue
            rows.append(row)
        if conflicts:
            return JSONResponse(
                status_code=409,
                content={
                    "detail": "idempotency key reused with a different label: " + ", ".join(conflicts[:20]),
                    "keys": conflicts,
                },
            )
        try:
            if rows:
                session.execute(insert(Label), rows)
            session.commit()
        except IntegrityError:
            session.rollback()
            raise HTTPException(
                409, "a concurrent request stored some of these labels; retry to see which"
            ) from None
    return JSONResponse(
        status_code=201, content={"labels_created": len(rows), "labels_existing": len(parsed) - len(rows)}
    )


@router.get("/labels")
def list_labels(
    project: ProjectDep, engine: EngineDep, source: str | None = None, limit: int = 1000, after: int = 0
) -> dict[str, Any]:
    with Session(engine) as session:
        query = (
            select(Label, Pair.client_id)
            .join(Pair, Pair.id == Label.pair_id)
            .where(Label.project_id == project.id, Label.id > after)
        )
        if source:
            query = query.where(Label.source == source)
        rows = session.exec(query.order_by(Label.id).limit(min(limit, 5000))).all()
    return jsonable_encoder(
        {"labels": [{**label.model_dump(), "client_id": client_id} for label, client_id in rows]}
    )


@router.post("/calibration/refit")
def refit(project: ProjectDep, engine: EngineDep) -> dict[str, Any]:
    """Refit the gate on the usable labels now, store a new version, re-route the pairs."""
    version = calibrate.refit(engine, project, trigger="manual")
    return jsonable_encoder(calibrate.version_public(version))


@router.get("/calibration")
def calibration(project: ProjectDep, engine: EngineDep) -> dict[str, Any]:
    """Gate state (open/closed, reason, threshold, guarantee, coverage), versions, report data."""
    return jsonable_encoder(calibrate.calibration_state(engine, project))


@router.get("/calibration/report.html", response_class=HTMLResponse)
def calibration_report(project: ProjectDep, engine: EngineDep) -> HTMLResponse:
    from calibration.report import render_report_html

    state = calibrate.calibration_state(engine, project)
    return HTMLResponse(render_report_html(state["report"]))
