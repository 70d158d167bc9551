"""Exports as immutable, numbered snapshots: run one (gates, writer, manifest), list, diff.

:func:`create_export` is the one way an export is made (the API and ``prelabel export`` call
it). A train export (split "train" or "all") first passes the promotion gate
(:func:`api.export.promotion.refusals`: refused with every reason unless forced with a
reason) and the leakage gate (:func:`api.export.leakage.hold_back`: train pairs whose prompt
duplicates a frozen evaluation prompt are held back); frozen_eval pairs are never in the
train split. Files are written to a temporary directory next to the target and renamed into
place with the :class:`~api.models.Export` row's commit, so nothing is stored half-way.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api import audit
from api.calibrate.kill_switch import audit_outcomes
from api.calibrate.versions import latest_version, version_name
from api.export import FORMATS, format_module
from api.export.leakage import hold_back
from api.export.manifest import (
    CARD,
    MANIFEST,
    Counts,
    ExportFiles,
    ExportIdentity,
    LabelProvenance,
    PromotionOverride,
    build_manifest,
    dataset_card,
)
from api.export.promotion import audited_upper_bound, promotion_state
from api.export.promotion import refusals as promotion_refusals
from api.export.redacted import redact_rows
from api.export.rows import DatasetDescription, RowFilter, RowHashes, iter_rows, sha256_file, train_prompts
from api.models import Export, Judgment, Pair, Project
from api.review.redaction import REDACTION_VERSION
from calibration.metrics import clopper_pearson_interval

MAX_NUMBER_ATTEMPTS = 5
STAGING_PREFIX = ".tmp-export-"
# A staging folder whose writer cannot be checked (another host, or named before the writer's
# pid was part of the name) is removed once it is this old.
STALE_STAGING_S = 24 * 3600


def remove_stale_staging(parent: Path, now: float | None = None) -> list[Path]:
    """Remove the staging folders of exports that were killed mid-write (a clean failure removes
    its own): on this host, those whose process is gone; any, once a day old. Returns them."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    removed: list[Path] = []
    for path in parent.glob(f"{STAGING_PREFIX}*"):
        if not path.is_dir():
            continue
        parts = path.name[len(STAGING_PREFIX) :].rsplit("-", 2)  # host (may hold "-"), pid, random
        local = len(parts) == 3 and parts[0] == host and parts[1].isdigit()
        if local:
            stale = not _alive(int(parts[1]))  # a live writer's folder stays, however long it takes
        else:
            try:
                stale = now - path.stat().st_mtime > STALE_STAGING_S
            except FileNotFoundError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@dataclass(frozen=True)
class ExportRequest:
    """What to export: a format, a split ("train", "frozen_eval" or "all") and the least label
    source ("human", "auto" or None for every pair); ``force`` with a ``reason`` overrides
    the promotion gate."""

    format: str
    split: str = "train"
    min_source: str | None = None
    force: bool = False
    reason: str | None = None
    redact: bool = False
    # What a DPO pair is preferred by on a project with aspects (api/export/dpo.py): "overall",
    # "weighted" or an aspect's name.
    dpo_by: str = "overall"

    def filters(self) -> dict[str, Any]:
        # dpo_by only when set: an export of before keeps the filters it had
        extra = {"dpo_by": self.dpo_by} if self.dpo_by != "overall" else {}
        return {"split": self.split, "min_source": self.min_source, **extra}

    @property
    def includes_train(self) -> bool:
        return self.split in ("train", "all")


@dataclass
class ExportRefused(Exception):
    """The promotion gate refused a train export; every reason, as ``{code, message}``."""

    reasons: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(r["message"] for r in self.reasons)


def _file_hashes(directory: Path, written: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in written:
        path = directory / name
        paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for item in paths:
            out[item.relative_to(directory).as_posix()] = sha256_file(item)
    return out


def gate_in_force(session: Session, project: Project) -> dict[str, Any]:
    """The calibration version in force, the target, δ and the lower bound it guarantees."""
    routing = project.routing_settings()
    current = latest_version(session, project.id)
    return {
        "version": version_name(current),
        "open": bool(current is not None and current.open),
        "target_agreement": routing.target_agreement,
        "delta": routing.delta,
        "guaranteed_agreement": current.guaranteed_agreement if current else None,
        "threshold": current.threshold if current else None,
        "reason": current.reason if current else "not calibrated yet",
    }


def audited_agreement(session: Session, project: Project) -> dict[str, Any]:
    """Agreement of human audits with the labels the gate accepted (or would have), so far,
    with a two-sided Clopper–Pearson interval at level 1 - δ."""
    delta = project.routing_settings().delta
    outcomes = audit_outcomes(session, project.id)
    n, agreed = len(outcomes), sum(a for _, _, a in outcomes)
    low, high = clopper_pearson_interval(agreed, n, alpha=delta) if n else (None, None)
    # What the promotion gate judged by: audits of the gate in force only, one-sided bound.
    state = promotion_state(session, project)
    return {
        "n": n,
        "agreed": agreed,
        "rate": agreed / n if n else None,
        "interval": [low, high] if n else None,
        "level": 1 - delta,
        "gate_in_force": {
            "n": state.audits,
            "agreed": state.audits_agreed,
            "upper_bound": audited_upper_bound(state),
            "target": state.target_agreement,
        },
    }


def _judges_and_prompts(session: Session, project: Project) -> tuple[list[str], list[str], float]:
    judged = (
        select(Judgment.judge, Judgment.prompt_version)
        .join(Pair, col(Pair.id) == col(Judgment.pair_id))
        .where(Pair.project_id == project.id)
        .distinct()
    )
    seen = session.exec(judged).all()
    judges = sorted({spec.model for spec in project.judge_specs()} | {j for j, _ in seen})
    prompts = sorted({project.prompt_version} | {p for _, p in seen})
    cost = session.exec(
        select(func.coalesce(func.sum(Judgment.cost), 0.0))
        .join(Pair, col(Pair.id) == col(Judgment.pair_id))
        .where(Pair.project_id == project.id)
    ).one()
    return judges, prompts, float(cost)


def project_dir(export_dir: Path, project: Project) -> Path:
    return export_dir / f"project-{project.id}"


def create_export(
    engine: Engine, project: Project, request: ExportRequest, *, export_dir: Path, out: Path | None = None
) -> Export:
    """Run an export and store it as the project's next numbered snapshot.

    Writes under ``<export_dir>/project-<id>/<number>-<format>/``, or into ``out`` (which must
    not exist yet). Raises :class:`ExportRefused` (promotion gate), ``FileExistsError``
    (``out`` exists) or ``ValueError`` (a bad request).
    """
    if request.format not in FORMATS:
        raise ValueError(f"unknown export format {request.format!r}: one of {', '.join(FORMATS)}")
    if request.force and not (request.reason or "").strip():
        raise ValueError("force needs a reason (it is recorded in the manifest and the audit log)")
    refused: list[dict[str, str]] = []
    if request.includes_train:
        with Session(engine) as session:
            refused = [{"code": r.code, "message": r.message} for r in promotion_refusals(session, project)]
        if refused and not request.force:
            raise ExportRefused(refused)
    if out is not None and out.exists():
        raise FileExistsError(f"{out} exists: exports never overwrite (choose a new path)")
    held: dict[int, str] = {}
    if request.includes_train:
        train, frozen = train_prompts(engine, project)
        if frozen and train:
            held = hold_back(train, frozen, project.routing_settings().leakage_threshold)
        del train, frozen
    parent = out.parent if out is not None else project_dir(export_dir, project)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(parent)
    staging = parent / f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        return _write_and_store(engine, project, request, staging, out, held, refused)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_and_store(
    engine: Engine,
    project: Project,
    request: ExportRequest,
    staging: Path,
    out: Path | None,
    held: dict[int, str],
    refused: list[dict[str, str]],
) -> Export:
    counts, written = _write_rows(engine, project, request, staging, held)
    with Session(engine) as session:
        provenance = _label_provenance(session, project)
    for _ in range(MAX_NUMBER_ATTEMPTS):
        with Session(engine, expire_on_commit=False) as session:
            number = _next_number(session, project)
            created_at = datetime.now(UTC)
            identity = ExportIdentity(
                project={"id": project.id, "name": project.name},
                number=number,
                export_format=request.format,
                filters=request.filters(),
                created_at=created_at.isoformat(),
                redacted=request.redact,
                redaction_version=REDACTION_VERSION,
            )
            manifest = build_manifest(
                identity,
                counts,
                written,
                provenance,
                PromotionOverride(
                    forced=request.force,
                    reason=request.reason if request.force else None,
                    refusals=refused,
                ),
            )
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")
            (staging / CARD).write_text(dataset_card(manifest), encoding="utf-8")
            target = out if out is not None else _new_folder(staging.parent, f"{number:04d}-{request.format}")
            export = Export(
                project_id=project.id,
                number=number,
                format=request.format,
                path=str(target.resolve()),
                filters=request.filters(),
                manifest=manifest,
                rows=counts.rows,
                forced=request.force,
                force_reason=request.reason if request.force else None,
                created_at=created_at,
            )
            session.add(export)
            _record_export(session, export, request, written.rows_sha256, refused)
            try:
                session.flush()  # a concurrent export that took this number fails here
            except IntegrityError:
                session.rollback()
                continue
            staging.rename(target)
            try:
                session.commit()
            except BaseException:
                target.rename(staging)
                raise
            return export
    raise RuntimeError(f"could not number the export after {MAX_NUMBER_ATTEMPTS} attempts")


def _new_folder(parent: Path, name: str) -> Path:
    """``parent/name``, or that name with a random suffix when it exists. A folder of the same
    number left by an earlier database (a reset service keeps its export directory), or by
    another service sharing the directory, must neither fail the export nor be overwritten."""
    target = parent / name
    return parent / f"{name}-{uuid.uuid4().hex[:8]}" if target.exists() else target


def _write_rows(
    engine: Engine, project: Project, request: ExportRequest, staging: Path, held: dict[int, str]
) -> tuple[Counts, ExportFiles]:
    """Write the export's data files into ``staging``, without the pairs ``held`` back: what was
    counted and what was written (sha256 per file and of the per-row hashes)."""
    counts = Counts()
    hashes = RowHashes(staging)
    try:
        rows = iter_rows(engine, project, RowFilter(request.split, request.min_source), skip=frozenset(held))
        if request.redact:
            rows = redact_rows(rows)
        about = DatasetDescription(
            name=project.name,
            guidelines=project.rubric,
            aspects=tuple(project.aspect_settings().aspects),
            dpo_by=request.dpo_by,
        )
        written = format_module(request.format).write(rows, staging, hashes, counts, about)
    finally:
        hashes.close()
    files = _file_hashes(staging, written)
    return counts, ExportFiles(files=files, rows_sha256=sha256_file(hashes.path), held_back=held)


def _label_provenance(session: Session, project: Project) -> LabelProvenance:
    """The gate in force, the audits so far, the judges with their prompt versions and their cost."""
    calibration = gate_in_force(session, project)
    audited = audited_agreement(session, project)
    judges, prompts, cost = _judges_and_prompts(session, project)
    return LabelProvenance(calibration, audited, judges, prompts, judge_cost=cost)


def _next_number(session: Session, project: Project) -> int:
    """One more than the project's last export number (a concurrent export may take it first)."""
    last = session.exec(select(func.max(Export.number)).where(Export.project_id == project.id)).one()
    return (last or 0) + 1


def _record_export(
    session: Session,
    export: Export,
    request: ExportRequest,
    rows_sha256: str,
    refused: list[dict[str, str]],
) -> None:
    """The audit log's entry for ``export``: what was written and any promotion refusal overridden."""
    audit.record_event(
        session,
        "export",
        project_id=export.project_id,
        subject=f"export:{export.project_id}:{export.number}",
        payload={
            "number": export.number,
            "format": request.format,
            "filters": request.filters(),
            "rows": export.rows,
            "rows_sha256": rows_sha256,
            "forced": request.force,
            "force_reason": request.reason if request.force else None,
            "refusals_overridden": refused if request.force else [],
            "redacted": request.redact,
        },
    )


def list_exports(session: Session, project_id: int) -> list[Export]:
    query = select(Export).where(Export.project_id == project_id).order_by(col(Export.number))
    return list(session.exec(query))


def get_export(session: Session, project_id: int, number: int) -> Export | None:
    return session.exec(
        select(Export).where(Export.project_id == project_id, Export.number == number)
    ).first()


def export_view(export: Export) -> dict[str, Any]:
    """An export as the API shows it (the manifest included)."""
    return {
        "number": export.number,
        "project_id": export.project_id,
        "format": export.format,
        "filters": export.filters,
        "rows": export.rows,
        "forced": export.forced,
        "force_reason": export.force_reason,
        "created_at": export.created_at,
        "manifest": export.manifest,
    }


# --- diff ----------------------------------------------------------------------------------


def snapshot_labels(directory: Path) -> Iterator[tuple[int, str | None]]:
    """(pair id, final label) of every row of an export directory, whatever its format."""
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    try:
        module = format_module(manifest["format"])
    except ValueError as error:
        raise ValueError(f"{directory}: {error}") from None
    yield from module.final_labels(directory)


def diff_snapshots(a: Path, b: Path) -> dict[str, Any]:
    """Pairs added (in b only), removed (in a only) and relabelled (in both, label changed)."""
    before = dict(snapshot_labels(a))
    added: list[int] = []
    relabelled: list[dict[str, Any]] = []
    for pair_id, label in snapshot_labels(b):
        if pair_id not in before:
            added.append(pair_id)
            continue
        old = before.pop(pair_id)
        if old != label:
            relabelled.append({"pair_id": pair_id, "from": old, "to": label})
    removed = sorted(before)
    return {
        "a": str(a),
        "b": str(b),
        "added": sorted(added),
        "removed": removed,
        "relabelled": relabelled,
        "counts": {"added": len(added), "removed": len(removed), "relabelled": len(relabelled)},
    }
