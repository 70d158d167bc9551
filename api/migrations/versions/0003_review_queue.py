"""review queue: reviewers, items, leases, redactions, embeddings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 06:00:00

Written by hand: when it was written these tables lived outside api/models.py, where env.py
could not see them. They are in api/models.py now (tests/test_layering.py checks that an
autogenerate against a migrated database proposes no change).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime
STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "reviewer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", STR(length=200), nullable=False),
        sa.Column("token_hash", STR(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reviewer_name", "reviewer", ["name"], unique=True)
    op.create_index("ix_reviewer_token_hash", "reviewer", ["token_hash"], unique=True)

    op.create_table(
        "review_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("queue", STR(), nullable=False),
        sa.Column("origin", STR(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("state", STR(), nullable=False),
        sa.Column("labels_needed", sa.Integer(), nullable=False),
        sa.Column("labels_done", sa.Integer(), nullable=False),
        sa.Column("leases_active", sa.Integer(), nullable=False),
        sa.Column("uncertainty", sa.Float(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("selected_by", STR(), nullable=False),
        sa.Column("is_audit", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pair_id", "queue", name="uq_review_item_pair_queue"),
    )
    op.create_index("ix_review_item_pair_id", "review_item", ["pair_id"])
    op.create_index("ix_review_item_next", "review_item", ["project_id", "queue", "state", "priority", "id"])

    op.create_table(
        "review_lease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("queue", STR(), nullable=False),
        sa.Column("state", STR(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("prelabel_shown", sa.Boolean(), nullable=False),
        sa.Column("redaction_version", STR(), nullable=True),
        sa.Column("leased_at", UTC(), nullable=False),
        sa.Column("expires_at", UTC(), nullable=False),
        sa.Column("finished_at", UTC(), nullable=True),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["review_item.id"]),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "reviewer_id", name="uq_review_lease_item_reviewer"),
    )
    op.create_index("ix_review_lease_project_id", "review_lease", ["project_id"])
    op.create_index("ix_review_lease_expiry", "review_lease", ["state", "expires_at"])
    op.create_index("ix_review_lease_reviewer", "review_lease", ["reviewer_id", "state"])

    op.create_table(
        "pair_redaction",
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("version", STR(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("response_a", sa.Text(), nullable=False),
        sa.Column("response_b", sa.Text(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"]),
        sa.PrimaryKeyConstraint("pair_id"),
    )
    op.create_table(
        "redaction_mapping",
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("version", STR(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"]),
        sa.PrimaryKeyConstraint("pair_id"),
    )
    op.create_table(
        "pair_embedding",
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("model", STR(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"]),
        sa.PrimaryKeyConstraint("pair_id"),
    )


def downgrade() -> None:
    op.drop_table("pair_embedding")
    op.drop_table("redaction_mapping")
    op.drop_table("pair_redaction")
    op.drop_index("ix_review_lease_reviewer", table_name="review_lease")
    op.drop_index("ix_review_lease_expiry", table_name="review_lease")
    op.drop_index("ix_review_lease_project_id", table_name="review_lease")
    op.drop_table("review_lease")
    op.drop_index("ix_review_item_next", table_name="review_item")
    op.drop_index("ix_review_item_pair_id", table_name="review_item")
    op.drop_table("review_item")
    op.drop_index("ix_reviewer_token_hash", table_name="reviewer")
    op.drop_index("ix_reviewer_name", table_name="reviewer")
    op.drop_table("reviewer")
