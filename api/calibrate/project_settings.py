"""A project's judge panel and routing settings, edited after creation (PATCH /v1/projects/{id},
and a job retry's new panel).

An edit is checked as a whole before anything is stored: the panel as at creation
(:func:`api.judging.checks.panel_of`), the routing fields merged onto the current settings and
validated together (:class:`api.schemas.RoutingSettings`). A change is stored with an audit
event holding what changed (before and after), then the gate is refitted under the new
settings (:func:`api.calibrate.refits.refit`, the one writer of calibration versions): a gate
fitted for other judges or another target must not stay open, and the new version re-routes
the project's judged pairs. Workers read a project again when its version changes, so the
version that follows an edit also carries the edit to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api import audit
from api.calibrate.refits import refit
from api.judging.checks import panel_of
from api.models import Project
from api.schemas import Aspect, AspectSettings, JudgeSpec, RoutingSettings

__all__ = ["SettingsRefused", "edit_settings"]


class SettingsRefused(ValueError):
    """An edit that does not validate: nothing was stored. ``problems`` name each field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _merged_routing(current: RoutingSettings, changes: dict[str, Any]) -> RoutingSettings:
    try:
        return RoutingSettings.model_validate({**current.model_dump(), **changes})
    except ValidationError as e:
        raise SettingsRefused(
            [f"routing.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        ) from None


def _merged_aspects(
    current: AspectSettings, aspects: list[Aspect] | None, overall: str | None
) -> AspectSettings:
    try:
        return AspectSettings.model_validate(
            {
                "aspects": current.aspects if aspects is None else aspects,
                "overall": overall or ("question" if aspects == [] else current.overall),
            }
        )
    except ValidationError as e:
        raise SettingsRefused([f"aspects: {err['msg']}" for err in e.errors()]) from None


def edit_settings(
    engine: Engine,
    project_id: int,
    settings: Any,
    *,
    judges: list[JudgeSpec | str] | None = None,
    routing: dict[str, Any] | None = None,
    aspects: list[Aspect] | None = None,
    overall: str | None = None,
    why: str = "settings edited",
) -> Project:
    """Store a new panel and/or routing fields (None: unchanged), audit the change and refit.

    Raises :class:`SettingsRefused` (nothing stored) on invalid values, LookupError when the
    project does not exist. An edit that changes nothing stores nothing and makes no version.
    """
    with Session(engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise LookupError(f"project {project_id} not found")
        old_routing, old_judges = project.routing_settings(), project.judge_specs()
        new_routing = _merged_routing(old_routing, routing or {})
        old_aspects = project.aspect_settings()
        new_aspects = _merged_aspects(old_aspects, aspects, overall)
        entries: list[JudgeSpec | str] = list(old_judges) if judges is None else judges
        new_judges, problems = panel_of(entries, new_routing, settings)
        if problems:
            raise SettingsRefused(problems)
        before: dict[str, Any] = {
            "judges": [j.model_dump() for j in old_judges],
            "routing": old_routing.model_dump(),
            "aspects": old_aspects.stored(),
        }
        after: dict[str, Any] = {
            "judges": [j.model_dump() for j in new_judges],
            "routing": new_routing.model_dump(),
            "aspects": new_aspects.stored(),
        }
        changed = _changes(before, after)
        if not changed:
            return project
        project.judges, project.routing, project.aspects = after["judges"], after["routing"], after["aspects"]
        session.add(project)
        audit.record_event(
            session,
            audit.AuditKind.PROJECT_SETTINGS,
            project_id=project.id,
            subject=f"project:{project.id}",
            payload={"why": why, "changed": changed},
        )
        session.commit()
    refit(engine, project, trigger="settings")
    return project


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What an edit changes: the whole panel if it changed, each routing field that did."""
    changed: dict[str, Any] = {}
    for whole in ("judges", "aspects"):
        if before[whole] != after[whole]:
            changed[whole] = {"before": before[whole], "after": after[whole]}
    fields = {
        name: {"before": before["routing"][name], "after": value}
        for name, value in after["routing"].items()
        if before["routing"].get(name) != value
    }
    if fields:
        changed["routing"] = fields
    return changed
