"""Reviewer accounts and bearer-token auth for the review API.

Reviewers sign in with a random token; only its SHA-256 is stored, so a leaked database
does not leak working tokens (the tokens are 256-bit random, so a plain hash is enough:
there is nothing to brute-force). The admin authenticates with ``settings.admin_token``
(env ``PRELABEL_ADMIN_TOKEN``); only the admin creates reviewers, assigns them to projects
(a reviewer sees only those projects' queues) and reads PII mappings.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api import audit
from api.models import Project, Reviewer, ReviewerProject

TOKEN_PREFIX = "rvw_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    # The prefix makes a pasted reviewer token recognisable (and greppable in secret scanners).
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ReviewerExists(Exception):
    pass


def create_reviewer(session: Session, name: str, *, senior: bool = False) -> tuple[Reviewer, str]:
    """Store a reviewer and return it with its token (the only time the token is visible)."""
    token = new_token()
    reviewer = Reviewer(name=name.strip(), token_hash=hash_token(token), senior=senior)
    session.add(reviewer)
    try:
        session.flush()
        _audit(session, audit.AuditKind.TOKEN_CREATED, reviewer)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ReviewerExists(name) from None
    session.refresh(reviewer)
    return reviewer, token


def rotate_token(session: Session, reviewer: Reviewer) -> str:
    """Replace a reviewer's token (the old one stops working at once)."""
    token = new_token()
    reviewer.token_hash = hash_token(token)
    session.add(reviewer)
    _audit(session, audit.AuditKind.TOKEN_REVOKED, reviewer, why="rotated")
    _audit(session, audit.AuditKind.TOKEN_CREATED, reviewer, why="rotated")
    session.commit()
    return token


def _audit(session: Session, kind: str, reviewer: Reviewer, why: str | None = None) -> None:
    payload = {"token": "reviewer", "name": reviewer.name, "why": why}
    audit.record_event(session, kind, project_id=None, subject=f"reviewer:{reviewer.id}", payload=payload)


def reviewer_for_token(session: Session, token: str) -> Reviewer | None:
    reviewer = session.exec(select(Reviewer).where(Reviewer.token_hash == hash_token(token))).first()
    return reviewer if reviewer is not None and reviewer.active else None


class UnknownProjects(Exception):
    pass


def assign_projects(session: Session, reviewer: Reviewer, project_ids: list[int]) -> list[int]:
    """Set the projects the reviewer may work on (replacing the previous set)."""
    wanted = sorted(set(project_ids))
    known = set(session.exec(select(Project.id).where(col(Project.id).in_(wanted)))) if wanted else set()
    if missing := [p for p in wanted if p not in known]:
        raise UnknownProjects(", ".join(map(str, missing)))
    for row in session.exec(select(ReviewerProject).where(ReviewerProject.reviewer_id == reviewer.id)):
        session.delete(row)
    session.flush()
    session.add_all(ReviewerProject(reviewer_id=reviewer.id, project_id=p) for p in wanted)
    session.commit()
    return wanted


def assigned_projects(session: Session, reviewer: Reviewer) -> list[int]:
    return sorted(
        session.exec(select(ReviewerProject.project_id).where(ReviewerProject.reviewer_id == reviewer.id))
    )
