"""review assignments

``review_assignment``: a senior reviewer's (or the admin's) assignment of a waiting review item
to one reviewer of the project, who is served it before the priority order; nobody else is
while it stands (api/review/assignments.py). One row per item: its current assignee.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_assignment",
        sa.Column("item_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("assigned_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["review_item.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewer.id"]),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_index("ix_review_assignment_reviewer", "review_assignment", ["project_id", "reviewer_id"])


def downgrade() -> None:
    op.drop_index("ix_review_assignment_reviewer", table_name="review_assignment")
    op.drop_table("review_assignment")
