"""Projects: the rubric, judge panel and routing settings that jobs run under."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.deps import ProjectDep, SessionDep, SettingsDep
from api.models import Project
from api.schemas import JudgeSpec, ProjectCreate, ProjectPublic

router = APIRouter(prefix="/v1/projects", tags=["projects"])


def to_public(project: Project) -> ProjectPublic:
    return ProjectPublic.model_validate(
        {**project.model_dump(), "judges": project.judge_specs(), "routing": project.routing_settings()}
    )


@router.post("", response_model=ProjectPublic, status_code=201)
def create_project(body: ProjectCreate, session: SessionDep, settings: SettingsDep) -> ProjectPublic:
    judges = [JudgeSpec(model=j) if isinstance(j, str) else j for j in body.judges] or [
        JudgeSpec(model=m) for m in settings.judges
    ]
    if not judges:
        raise HTTPException(422, "no judges: give `judges` or set PRELABEL_JUDGES")
    models = [j.model for j in judges]
    if len(set(models)) != len(models):
        raise HTTPException(422, f"judge listed twice: {sorted({m for m in models if models.count(m) > 1})}")
    project = Project(
        name=body.name,
        rubric=body.rubric,
        prompt_version=body.prompt_version,
        allow_empty_responses=body.allow_empty_responses,
        judges=[j.model_dump() for j in judges],
        routing=body.routing.model_dump(),
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
def list_projects(session: SessionDep) -> list[ProjectPublic]:
    return [to_public(p) for p in session.exec(select(Project).order_by(Project.id))]


@router.get("/{project_id}", response_model=ProjectPublic)
def read_project(project: ProjectDep) -> ProjectPublic:
    return to_public(project)
