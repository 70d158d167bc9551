"""What reviewers read: each pair's redacted texts, computed once per redaction version and
stored (``pair_redaction``), with token -> original kept apart for admins (``redaction_mapping``).
The redactor itself is pure (:mod:`api.review.redaction`); this module stores what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlmodel import Session, col, select

from api.db import chunks, insert_ignore
from api.models import Pair, PairRedaction, RedactionMapping, table_of, utcnow
from api.review.redaction import REDACTION_VERSION, redact_pair


def ensure_redactions(session: Session, pairs: Sequence[Pair]) -> dict[int, PairRedaction]:
    """Redacted texts for these pairs, computing and storing the missing ones."""
    ids = [p.id for p in pairs]
    found = {
        r.pair_id: r
        for part in chunks(ids)
        for r in session.exec(select(PairRedaction).where(col(PairRedaction.pair_id).in_(part)))
    }
    # Rows of an older redaction version may let through kinds of PII found since: redo them.
    stale = [pid for pid, r in found.items() if r.version != REDACTION_VERSION]
    if stale:
        for part in chunks(stale):
            session.exec(sa_delete(PairRedaction).where(col(PairRedaction.pair_id).in_(part)))
            session.exec(sa_delete(RedactionMapping).where(col(RedactionMapping.pair_id).in_(part)))
        for pid in stale:
            del found[pid]
    missing = [p for p in pairs if p.id not in found]
    if missing:
        now = utcnow()
        shown: list[dict[str, Any]] = []
        secret: list[dict[str, Any]] = []
        for pair in missing:
            red = redact_pair(pair.prompt, pair.response_a, pair.response_b)
            shown.append(
                {
                    "pair_id": pair.id,
                    "version": red.version,
                    "prompt": red.prompt,
                    "response_a": red.response_a,
                    "response_b": red.response_b,
                    "n_tokens": len(red.mapping),
                    "created_at": now,
                }
            )
            secret.append(
                {"pair_id": pair.id, "version": red.version, "mapping": red.mapping, "created_at": now}
            )
        insert_ignore(session, table_of(PairRedaction), shown, ["pair_id"])
        insert_ignore(session, table_of(RedactionMapping), secret, ["pair_id"])
        # Redaction is deterministic per version, so a row another writer stored first holds
        # the same text: no need to read it back.
        found.update({row["pair_id"]: PairRedaction(**row) for row in shown})
    return found
