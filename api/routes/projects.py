"""Projects: the rubric, judge panel and routing settings that jobs run under."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.calibrate.project_settings import SettingsRefused, edit_settings
from api.deps import AdminDep, CallerDep, EngineDep, MemberProjectDep, SessionDep, SettingsDep
from api.errors import bounded_path_ids, errors
from api.judging.checks import panel_of
from api.keys import create_key, list_keys, revoke_key
from api.models import ApiKey, Project
from api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ProjectCreate,
    ProjectGuidelines,
    ProjectPublic,
    ProjectSettingsEdit,
)

router = APIRouter(
    prefix="/v1/projects",
    tags=["projects"],
    dependencies=[Depends(bounded_path_ids)],
    responses=errors(400, 401, 403, 404, 422),
)


def to_public(project: Project) -> ProjectPublic:
    aspects = project.aspect_settings()
    return ProjectPublic.model_validate(
        {
            **project.model_dump(),
            "judges": project.judge_specs(),
            "routing": project.routing_settings(),
            "aspects": aspects.aspects,
            "overall": aspects.overall,
        }
    )


@router.post("", response_model=ProjectPublic, status_code=201, responses=errors(409))
def create_project(
    body: ProjectCreate, session: SessionDep, settings: SettingsDep, _: AdminDep
) -> ProjectPublic:
    judges, problems = panel_of(list(body.judges or settings.judges), body.routing, settings)
    if problems:
        raise HTTPException(422, "; ".join(problems))
    project = Project(
        name=body.name,
        rubric=body.rubric,
        guidelines=body.guidelines,
        prompt_version=body.prompt_version,
        allow_empty_responses=body.allow_empty_responses,
        judges=[j.model_dump() for j in judges],
        routing=body.routing.model_dump(),
        aspects=body.aspect_settings().stored(),
    )
    session.add(project)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, f"project name {body.name!r} is taken") from None
    session.refresh(project)
    return to_public(project)


@router.get("", response_model=list[ProjectPublic])
def list_projects(session: SessionDep, caller: CallerDep) -> list[ProjectPublic]:
    """Every project for the admin; a key's own project; a reviewer's assigned projects."""
    projects = session.exec(select(Project).order_by(col(Project.id)))
    return [to_public(p) for p in projects if caller.may_read(p.id)]


@router.get("/{project_id}", response_model=ProjectPublic)
def read_project(project: MemberProjectDep) -> ProjectPublic:
    return to_public(project)


@router.patch("/{project_id}", response_model=ProjectPublic)
def edit_project(
    project_id: int, body: ProjectSettingsEdit, engine: EngineDep, settings: SettingsDep, _: AdminDep
) -> ProjectPublic:
    """Change the judge panel, routing fields (merged onto the current settings) and/or the
    aspects (the list given replaces the current one; ``overall`` alone keeps them).

    Checked as a whole (422, nothing stored, on any bad value); each change is written to the
    audit log with its before and after, and the gate is refitted under the new settings (a
    new calibration version, which re-routes the project's judged pairs).
    """
    try:
        project = edit_settings(
            engine,
            project_id,
            settings,
            judges=None if body.judges is None else list(body.judges),
            routing=body.routing,
            aspects=body.aspects,
            overall=body.overall,
        )
    except LookupError:
        raise HTTPException(404, f"project {project_id} not found") from None
    except SettingsRefused as e:
        raise HTTPException(422, str(e)) from None
    return to_public(project)


@router.put("/{project_id}/guidelines", response_model=ProjectPublic)
def set_guidelines(
    project_id: int, body: ProjectGuidelines, session: SessionDep, _: AdminDep
) -> ProjectPublic:
    """Replace the project's reviewer guidelines (markdown; null or "" clears them)."""
    project = session.get(Project, project_id)
    if project is None:
        raise HTTPException(404, f"project {project_id} not found")
    project.guidelines = (body.guidelines or "").strip() or None
    session.add(project)
    session.commit()
    session.refresh(project)
    return to_public(project)


# --- API keys (admin) ----------------------------------------------------------------------


def _key_view(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(row, from_attributes=True)  # never key_hash: not a field


@router.post("/{project_id}/keys", response_model=ApiKeyCreated, status_code=201)
def create_api_key(project_id: int, body: ApiKeyCreate, session: SessionDep, _: AdminDep) -> ApiKeyCreated:
    """A new API key for the project's batch clients; the response holds the key, shown this
    once (only a hash is kept)."""
    if session.get(Project, project_id) is None:
        raise HTTPException(404, f"project {project_id} not found")
    row, key = create_key(session, project_id, body.name)
    return ApiKeyCreated(**_key_view(row).model_dump(), key=key)


@router.get("/{project_id}/keys", response_model=list[ApiKeyPublic])
def list_api_keys(project_id: int, session: SessionDep, _: AdminDep) -> list[ApiKeyPublic]:
    if session.get(Project, project_id) is None:
        raise HTTPException(404, f"project {project_id} not found")
    return [_key_view(row) for row in list_keys(session, project_id)]


@router.delete("/{project_id}/keys/{key_id}", response_model=ApiKeyPublic)
def revoke_api_key(project_id: int, key_id: int, session: SessionDep, _: AdminDep) -> ApiKeyPublic:
    """Revoke a key at once (its next request gets 401)."""
    row = revoke_key(session, project_id, key_id)
    if row is None:
        raise HTTPException(404, f"project {project_id} has no key {key_id}")
    return _key_view(row)
