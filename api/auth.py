"""Reviewer accounts and bearer-token auth for the review API.

Reviewers sign in with a random token; only its SHA-256 is stored, so a leaked database
does not leak working tokens (the tokens are 256-bit random, so a plain hash is enough:
there is nothing to brute-force). The admin authenticates with ``settings.admin_token``
(env ``PRELABEL_ADMIN_TOKEN``); only the admin creates reviewers and reads PII mappings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Annotated

import httpx
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from api.deps import SessionDep, SettingsDep
from api.models import utcnow

TOKEN_PREFIX = "rvw_"


class Reviewer(SQLModel, table=True):
    __tablename__ = "reviewer"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, min_length=1, max_length=200)
    token_hash: str = Field(max_length=64, index=True, unique=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    # The prefix makes a pasted reviewer token recognisable (and greppable in secret scanners).
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ReviewerExists(Exception):
    pass


def create_reviewer(session: Session, name: str) -> tuple[Reviewer, str]:
    """Store a reviewer and return it with its token (the only time the token is visible)."""
    token = new_token()
    reviewer = Reviewer(name=name.strip(), token_hash=hash_token(token))
    session.add(reviewer)
    try:
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
    session.commit()
    return token


def reviewer_for_token(session: Session, token: str) -> Reviewer | None:
    reviewer = session.exec(select(Reviewer).where(Reviewer.token_hash == hash_token(token))).first()
    return reviewer if reviewer is not None and reviewer.active else None


# --- FastAPI dependencies ----------------------------------------------------------------

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


# --- for the demo ------------------------------------------------------------------------


def ensure_demo_reviewer(api_base_url: str, admin_token: str, name: str = "demo-reviewer") -> str:
    """Create (or re-key) reviewer ``name`` through the API and return a working token.

    Tokens are stored hashed, so an existing reviewer gets a fresh token (the old one stops
    working): the demo always prints a token that signs in.
    """
    headers = {"authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api_base_url.rstrip("/"), headers=headers, timeout=10) as http:
        response = http.post("/v1/reviewers", json={"name": name})
        if response.status_code == 201:
            return response.json()["token"]
        if response.status_code != 409:
            response.raise_for_status()
        listing = http.get("/v1/reviewers")
        listing.raise_for_status()
        reviewer = next(r for r in listing.json() if r["name"] == name)
        rotated = http.post(f"/v1/reviewers/{reviewer['id']}/token")
        rotated.raise_for_status()
        return rotated.json()["token"]
