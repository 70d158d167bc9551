"""Calibration versions: which one is a project's latest, and the gate it holds.

"The latest version" is read one way, :func:`latest_version_names` (highest version
number), by every reader: the decision writer, the worker's :class:`GateCache`, refits and
the kill-switch. :func:`hold_versions` is the lock that keeps it from changing under a
writer of decisions or of a new version.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.models import CalibrationVersion, Project, version_label
from api.routing.route import FittedGate
from calibration.cascade import CascadeModel
from calibration.gate import GateModel

# The first key of the advisory locks that hold a project's calibration versions (hold_versions).
VERSIONS_LOCK = 0x7072656C  # "prel"


def hold_versions(session: Session, project_ids: Iterable[int], *, adding: bool = False) -> None:
    """Keep these projects' calibration versions as they are until the transaction ends.

    A decision is stored only under its project's latest version, and a new version's
    re-routing must see every pair decided before it landed. So writers of decisions hold the
    projects shared and the writer of a new version (``adding``) holds its project exclusively:
    no version lands between a decision writer's check of "latest" and its commit, and two
    version writers never read the same latest.

    PostgreSQL: transaction-level advisory locks, which queue fairly (a steady stream of
    decision writers cannot starve a refit, as it could with FOR SHARE row locks) and leave
    the project row alone. SQLite has one writer at a time: taking the write lock first, with
    a no-op UPDATE of a column no foreign key points at (SET id=id would make SQLite check
    every child row), gives the same order. That relies on pysqlite's default transaction
    handling, where earlier SELECTs run outside any transaction and so hold no old snapshot.
    """
    ids = sorted(set(project_ids))
    if not ids:
        return
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Project)
            .where(col(Project.id).in_(ids))
            .values(allow_empty_responses=Project.allow_empty_responses)
        )
        return
    lock = func.pg_advisory_xact_lock if adding else func.pg_advisory_xact_lock_shared
    for project_id in ids:  # in order, so two writers of several projects cannot deadlock
        session.execute(select(lock(VERSIONS_LOCK, project_id)))


def _latest_numbers(project_ids: Iterable[int]) -> Any:
    """The one definition of a project's latest version: its highest version number."""
    return (
        select(CalibrationVersion.project_id, func.max(CalibrationVersion.version).label("version"))
        .where(col(CalibrationVersion.project_id).in_(list(project_ids)))
        .group_by(col(CalibrationVersion.project_id))
    )


def latest_version_names(session: Session, project_ids: set[int]) -> dict[int, str]:
    """Name of each project's latest calibration version ("routing-v0" before the first)."""
    names = {pid: version_label(None) for pid in project_ids}
    names.update({pid: version_label(version) for pid, version in session.exec(_latest_numbers(project_ids))})
    return names


def version_name(version: CalibrationVersion | None) -> str:
    return version_label(version.version if version is not None else None)


def latest_version(session: Session, project_id: int) -> CalibrationVersion | None:
    """The project's latest version (the one :func:`latest_version_names` names), or None."""
    latest = _latest_numbers([project_id]).subquery()
    return session.exec(
        select(CalibrationVersion).join(
            latest,
            and_(
                CalibrationVersion.project_id == latest.c.project_id,
                CalibrationVersion.version == latest.c.version,
            ),
        )
    ).first()


def latest_version_to_follow(session: Session, project_id: int) -> CalibrationVersion | None:
    """The latest version, with the project held until ``session`` commits the one after it.

    Refits (two workers' maintenance passes, a manual refit) and the kill-switch may run at
    once; each numbers its version after the latest it read here, so they never collide.
    """
    hold_versions(session, [project_id], adding=True)
    return latest_version(session, project_id)


# Triggers of versions that closed an open gate: the audit kill-switch and the shift detector.
KILL_SWITCH_TRIGGERS: tuple[str, ...] = ("drift", "shift")


def kill_switch_since(
    session: Session, project_id: int, after: CalibrationVersion | None
) -> CalibrationVersion | None:
    """The first kill-switch version (drift or shift) stored after ``after`` (after none: the first ever)."""
    query = select(CalibrationVersion).where(
        CalibrationVersion.project_id == project_id,
        col(CalibrationVersion.trigger).in_(KILL_SWITCH_TRIGGERS),
    )
    if after is not None:
        query = query.where(col(CalibrationVersion.version) > after.version)
    return session.exec(query.order_by(col(CalibrationVersion.version)).limit(1)).first()


def load_model(stored: dict[str, Any]) -> FittedGate:
    """A stored gate: a cascade when it has stages, else the single-panel gate."""
    return CascadeModel.from_dict(stored) if "stages" in stored else GateModel.from_dict(stored)


def gate_model(version: CalibrationVersion | None) -> FittedGate | None:
    if version is None or version.model is None:
        return None
    model = load_model(version.model)
    # A kill-switch version keeps the fitted model for the record but must not accept.
    model.open = bool(version.open and model.open)
    return model


class GateCache:
    """Current gate per project; re-reads the latest version id at most every ``ttl_s``."""

    def __init__(self, engine: Engine, ttl_s: float = 2.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        # project -> (read at, latest version's gate, its name)
        self._entries: dict[int, tuple[float, FittedGate | None, str]] = {}

    def get(self, project_id: int, fresh: bool = False) -> tuple[FittedGate | None, str]:
        """``fresh``: look up the latest version now, whatever the age of the cached one."""
        now = time.monotonic()
        entry = self._entries.get(project_id)
        if entry is not None and now - entry[0] < self.ttl_s and not fresh:
            return entry[1], entry[2]
        with Session(self.engine) as session:
            name = latest_version_names(session, {project_id})[project_id]
            if entry is not None and entry[2] == name:
                self._entries[project_id] = (now, entry[1], name)
                return entry[1], name
            version = latest_version(session, project_id)
        # Named after the row read (a version may have landed since the name was looked up).
        name = version_name(version)
        model = gate_model(version)
        self._entries[project_id] = (now, model, name)
        return model, name
