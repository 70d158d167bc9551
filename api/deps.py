"""FastAPI dependencies, in one place: engine, settings, session, project, job, and who is calling."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.models import Job, Project, Reviewer
from api.review.reviewers import reviewer_for_token
from api.settings import Settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_project(project_id: int, session: SessionDep) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise HTTPException(status_code=404, detail=f"project {project_id} not found")
    return project


def get_job(job_id: int, session: SessionDep) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"job {job_id} not found")
    return job


ProjectDep = Annotated[Project, Depends(get_project)]
JobDep = Annotated[Job, Depends(get_job)]


# --- who is calling ---------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="a reviewer token, or the admin token")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _is_admin(credentials: HTTPAuthorizationCredentials | None, admin_token: str) -> bool:
    # compare_digest: the comparison time must not reveal how much of the token matched.
    return credentials is not None and hmac.compare_digest(credentials.credentials, admin_token)


def require_admin(credentials: CredentialsDep, settings: SettingsDep) -> None:
    if credentials is None:
        raise _unauthorized("admin token required (Authorization: Bearer <PRELABEL_ADMIN_TOKEN>)")
    if not _is_admin(credentials, settings.admin_token):
        raise HTTPException(403, "this endpoint needs the admin token")


def require_reviewer(credentials: CredentialsDep, session: SessionDep) -> Reviewer:
    if credentials is None:
        raise _unauthorized("reviewer token required (Authorization: Bearer <token>)")
    reviewer = reviewer_for_token(session, credentials.credentials)
    if reviewer is None:
        raise _unauthorized("unknown or deactivated reviewer token")
    return reviewer


def require_reader(
    credentials: CredentialsDep, session: SessionDep, settings: SettingsDep
) -> Reviewer | None:
    """Reviewer or admin (dashboards): the reviewer, or None for the admin."""
    if _is_admin(credentials, settings.admin_token):
        return None
    return require_reviewer(credentials, session)


AdminDep = Annotated[None, Depends(require_admin)]
ReviewerDep = Annotated[Reviewer, Depends(require_reviewer)]
ReaderDep = Annotated[Reviewer | None, Depends(require_reader)]
