"""Queue filters as SQL: which waiting items match a reviewer's reason, source, metadata and
text filter (:class:`api.schemas.QueueFilter`).

Every condition is an ``EXISTS`` or a test on the item row itself, never a join, so the claim's
``FOR UPDATE OF`` the item (PostgreSQL) and its priority-ordered scan stay as they are. The same
SQL runs on SQLite and PostgreSQL:

* reasons: the item's reasons are a JSON list of vocabulary words; a word is matched with its
  quotes (``"audit"``) in the list's text, so one word never matches inside another.
* source: the pair's job.
* metadata: the stored value as JSON writes a scalar's text (``->>`` on PostgreSQL; SQLite's
  ``json_extract`` with booleans spelled back to ``true``/``false``).
* text: the *redacted* prompt and responses of the current redaction version, the text the
  reviewer is shown. Searching the originals would let a reviewer probe hidden personal data
  ("does any pair mention jane.doe@...?") one query at a time; an older version's text may hold
  kinds of personal data recognised since, so it is not searched either. Pairs not yet redacted
  are redacted here first (:func:`prepare_search`, bounded), the rest by the background pass.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, and_, case, cast, func, literal, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, exists, select

from api.models import Pair, PairRedaction, ReviewItem
from api.review.redacted_pairs import ensure_redactions
from api.review.redaction import REDACTION_VERSION
from api.schemas import QueueFilter
from api.schemas.queue import meta_text

# Pairs a text search redacts on the request path before it searches (~25 ms each): the
# background preparation (api/review/prepare.py) normally has done them all; more than this
# wait for it, and the queue list says how many a search could not see.
SEARCH_PREPARE_LIMIT = 200
WAITING = ("open", "leased")


# LIKE's escape character: not a backslash, which the two databases quote differently.
ESCAPE = "!"


def _like_escaped(text: str) -> str:
    """``text`` with LIKE's wildcards taken literally."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _meta_value(dialect: str, key: str) -> ColumnElement[Any]:
    """The pair's top-level metadata ``key`` as JSON text of a scalar (NULL when absent)."""
    if dialect == "postgresql":
        return col(Pair.meta).op("->>")(literal(key, Text))
    path = '$."' + key + '"'  # the key's characters are checked by QueueFilter: no quote
    kind = func.json_type(col(Pair.meta), path)
    return case(
        (kind == "true", "true"),
        (kind == "false", "false"),
        else_=cast(func.json_extract(col(Pair.meta), path), Text),
    )


def _contains(column: Any, needle: str, dialect: str) -> ColumnElement[bool]:
    pattern = "%" + _like_escaped(needle) + "%"
    if dialect == "postgresql":
        return column.ilike(pattern, escape=ESCAPE)
    # SQLite's own lower() and LIKE fold ASCII only: prelabel_lower (api/db.py) is Python's.
    return func.prelabel_lower(column).like(pattern.lower(), escape=ESCAPE)


def conditions(flt: QueueFilter | None, item: Any, dialect: str) -> list[ColumnElement[bool]]:
    """SQL conditions on the review item ``item`` (the model or an alias) for ``flt``."""
    if flt is None or flt.is_empty():
        return []
    out: list[ColumnElement[bool]] = []
    if flt.reasons:
        listed = cast(col(item.reasons), Text)
        out.append(or_(*(listed.like(f'%"{_like_escaped(str(r))}"%', escape=ESCAPE) for r in flt.reasons)))
    pair_is = col(Pair.id) == col(item.pair_id)
    if flt.jobs:
        out.append(exists().where(pair_is, col(Pair.job_id).in_(flt.jobs)))
    if flt.metadata:
        equal = [_meta_value(dialect, key) == meta_text(value) for key, value in flt.metadata.items()]
        out.append(exists().where(pair_is, *equal))
    if flt.text:
        shown = [col(PairRedaction.prompt), col(PairRedaction.response_a), col(PairRedaction.response_b)]
        out.append(
            exists().where(
                col(PairRedaction.pair_id) == col(item.pair_id),
                col(PairRedaction.version) == REDACTION_VERSION,
                or_(*(_contains(c, flt.text, dialect) for c in shown)),
            )
        )
    return out


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def _unprepared(project_id: int, queues: tuple[str, ...]) -> Any:
    """Waiting items of the project whose pair has no redaction of the current version."""
    item = aliased(ReviewItem)
    ready = exists().where(
        col(PairRedaction.pair_id) == col(item.pair_id), col(PairRedaction.version) == REDACTION_VERSION
    )
    where = and_(
        col(item.project_id) == project_id,
        col(item.queue).in_(queues),
        col(item.state).in_(WAITING),
        ~ready,
    )
    return item, where


def prepare_search(
    session: Session, project_id: int, queues: tuple[str, ...], flt: QueueFilter | None
) -> int:
    """Before a text search: redact up to :data:`SEARCH_PREPARE_LIMIT` waiting pairs that have
    no current redaction (best first), so the search sees them. Returns how many waiting items
    are still unsearchable (0 without a text filter)."""
    if flt is None or not flt.text:
        return 0
    item, where = _unprepared(project_id, queues)
    pair_ids = session.exec(
        select(col(item.pair_id)).where(where).order_by(col(item.priority).desc()).limit(SEARCH_PREPARE_LIMIT)
    ).all()
    if pair_ids:
        pairs = session.exec(select(Pair).where(col(Pair.id).in_(sorted(set(pair_ids))))).all()
        ensure_redactions(session, pairs)
        session.flush()
    item, where = _unprepared(project_id, queues)
    return int(session.execute(select(func.count()).select_from(item).where(where)).scalar_one())


def count_waiting(session: Session, project_id: int, queue: str, flt: QueueFilter | None) -> int:
    """Waiting items (open or leased) of the project's ``queue`` that match ``flt``."""
    item = aliased(ReviewItem)
    where = [col(item.project_id) == project_id, col(item.queue) == queue, col(item.state).in_(WAITING)]
    query = select(func.count()).select_from(item).where(*where, *conditions(flt, item, dialect_of(session)))
    return int(session.execute(query).scalar_one())
