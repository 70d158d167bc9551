"""FastAPI dependencies, in one place: engine, settings, session, and who is calling (roles)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.keys import KEY_PREFIX, project_for_key
from api.models import Job, Project, Reviewer
from api.review.reviewers import assigned_projects, reviewer_for_token
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


# --- who is calling ---------------------------------------------------------------------
#
# Three roles, told apart by the bearer token (see README "Roles and keys"):
# * admin: the one configured token (``PRELABEL_ADMIN_TOKEN``); everything.
# * client: a project API key (api/keys.py); its own project's jobs, labels and gate.
# * reviewer: a reviewer token (api/review/reviewers.py); the queues and dashboards of the
#   projects the reviewer is assigned to.
# Every route names its role by one of the dependencies below; api/policy.py says which class
# each route belongs to (tests/test_authz.py walks every route of the OpenAPI spec against
# every role).

_bearer = HTTPBearer(auto_error=False, description="the admin token, a project API key, or a reviewer token")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``role`` and what it may reach."""

    role: Literal["admin", "client", "reviewer"]
    project_id: int | None = None  # a client's project
    reviewer: Reviewer | None = None
    projects: frozenset[int] = frozenset()  # a reviewer's assigned projects

    def may_read(self, project_id: int) -> bool:
        return self.role == "admin" or self.project_id == project_id or project_id in self.projects

    def may_write(self, project_id: int) -> bool:
        return self.role == "admin" or (self.role == "client" and self.project_id == project_id)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _is_admin(token: str, admin_token: str | None) -> bool:
    # compare_digest on bytes: the comparison time must not reveal how much of the token
    # matched, and a non-ASCII token must not raise (str compare_digest is ASCII-only).
    return admin_token is not None and hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), admin_token.encode("utf-8", "surrogatepass")
    )


def get_caller(credentials: CredentialsDep, session: SessionDep, settings: SettingsDep) -> Caller:
    """Resolve the bearer token to a role; 401 without a token or with an unknown one."""
    if credentials is None:
        raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    token = credentials.credentials
    if _is_admin(token, settings.admin_token):
        return Caller("admin")
    if token.startswith(KEY_PREFIX):
        project_id = project_for_key(session, token)
        if project_id is None:
            raise _unauthorized("unknown or revoked API key")
        return Caller("client", project_id=project_id)
    reviewer = reviewer_for_token(session, token)
    if reviewer is None:
        raise _unauthorized("unknown token (or a deactivated reviewer)")
    return Caller("reviewer", reviewer=reviewer, projects=frozenset(assigned_projects(session, reviewer)))


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_admin(caller: CallerDep) -> Caller:
    if caller.role != "admin":
        raise HTTPException(403, "this endpoint needs the admin token")
    return caller


def require_reviewer(caller: CallerDep) -> Reviewer:
    if caller.reviewer is None:
        raise HTTPException(403, "this endpoint needs a reviewer token")
    return caller.reviewer


def require_senior(caller: CallerDep) -> Reviewer:
    """A senior reviewer (adjudication of disputed pairs)."""
    reviewer = require_reviewer(caller)
    if not reviewer.senior:
        raise HTTPException(403, "this endpoint needs a senior reviewer (adjudication)")
    return reviewer


def require_lead(caller: CallerDep) -> Reviewer | None:
    """A senior reviewer or the admin (who steers the queue: assignments): the reviewer, or
    None for the admin."""
    if caller.role == "admin":
        return None
    reviewer = require_reviewer(caller)
    if not reviewer.senior:
        raise HTTPException(403, "this endpoint needs a senior reviewer (or the admin token)")
    return reviewer


def require_reader(caller: CallerDep) -> Reviewer | None:
    """Reviewer or admin (their own dashboards): the reviewer, or None for the admin."""
    if caller.role == "admin":
        return None
    return require_reviewer(caller)


def _project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise HTTPException(status_code=404, detail=f"project {project_id} not found")
    return project


def project_for_client(project_id: int, caller: CallerDep, session: SessionDep) -> Project:
    """Admin, or the project's own API key: jobs, gold labels, refits, results."""
    if not caller.may_write(project_id):
        raise HTTPException(403, "this needs the project's API key (or the admin token)")
    return _project(session, project_id)


def project_for_member(project_id: int, caller: CallerDep, session: SessionDep) -> Project:
    """Admin, the project's API key, or a reviewer assigned to it: project and gate state."""
    if not caller.may_read(project_id):
        raise HTTPException(403, "not a project this token may read")
    return _project(session, project_id)


def project_for_reviewer(project_id: int, caller: CallerDep, session: SessionDep) -> Project:
    """A reviewer assigned to the project (its queue); the admin for the read-only views."""
    if caller.role == "client" or not caller.may_read(project_id):
        raise HTTPException(403, "this needs a reviewer assigned to the project")
    return _project(session, project_id)


def job_for_client(job_id: int, caller: CallerDep, session: SessionDep) -> Job:
    """A job, for the admin or its project's API key (404 for others: ids are not secrets,
    but which ones exist in other projects is none of their business)."""
    job = session.get(Job, job_id)
    if job is None or not caller.may_write(job.project_id):
        raise HTTPException(status_code=404, detail=f"job {job_id} not found")
    return job


AdminDep = Annotated[Caller, Depends(require_admin)]
ReviewerDep = Annotated[Reviewer, Depends(require_reviewer)]
SeniorDep = Annotated[Reviewer, Depends(require_senior)]
ReaderDep = Annotated[Reviewer | None, Depends(require_reader)]
LeadDep = Annotated[Reviewer | None, Depends(require_lead)]
ClientProjectDep = Annotated[Project, Depends(project_for_client)]
MemberProjectDep = Annotated[Project, Depends(project_for_member)]
ReviewerProjectDep = Annotated[Project, Depends(project_for_reviewer)]
ClientJobDep = Annotated[Job, Depends(job_for_client)]
