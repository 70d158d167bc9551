"""A project's final rows, streamed from the database in chunks (memory stays flat).

Each :class:`ExportRow` is one pair with its text, its current decision, its final label
(:mod:`api.export.final_labels`) and the human labels behind it. Writers take an iterator
of rows and :class:`RowHashes`, which records a sha256 per written row in ``rows.sha256``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Text, func, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.db import chunks
from api.export.final_labels import AUTO, HUMAN, DecisionView, FinalLabel, final_aspects
from api.export.results import label_context
from api.models import Decision, Label, Pair, Project
from api.review.human_labels import HumanLabel, aspect_answers, human_label_per_pair
from api.schemas import Aspect
from api.vocab import Reason

CHUNK = 2000


@dataclass(frozen=True)
class HumanAnswer:
    """One human label behind a final label."""

    label_id: int
    label: str
    annotator: str
    source: str
    both_bad: bool
    safety_flag: bool
    created_at: str
    aspects: dict[str, str] | None = None  # the human's per-aspect labels (issue 23)


@dataclass(slots=True)
class ExportRow:
    """One pair as an export sees it (not frozen: built per row, and a frozen dataclass's
    ``__init__`` is several times slower)."""

    pair_id: int
    client_id: str
    job_id: int
    split: str
    prompt: str
    response_a: str
    response_b: str
    # The pair's metadata and the decision's reasons as stored: JSON text on SQLite (decoded
    # only when a writer asks, see below), already decoded on PostgreSQL.
    stored_metadata: Any
    route: str | None
    stored_reasons: Any
    judge_label: str | None
    judge_confidence: float | None
    decision_version: str | None
    final: FinalLabel
    humans: tuple[HumanAnswer, ...] = field(default=())
    precheck_safety: bool = False
    # Projects with aspects: each aspect's final label, source and side
    # (api.export.final_labels.final_aspects); None without aspects.
    aspects: dict[str, dict[str, str | None]] | None = None
    judge_aspects: dict[str, str | None] | None = None  # the panel's label per aspect

    @property
    def metadata(self) -> dict[str, Any]:
        return _decoded(self.stored_metadata) or {}

    @property
    def metadata_json(self) -> str:
        """The pair's metadata as JSON text (as stored, when it is stored as text)."""
        if isinstance(self.stored_metadata, str):
            return self.stored_metadata
        return json.dumps(self.stored_metadata or {}, sort_keys=True, ensure_ascii=False)

    @property
    def reasons(self) -> list[str]:
        return _decoded(self.stored_reasons) or []

    @property
    def both_bad(self) -> bool:
        """A human said neither response is acceptable."""
        return any(h.both_bad for h in self.humans)

    @property
    def safety_incident(self) -> bool:
        """Flagged for safety: by the pre-check, a judge, a reviewer's escalation or a human label."""
        return (
            self.precheck_safety or self._reasons_mention_safety() or any(h.safety_flag for h in self.humans)
        )

    def _reasons_mention_safety(self) -> bool:
        # Most rows carry no safety reason: skip decoding their JSON when the word is absent.
        if isinstance(self.stored_reasons, str) and "safety" not in self.stored_reasons:
            return False
        reasons = self.reasons
        return Reason.SAFETY_FLAG in reasons or Reason.REVIEWER_SAFETY_FLAG in reasons


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class DatasetDescription:
    """What a format may say about the dataset as a whole (Argilla's dataset settings)."""

    name: str
    guidelines: str | None = None
    # The project's aspects (issue 23): a question each in Label Studio and Argilla, a column
    # each in HF; and what a DPO pair prefers: "overall" (the final label), "weighted" (the
    # aspects' final labels combined with their weights) or an aspect's name.
    aspects: tuple[Aspect, ...] = ()
    dpo_by: str = "overall"


@dataclass(frozen=True)
class RowFilter:
    """Which pairs an export takes: a split ("all" for every split) and the least label source
    ("human": human labels only; "auto": any final label; None: every pair, labelled or not)."""

    split: str = "train"
    min_source: str | None = None

    def takes(self, final: FinalLabel) -> bool:
        if self.min_source == HUMAN:
            return final.source == HUMAN
        if self.min_source == AUTO:
            return final.source in (HUMAN, AUTO)
        return True


def iter_rows(
    engine: Engine, project: Project, row_filter: RowFilter, *, skip: frozenset[int] = frozenset()
) -> Iterator[ExportRow]:
    """The project's pairs that pass ``row_filter`` (minus ``skip``), in pair-id order.

    Human labels are aggregated once for the whole project (an aggregate such as Dawid–Skene
    reads every label), then pairs are read ``CHUNK`` ids at a time. (Reading a chunk's
    decisions first and the text of the taken pairs only measured no faster.)
    """
    names = project.aspect_settings().names
    with Session(engine) as session:
        context = label_context(session, project)
        humans = human_label_per_pair(session, project.id)
        by_aspect = aspect_answers(session, project.id, names) if names else {}
        # SQLAlchemy's select: sqlmodel's is typed for at most four columns. Labelled columns:
        # rows are read by name (``row.route``), not by position.
        query: Any = sa_select(  # typed for a few columns only: mypy infers Never past them
            col(Pair.id).label("pair_id"),
            col(Pair.client_id),
            col(Pair.job_id),
            col(Pair.split),
            col(Pair.prompt),
            col(Pair.response_a),
            col(Pair.response_b),
            type_coerce(col(Pair.meta), Text).label("meta"),  # decoded lazily (ExportRow.metadata)
            col(Pair.safety_flag),
            col(Decision.route),
            type_coerce(col(Decision.reasons), Text).label("reasons"),
            col(Decision.label),
            col(Decision.chosen),
            col(Decision.confidence),
            col(Decision.version),
            col(Decision.stage),
            type_coerce(col(Decision.aspects), Text).label("aspects"),
        ).join(Decision, col(Decision.id) == Pair.decision_id, isouter=True)
        query = query.where(col(Pair.project_id) == project.id)
        if row_filter.split != "all":
            query = query.where(col(Pair.split) == row_filter.split)
        # Core rows, not ORM: the ORM's per-row bookkeeping cost more than the export itself.
        connection = session.connection()
        for low, high in _id_windows(session, project):
            window = query.where(col(Pair.id) > low, col(Pair.id) <= high).order_by(col(Pair.id))
            batch = connection.execute(window).all()
            finals: list[tuple[Any, FinalLabel]] = []
            for row in batch:
                if row.pair_id in skip:
                    continue
                view = (
                    DecisionView(row.route, row.label, row.chosen, row.confidence, row.version, row.stage)
                    if row.route is not None
                    else None
                )
                final = context.final(view, humans.get(row.pair_id))
                if row_filter.takes(final):
                    finals.append((row, final))
            answers = _answers(session, [i for _, f in finals for i in f.label_ids])
            for row, final in finals:
                export_row = ExportRow(
                    pair_id=row.pair_id,
                    client_id=row.client_id,
                    job_id=row.job_id,
                    split=row.split,
                    prompt=row.prompt,
                    response_a=row.response_a,
                    response_b=row.response_b,
                    stored_metadata=row.meta,
                    route=row.route,
                    stored_reasons=row.reasons,
                    judge_label=row.label,
                    judge_confidence=row.confidence,
                    decision_version=row.version,
                    final=final,
                    humans=tuple(answers[i] for i in final.label_ids if i in answers),
                    precheck_safety=bool(row.safety_flag),
                )
                if names:
                    _add_aspects(export_row, _decoded(row.aspects), by_aspect)
                yield export_row


def _add_aspects(
    row: ExportRow, panel: dict[str, Any] | None, by_aspect: dict[str, dict[int, HumanLabel]]
) -> None:
    """A project's aspects on an export row: each aspect's final label (the human answer on it,
    else the panel's on an auto-accepted pair) and the panel's label on it."""
    row.aspects = final_aspects(
        row.final, panel, {name: found.get(row.pair_id) for name, found in by_aspect.items()}
    )
    row.judge_aspects = {name: outcome.get("label") for name, outcome in (panel or {}).items()}


def _id_windows(session: Session, project: Project) -> Iterator[tuple[int, int]]:
    """(low, high] windows of ``CHUNK`` pair ids covering the project's pairs: each chunk is a
    primary-key range scan (``id > cursor ORDER BY id LIMIT n`` made SQLite sort every
    remaining pair of the project again for each chunk)."""
    low, high = session.exec(
        select(func.min(Pair.id), func.max(Pair.id)).where(Pair.project_id == project.id)
    ).one()
    if low is None:
        return
    for start in range(low - 1, high, CHUNK):
        yield start, min(start + CHUNK, high)


def _answers(session: Session, label_ids: list[int]) -> dict[int, HumanAnswer]:
    found: dict[int, HumanAnswer] = {}
    query = sa_select(  # SQLAlchemy's: sqlmodel's select is typed for at most four columns
        col(Label.id),
        col(Label.label),
        col(Label.annotator),
        col(Label.source),
        col(Label.both_bad),
        col(Label.safety_flag),
        col(Label.created_at),
        col(Label.aspects),
    )
    for part in chunks(label_ids):
        for lid, label, annotator, source, both_bad, safety, created, aspects in session.execute(
            query.where(col(Label.id).in_(part))
        ):
            found[lid] = HumanAnswer(
                lid, label, annotator, source, both_bad, safety, created.isoformat(), _decoded(aspects)
            )
    return found


def train_prompts(engine: Engine, project: Project) -> tuple[list[tuple[int, str]], list[str]]:
    """(pair id, prompt) of the project's train pairs, and the prompts of its frozen_eval pairs:
    what the leakage gate compares."""
    train: list[tuple[int, str]] = []
    frozen: list[str] = []
    with Session(engine) as session:
        query = select(Pair.id, Pair.split, Pair.prompt).where(Pair.project_id == project.id)
        connection = session.connection()
        for low, high in _id_windows(session, project):
            window = query.where(col(Pair.id) > low, col(Pair.id) <= high)
            for pid, split, prompt in connection.execute(window).all():
                if split == "frozen_eval":
                    frozen.append(prompt)
                else:
                    train.append((pid, prompt))
    return train, frozen


def read_json_lines(
    path: Path, pick: Callable[[dict[str, Any]], tuple[int, str | None]]
) -> Iterator[tuple[int, str | None]]:
    """``pick`` of each row of a JSON-lines file, or of a JSON list written one element per line
    (what :func:`api.export.manifest.write_json_list` writes): how a format reads its labels back."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip().lstrip("[").rstrip(",").rstrip("]").strip()
            if line:
                yield pick(json.loads(line))


# --- row hashes ----------------------------------------------------------------------------


def canonical(record: dict[str, Any]) -> bytes:
    """A record as compact UTF-8 JSON, keys in the order the writer built them: what a row's
    sha256 is taken of. JSON-lines exports write each row exactly like this, so a line's
    sha256 is its row hash."""
    try:
        return orjson.dumps(record)  # several times faster than json: exports write 10^5 rows
    except TypeError:  # what orjson refuses (an integer beyond 64 bits) json still writes
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sha256_text(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RowHashes:
    """Writes ``<pair id>\\t<sha256>`` per exported row, in row order (``rows.sha256``)."""

    FILE = "rows.sha256"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.FILE
        self._handle: IO[str] = self.path.open("w", encoding="utf-8")
        self.count = 0

    def add(self, pair_id: int, data: bytes) -> None:
        self._handle.write(f"{pair_id}\t{hashlib.sha256(data).hexdigest()}\n")
        self.count += 1

    def close(self) -> None:
        self._handle.close()
