"""The review queue's background work, off the request path: backfill, lease expiry,
redaction, embeddings and the hybrid active-learning priority.

:func:`prepare_loop` runs in the API process (``api/main.py``'s lifespan) or a standalone
worker; :func:`prepare_batch` is one pass, safe from any process at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, exists, select

from api.db import insert_ignore
from api.models import (
    Label,
    Pair,
    PairEmbedding,
    PairRedaction,
    Project,
    ReviewItem,
    table_of,
    utcnow,
)
from api.review.queue import ITEM, backfill, expire_leases
from api.review.redacted_pairs import ensure_redactions
from api.review.redaction import REDACTION_VERSION

log = logging.getLogger("prelabel.review")
_c = ITEM.c
# Hybrid ordering covers the top of each queue only: k-center greedy is O(pool x k), and
# reviewers label hundreds of items an hour, so a re-ordered head of 200 is plenty.
# SQLite allows 32766 bound parameters; stay far below it for IN (...) lists.
# Hybrid ordering covers the top of each queue only: k-center greedy is O(pool x k), and
# reviewers label hundreds of items an hour, so a re-ordered head of 200 is plenty.
PRIORITY_POOL = 2000
PRIORITY_TOP_K = 200
SELECTED_HISTORY = 1000

_embeddings_broken = False
_model_loading: threading.Thread | None = None
_model_lock = threading.Lock()


def _embedding_module() -> Any | None:
    global _embeddings_broken
    if _embeddings_broken:
        return None
    try:
        from api.review import embeddings
    except ImportError:
        return None
    return embeddings


def _model_ready(module: Any) -> bool:
    """Is the embedding model loaded? If not, start loading it (once per process).

    Loading takes seconds (torch and the weights) and cannot be interrupted, so it runs on a
    daemon thread of its own: a server shutting down does not wait for it, and the queue keeps
    its uncertainty order until the model is in.
    """
    global _model_loading
    load = getattr(module, "load_model", None)
    if load is None or not hasattr(load, "cache_info"):
        return True  # a module without a lazily loaded model embeds directly
    if load.cache_info().currsize:
        return True
    with _model_lock:
        if _model_loading is None:
            _model_loading = threading.Thread(
                target=_load_model, args=(load,), name="embedding-model-load", daemon=True
            )
            _model_loading.start()
    return False


def _load_model(load: Any) -> None:
    global _embeddings_broken
    try:
        load()
    except Exception:  # a missing model must not stop the queue: uncertainty order still works
        log.exception("embedding model failed to load; review priority falls back to uncertainty order")
        _embeddings_broken = True


def queued_pairs_without(session: Session, table: Any, limit: int) -> list[Pair]:
    """Distinct queued pairs (open or leased items) with no row in ``table`` yet, likely-next first."""
    pairs = session.exec(
        select(Pair)
        .join(ReviewItem, col(ReviewItem.pair_id) == col(Pair.id))
        .where(
            col(ReviewItem.state).in_(("open", "leased")),
            ~exists().where(table.pair_id == Pair.id),
        )
        .order_by(col(ReviewItem.priority).desc())
        .limit(limit)
    ).all()
    return list({p.id: p for p in pairs}.values())


def queued_pairs_redacted_before(session: Session, version: str, limit: int) -> list[Pair]:
    """Queued pairs whose stored redaction is of another version: redone here, off the request
    path (a lease would redo it anyway, since an older version may let through kinds of
    personal data recognised since)."""
    pairs = session.exec(
        select(Pair)
        .join(ReviewItem, col(ReviewItem.pair_id) == col(Pair.id))
        .join(PairRedaction, col(PairRedaction.pair_id) == col(Pair.id))
        .where(
            col(ReviewItem.state).in_(("open", "leased")),
            PairRedaction.version != version,
        )
        .order_by(col(ReviewItem.priority).desc())
        .limit(limit)
    ).all()
    return list({p.id: p for p in pairs}.values())


def embed_missing(engine: Engine, limit: int = 64) -> int:
    """Embed up to ``limit`` queued pairs that have no embedding yet (likely-next first)."""
    global _embeddings_broken
    module = _embedding_module()
    if module is None:
        return 0
    with Session(engine) as session:
        unique = queued_pairs_without(session, PairEmbedding, limit)
    # The model (torch and the weights: seconds of CPU, hundreds of MB) loads only once there
    # is something to embed: a service whose queue stays empty never pays for it.
    if not unique or not _model_ready(module):
        return 0
    try:
        vectors = module.embed_texts([module.pair_text(p.prompt, p.response_a, p.response_b) for p in unique])
    except Exception:  # a missing model must not stop the queue: uncertainty order still works
        log.exception("embedding failed; review priority falls back to uncertainty order")
        _embeddings_broken = True
        return 0
    model = str(getattr(module, "EMBEDDING_MODEL_NAME", "sentence-transformers"))
    now = utcnow()
    rows = [
        {
            "pair_id": p.id,
            "model": model,
            "dim": int(np.asarray(v).shape[-1]),
            "vector": module.to_bytes(np.asarray(v)),
            "created_at": now,
        }
        for p, v in zip(unique, vectors, strict=True)
    ]
    with Session(engine) as session:
        insert_ignore(session, table_of(PairEmbedding), rows, ["pair_id"])
        session.commit()
    return len(rows)


def _hybrid_order(
    uncertainty: np.ndarray, embeddings: np.ndarray, k: int, weight: float, selected: np.ndarray | None
) -> list[int]:
    try:
        from calibration.priority import hybrid_order
    except ImportError:
        return [int(i) for i in np.argsort(-uncertainty, kind="stable")[:k]]
    order = hybrid_order(
        uncertainty, embeddings, k, uncertainty_weight=weight, already_selected_embeddings=selected
    )
    return [int(i) for i in order]


def reprioritize(engine: Engine, project_id: int, queue: str) -> int:
    """Re-rank the head of a queue by the hybrid order; returns how many items it placed.

    The hybrid order is mapped onto the sorted uncertainties of the same items, so items
    without an embedding yet still interleave with them by plain uncertainty.
    """
    module = _embedding_module()
    if module is None:
        return 0
    with Session(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            return 0
        weight = project.routing_settings().uncertainty_weight
        rows = session.execute(
            select(ReviewItem.id, ReviewItem.uncertainty, PairEmbedding.vector)
            .join(PairEmbedding, col(PairEmbedding.pair_id) == col(ReviewItem.pair_id))
            .where(
                ReviewItem.project_id == project_id,
                ReviewItem.queue == queue,
                ReviewItem.state == "open",
                ReviewItem.origin == "routing",
                col(ReviewItem.is_audit).is_(False),
            )
            .order_by(col(ReviewItem.uncertainty).desc(), col(ReviewItem.id))
            .limit(PRIORITY_POOL)
        ).all()
        if not rows:
            return 0
        # Diversity is measured against what reviewers already have (labelled or in hand).
        seen = session.execute(
            select(PairEmbedding.vector)
            .join(ReviewItem, col(ReviewItem.pair_id) == col(PairEmbedding.pair_id))
            .where(
                ReviewItem.project_id == project_id,
                ReviewItem.queue == queue,
                ReviewItem.labels_done + col(ReviewItem.leases_active) > 0,
            )
            .order_by(col(ReviewItem.updated_at).desc())
            .limit(SELECTED_HISTORY)
        ).scalars()
        selected = [module.from_bytes(v) for v in seen]
        u = np.array([r.uncertainty for r in rows], dtype=float)
        vectors = np.stack([module.from_bytes(r.vector) for r in rows])
        k = min(PRIORITY_TOP_K, len(rows))
        order = _hybrid_order(u, vectors, k, weight, np.stack(selected) if selected else None)
        top_u = np.sort(u)[::-1]
        now = utcnow()
        placed = {rows[i].id for i in order}
        updates = [
            # The small decreasing term keeps the hybrid order among equal uncertainties.
            {"b_id": rows[i].id, "b_priority": float(top_u[rank]) + (k - rank) * 1e-6, "b_sel": "hybrid"}
            for rank, i in enumerate(order)
        ]
        # Items the previous pass placed but this one did not go back to plain uncertainty.
        updates.extend(
            {"b_id": r.id, "b_priority": float(r.uncertainty), "b_sel": "uncertainty"}
            for r in session.execute(
                select(ReviewItem.id, ReviewItem.uncertainty).where(
                    ReviewItem.project_id == project_id,
                    ReviewItem.queue == queue,
                    ReviewItem.state == "open",
                    ReviewItem.selected_by == "hybrid",
                )
            ).all()
            if r.id not in placed
        )
        if updates:
            session.connection().execute(
                sa_update(ITEM)
                .where(_c.id == bindparam("b_id"), _c.state == "open")
                .values(priority=bindparam("b_priority"), selected_by=bindparam("b_sel"), updated_at=now),
                updates,
            )
        session.commit()
    return len(order)


@dataclass
class _PrepareState:
    last_label_id: int = -1
    last_backfill: float = float("-inf")


_prepare_state: dict[str, _PrepareState] = {}


_prepare_lock = threading.Lock()


def prepare_batch(engine: Engine, redact_limit: int = 256, embed_limit: int = 64) -> dict[str, int]:
    """One pass of the queue's background work; safe to call from any process, any time.

    Expires abandoned leases, redacts and embeds the next queued pairs, and re-ranks
    queues whose inputs changed. Keeps the request path free of model calls.
    """
    with _prepare_lock:  # one pass at a time per process: passes share the state below
        state = _prepare_state.setdefault(str(engine.url), _PrepareState())
        out = {"backfilled": 0, "expired": 0, "redacted": 0, "embedded": 0, "reprioritized": 0}
        if time.monotonic() - state.last_backfill > 60:
            out["backfilled"] = backfill(engine)
            state.last_backfill = time.monotonic()
        with Session(engine) as session:
            out["expired"] = expire_leases(session, utcnow())
            session.commit()
        with Session(engine, expire_on_commit=False) as session:
            pairs = queued_pairs_without(session, PairRedaction, redact_limit)
            if len(pairs) < redact_limit:
                pairs += queued_pairs_redacted_before(session, REDACTION_VERSION, redact_limit - len(pairs))
            if pairs:
                ensure_redactions(session, pairs)
                session.commit()
                out["redacted"] = len(pairs)
        out["embedded"] = embed_missing(engine, embed_limit)
        with Session(engine) as session:
            last_label = session.exec(select(func.coalesce(func.max(Label.id), 0))).one()
            queues = session.execute(
                select(ReviewItem.project_id, ReviewItem.queue)
                .where(ReviewItem.state == "open", ReviewItem.origin == "routing")
                .distinct()
            ).all()
        if out["embedded"] or last_label != state.last_label_id:
            for project_id, queue in queues:
                out["reprioritized"] += reprioritize(engine, project_id, queue)
            state.last_label_id = last_label
        return out


async def prepare_loop(engine: Engine, stop: asyncio.Event, interval_s: float = 2.0) -> None:
    """Run :func:`prepare_batch` until ``stop``; errors are logged, never fatal."""
    while not stop.is_set():
        try:
            result = await asyncio.to_thread(prepare_batch, engine)
            busy = result["redacted"] or result["embedded"]
        except Exception:
            log.exception("review queue preparation failed; retrying")
            busy = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.05 if busy else interval_s)
