"""reviewer quality: honeypots and pauses

``honeypot``: pairs with a known answer (a gold label imported with ``honeypot: true``), mixed
into reviewers' review queues; their answers are graded against it. ``reviewer_status``: a
reviewer's standing on a project (paused by the sequential quality test, why, and from which
label their answers are checked again after a resume).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "honeypot",
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("pair_id"),
    )
    op.create_index("ix_honeypot_project_id", "honeypot", ["project_id"])
    op.create_table(
        "reviewer_status",
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("checked_after_label_id", sa.Integer(), nullable=False),
        sa.Column("resumed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewer.id"]),
        sa.PrimaryKeyConstraint("reviewer_id", "project_id"),
    )
    op.create_index("ix_reviewer_status_project_id", "reviewer_status", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_reviewer_status_project_id", table_name="reviewer_status")
    op.drop_table("reviewer_status")
    op.drop_index("ix_honeypot_project_id", table_name="honeypot")
    op.drop_table("honeypot")
