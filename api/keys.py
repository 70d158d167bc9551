"""Project API keys: what a batch client signs in with.

A key is scoped to one project (its jobs, gold labels, refits and results). Only its SHA-256
is stored -- the key is 256-bit random, so a plain hash is enough: nothing to brute-force --
and the key itself is returned once, at creation. Revoking is immediate. The admin creates,
lists and revokes keys (``/v1/projects/{id}/keys``). The only writer of ``api_key``.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, col, select

from api import audit
from api.models import ApiKey, utcnow

# The prefix tells the key apart from reviewer tokens (and lets secret scanners find it).
KEY_PREFIX = "plk_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(session: Session, project_id: int, name: str) -> tuple[ApiKey, str]:
    """Store a new key for the project; returns the row and the key (shown this once)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(project_id=project_id, name=name.strip(), prefix=key[:12], key_hash=_hash(key))
    session.add(row)
    session.flush()
    _audit(session, audit.AuditKind.TOKEN_CREATED, row)
    session.commit()
    session.refresh(row)
    return row, key


def list_keys(session: Session, project_id: int) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.project_id == project_id).order_by(col(ApiKey.id))
    return list(session.exec(query))


def revoke_key(session: Session, project_id: int, key_id: int) -> ApiKey | None:
    """Revoke a key of the project (None if it has no such key); revoking twice is a no-op."""
    row = session.get(ApiKey, key_id)
    if row is None or row.project_id != project_id:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        _audit(session, audit.AuditKind.TOKEN_REVOKED, row)
        session.commit()
    return row


def _audit(session: Session, kind: str, row: ApiKey) -> None:
    payload = {"token": "api_key", "name": row.name, "prefix": row.prefix}
    audit.record_event(session, kind, project_id=row.project_id, subject=f"api_key:{row.id}", payload=payload)


def project_for_key(session: Session, key: str) -> int | None:
    """The project a live key belongs to, or None for an unknown or revoked key."""
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == _hash(key))).first()
    return row.project_id if row is not None and row.revoked_at is None else None
