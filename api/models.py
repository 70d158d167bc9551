"""Every table, in one file (Alembic's ``env.py`` imports this module and sees them all).

Pipeline: project, job, pair, judgment (every judge call: the call log), decision
(append-only routing history; ``pair.decision_id`` points at the current one), label (human
labels), calibrationversion (the gate's history). Review: reviewer, review_item,
review_lease, review_assignment, pair_redaction, redaction_mapping, pair_embedding.
Each class names the module(s) that write it. Request and response bodies are in
``api/schemas/``; schema changes go through Alembic migrations in ``api/migrations``.

Generated primary keys are typed ``int``, not ``int | None``: the id is None only between
creating a row and flushing it, and every reader holds a stored row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Table, Text, UniqueConstraint, inspect
from sqlmodel import Field, SQLModel, col

from api.schemas import AspectSettings, JudgeSpec, RoutingSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy ``Table`` of a table model, for Core statements (SQLModel sets
    ``Model.__table__`` at run time without declaring its type)."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    return table


def version_label(version: int | None) -> str:
    """What a decision records as its calibration version: "cal-<n>", or "routing-v0" before any."""
    return f"cal-{version}" if version is not None else "routing-v0"


# --- project -----------------------------------------------------------------------------


class Project(SQLModel, table=True):
    """A rubric, a judge panel and routing settings. Created by routes/projects.py; its panel
    and routing settings edited by api/calibrate/project_settings.py (audited, refitted)."""

    id: int = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, min_length=1, max_length=200)
    rubric: str | None = Field(default=None, sa_column=Column(Text))
    # Markdown for the project's reviewers (shown with the rubric on the review page).
    guidelines: str | None = Field(default=None, sa_column=Column(Text))
    prompt_version: str = "rubric-v1"
    allow_empty_responses: bool = False
    judges: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    routing: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # AspectSettings as JSON (issue 23); None: no aspects, one overall preference as before.
    aspects: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)

    def aspect_settings(self) -> AspectSettings:
        return AspectSettings.model_validate(self.aspects or {})

    def judge_specs(self) -> list[JudgeSpec]:
        return [JudgeSpec.model_validate(j) for j in self.judges]

    def routing_settings(self) -> RoutingSettings:
        return RoutingSettings.model_validate(self.routing)

    def cascade_stages(self) -> list[list[str]] | None:
        """The panel in cascade stages (cheapest first), or None when the project has no cascade."""
        from judge.costs import cascade_stages

        if not self.routing_settings().cascade:
            return None
        return cascade_stages((spec.model, spec.cost_rank) for spec in self.judge_specs())


# --- job ---------------------------------------------------------------------------------


class Job(SQLModel, table=True):
    """A batch of pairs as one request posted them. Written by api/ingest/store.py."""

    id: int = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    n_pairs: int = 0
    n_existing: int = 0
    created_at: datetime = Field(default_factory=utcnow)


# --- pair --------------------------------------------------------------------------------


class Pair(SQLModel, table=True):
    """One (prompt, response A, response B). Inserted by api/ingest/store.py; its lease by
    api/judging/claims.py; its state and current decision by api/routing/decisions.py."""

    __table_args__ = (
        UniqueConstraint("project_id", "client_id", name="uq_pair_project_client"),
        Index("ix_pair_claim", "state", "lease_expires_at"),
    )

    id: int = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    client_id: str = Field(max_length=512)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response_a: str = Field(sa_column=Column(Text, nullable=False))
    response_b: str = Field(sa_column=Column(Text, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    split: str = "train"
    content_hash: str = Field(max_length=64, index=True)
    state: str = "pending"
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    safety_flag: bool = False
    safety_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # judge.injection's findings (text in a response addressed to the judge): a hard flag when
    # not empty. Set with the safety check by the worker; '[]' for rows inserted without it.
    injection_reasons: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    decision_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    judged_at: datetime | None = None


# --- judgment: one row per judge call (or cache hit) -------------------------------------


class Judgment(SQLModel, table=True):
    """One judge call (or cache hit): the call log. Written by api/routing/decisions.py
    (with the decision made from it)."""

    __table_args__ = (Index("ix_judgment_cache_key", "content_hash", "judge_key", "order"),)

    id: int = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="pair.id", index=True)
    judge: str
    order: str
    # Five-point verdict in terms of the ORIGINAL response_a / response_b, or "invalid".
    verdict: str | None = None
    both_bad: bool = False
    safety_flag: bool = False
    confidence: float | None = None
    raw: str | None = Field(default=None, sa_column=Column(Text))
    prompt_version: str
    content_hash: str = Field(max_length=64)
    # judge.client.judge_key: the cache serves this verdict only to a call with the same key.
    # None on judgments stored before the key existed: never served from the cache.
    judge_key: str | None = Field(default=None, max_length=64)
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float = 0.0
    attempts: int = 1
    cached: bool = False
    error: str | None = Field(default=None, sa_column=Column(Text))
    # Per-aspect five-point verdicts (original A/B terms, "invalid" when unreadable) of a
    # project with aspects; None without aspects (issue 23).
    aspects: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    # Set when a retry (POST /v1/jobs/{id}/retry) asks this failed or invalid call again: the
    # row stays in the call log (its cost was paid) but no longer counts for routing,
    # calibration or results; the new call's row does.
    superseded_at: datetime | None = None

    @classmethod
    def is_current(cls) -> Any:
        """The SQL condition "not superseded by a retry": every reader of a pair's verdicts
        filters on it (the call log's totals, cost and calls, do not)."""
        return col(cls.superseded_at).is_(None)


# --- decision ----------------------------------------------------------------------------


class Decision(SQLModel, table=True):
    """Append-only routing history; ``pair.decision_id`` is the current one.
    Written by api/routing/decisions.py only."""

    id: int = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="pair.id", index=True)
    label: str | None = None
    chosen: str | None = None
    confidence: float | None = None
    route: str
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: str
    # Cascade projects: the stage (0 = cheapest) whose verdicts decided, and the judge calls
    # (one judge, one order) the pair did not need against the full panel.
    stage: int | None = None
    judge_calls_saved: int = 0
    # Per aspect (projects with aspects): the panel's label and side on it, and why it does
    # not clear when it does not (api.routing.route.aspect_outcomes). None without aspects.
    aspects: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


# --- human labels (import, review, audit, gold) ------------------------------------------


class Label(SQLModel, table=True):
    """A human label. Imported by api/ingest/store.py; given in review by review/submit.py."""

    __table_args__ = (UniqueConstraint("project_id", "idempotency_key", name="uq_label_idempotency"),)

    id: int = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    pair_id: int = Field(foreign_key="pair.id", index=True)
    label: str  # five-point, original A/B terms
    both_bad: bool = False
    safety_flag: bool = False
    rationale: str | None = Field(default=None, sa_column=Column(Text))
    # Per-aspect five-point labels (original A/B terms) on a project with aspects; None: none given.
    aspects: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    source: str = Field(index=True)
    annotator: str
    idempotency_key: str = Field(max_length=512)
    time_on_task_s: float | None = None
    prelabel_shown: bool | None = None
    redaction_version: str | None = None
    # Append-only: an edit writes a new label and points the old one at it. Only labels with
    # superseded_by_id None are current; the others are kept as history.
    superseded_by_id: int | None = Field(default=None, foreign_key="label.id")
    # Held back from calibration and export until an admin releases them (a paused reviewer's
    # labels since their last good check), and labels given faster than the minimum reading time.
    quarantined: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    speed_flagged: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow)


# --- calibration versions (the gate's history) -------------------------------------------


class CalibrationVersion(SQLModel, table=True):
    """The gate's history (refits, kill-switch closures). Written by api/calibrate/refits.py;
    kill-switch closures by api/calibrate/kill_switch.py."""

    # One number per version: "the latest version" must mean the same row to every reader.
    __table_args__ = (
        UniqueConstraint("project_id", "version", name="uq_calibrationversion_project_version"),
    )

    id: int = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    version: int
    created_at: datetime = Field(default_factory=utcnow)
    trigger: str  # refit | auto | drift | shift | manual | settings (a panel or routing edit)
    open: bool = False
    reason: str = Field(sa_column=Column(Text, nullable=False))
    threshold: float | None = None
    guaranteed_agreement: float | None = None
    expected_coverage: float | None = None
    n_labels: int = 0
    label_sources: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The fitted gate (calibrator + threshold) as JSON; None when no model could be fitted.
    model: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The label-free shift detector over the pairs decided while this version is open
    # (calibration.shift.ShiftDetector state and the stream cursor). Unlike the rest of the row
    # it changes after the version is stored: api/calibrate/refits.py's check_shift updates it.
    shift: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


# --- reviewers and the review queue ----------------------------------------------------


class Reviewer(SQLModel, table=True):
    """A reviewer account; only a hash of its token is kept. Written by review/reviewers.py."""

    __tablename__ = "reviewer"

    id: int = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, min_length=1, max_length=200)
    token_hash: str = Field(max_length=64, index=True, unique=True)
    active: bool = True
    # A senior reviewer also adjudicates disputed pairs (api/review/adjudication.py).
    senior: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow)


class ReviewerProject(SQLModel, table=True):
    """A reviewer's assignment to a project: the only projects whose queues, progress and
    dashboards the reviewer may use. Written by review/reviewers.py."""

    __tablename__ = "reviewer_project"

    reviewer_id: int = Field(foreign_key="reviewer.id", primary_key=True)
    project_id: int = Field(foreign_key="project.id", primary_key=True, index=True)


class ApiKey(SQLModel, table=True):
    """A project client's API key; only its SHA-256 is kept (the key is shown once). Written
    by api/keys.py."""

    __tablename__ = "api_key"

    id: int = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(min_length=1, max_length=200)
    prefix: str = Field(max_length=16)  # the key's first characters, to tell keys apart in lists
    key_hash: str = Field(max_length=64, index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ReviewItem(SQLModel, table=True):
    """A pair waiting in a review queue. Written by review/ (queue.py, submit.py, prepare.py)."""

    __tablename__ = "review_item"
    __table_args__ = (
        UniqueConstraint("pair_id", "queue", name="uq_review_item_pair_queue"),
        # The next-item scan: equality on project, queue and state, then priority order.
        Index("ix_review_item_next", "project_id", "queue", "state", "priority", "id"),
    )

    id: int = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    pair_id: int = Field(foreign_key="pair.id", index=True)
    queue: str  # review | incident
    origin: str = "routing"  # routing | escalation (a reviewer's safety flag)
    decision_id: int | None = None
    # open: a slot is free | leased: all free slots are leased | done | stale (re-routed away)
    state: str = "open"
    labels_needed: int = 1
    labels_done: int = 0
    leases_active: int = 0
    uncertainty: float = 1.0
    priority: float = 0.0
    selected_by: str = "uncertainty"  # uncertainty | hybrid | audit | escalation
    is_audit: bool = False
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ReviewLease(SQLModel, table=True):
    """One reviewer's hold on one slot of an item. Written by review/queue.py and review/submit.py."""

    __tablename__ = "review_lease"
    __table_args__ = (
        UniqueConstraint("item_id", "reviewer_id", name="uq_review_lease_item_reviewer"),
        Index("ix_review_lease_expiry", "state", "expires_at"),
        Index("ix_review_lease_reviewer", "reviewer_id", "state"),
    )

    id: int = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="review_item.id")
    project_id: int = Field(foreign_key="project.id", index=True)
    pair_id: int = Field(foreign_key="pair.id")
    reviewer_id: int = Field(foreign_key="reviewer.id")
    queue: str
    state: str = "active"  # active | submitted | skipped | expired
    decision_id: int | None = None  # the decision whose pre-label the reviewer could see
    prelabel_shown: bool = False
    redaction_version: str | None = None
    leased_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    finished_at: datetime | None = None
    skip_reason: str | None = Field(default=None, sa_column=Column(Text))
    label_id: int | None = None


class ReviewAssignment(SQLModel, table=True):
    """A lead's assignment of a waiting item to one reviewer: that reviewer is served it before
    the priority order, and nobody else is while the assignment stands (api/review/assignments.py
    says when it does). One assignee per item. Written by review/assignments.py only."""

    __tablename__ = "review_assignment"
    __table_args__ = (Index("ix_review_assignment_reviewer", "project_id", "reviewer_id"),)

    item_id: int = Field(
        foreign_key="review_item.id", primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    project_id: int = Field(foreign_key="project.id")
    reviewer_id: int = Field(foreign_key="reviewer.id")
    assigned_by: str = Field(max_length=200)  # "admin" or "reviewer:<id>"
    created_at: datetime = Field(default_factory=utcnow)


class PairRedaction(SQLModel, table=True):
    """What reviewers see: the pair with PII replaced by per-pair tokens. Written by review/queue.py."""

    __tablename__ = "pair_redaction"

    pair_id: int = Field(foreign_key="pair.id", primary_key=True)
    version: str
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response_a: str = Field(sa_column=Column(Text, nullable=False))
    response_b: str = Field(sa_column=Column(Text, nullable=False))
    n_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class RedactionMapping(SQLModel, table=True):
    """Token -> original text, kept apart from what reviewers read: admins only. Written by
    review/queue.py."""

    __tablename__ = "redaction_mapping"

    pair_id: int = Field(foreign_key="pair.id", primary_key=True)
    version: str
    mapping: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class PairEmbedding(SQLModel, table=True):
    """A MiniLM embedding of a queued pair, for the hybrid priority. Written by review/prepare.py."""

    __tablename__ = "pair_embedding"

    pair_id: int = Field(foreign_key="pair.id", primary_key=True)
    model: str
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


# --- reviewer quality: honeypots and pauses -------------------------------------------


class Honeypot(SQLModel, table=True):
    """A pair with a known answer, served to reviewers to check them (api/review/quality.py
    grades their answers). Written by api/ingest/store.py (gold labels imported with honeypot=true)."""

    __tablename__ = "honeypot"

    pair_id: int = Field(foreign_key="pair.id", primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    label: str  # the known answer, five-point, in the pair's original A/B terms
    # Known per-aspect answers, when the gold label that made the honeypot carried them.
    aspects: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class ReviewerStatus(SQLModel, table=True):
    """A reviewer's standing on a project: paused or not, and from which label their answers
    are checked. Written by review/quality.py."""

    __tablename__ = "reviewer_status"

    reviewer_id: int = Field(foreign_key="reviewer.id", primary_key=True)
    project_id: int = Field(foreign_key="project.id", primary_key=True, index=True)
    paused: bool = False
    paused_at: datetime | None = None
    paused_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The sequential test reads only labels with a larger id (it starts over after a resume).
    checked_after_label_id: int = 0
    resumed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


# --- audit log (tamper-evident, append-only) -------------------------------------------


class AuditEvent(SQLModel, table=True):
    """One event of the audit log; ``hash`` covers the row and ``prev_hash``, the hash of the
    event before it (seq - 1), so an edited, deleted or reordered row breaks the chain.
    Written by api/audit.py only (rows are never updated or deleted)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        # Two appends can never take the same place in the chain (a fork).
        UniqueConstraint("seq", name="uq_audit_event_seq"),
        Index("ix_audit_event_project_seq", "project_id", "seq"),
    )

    id: int = Field(default=None, primary_key=True)
    seq: int
    created_at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=40)
    # No foreign key: the log outlives what it talks about.
    project_id: int | None = None
    subject: str = Field(max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The audit log's last seq and hash: one row (id 1) that every append updates first, so
    appends from any number of processes take turns. Written by api/audit.py only."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    hash: str = Field(max_length=64)


# --- exports (immutable dataset snapshots) -----------------------------------------------


class Export(SQLModel, table=True):
    """One dataset export: numbered per project, never changed once written (its files and
    manifest are the snapshot ``prelabel export diff`` compares). Written by api/export/snapshots.py."""

    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_export_project_number"),)

    id: int = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    number: int
    format: str = Field(max_length=20)  # dpo | hf | label-studio | argilla
    # The directory holding the export's files (data, manifest.json, README.md, rows.sha256).
    path: str = Field(sa_column=Column(Text, nullable=False))
    filters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    manifest: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rows: int = 0
    forced: bool = False
    force_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
