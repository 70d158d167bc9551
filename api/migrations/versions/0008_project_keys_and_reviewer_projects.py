"""project API keys and reviewer-to-project assignments

``api_key``: a project client's key (SHA-256 only, revocable). ``reviewer_project``: which
projects a reviewer may work on. Reviewers stored before have no assignment: an admin
assigns them (``PUT /v1/reviewers/{id}/projects``) before they see any queue.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_key_project_id", "api_key", ["project_id"])
    op.create_index("ix_api_key_key_hash", "api_key", ["key_hash"], unique=True)
    op.create_table(
        "reviewer_project",
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewer.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("reviewer_id", "project_id"),
    )
    op.create_index("ix_reviewer_project_project_id", "reviewer_project", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_reviewer_project_project_id", table_name="reviewer_project")
    op.drop_table("reviewer_project")
    op.drop_index("ix_api_key_key_hash", table_name="api_key")
    op.drop_index("ix_api_key_project_id", table_name="api_key")
    op.drop_table("api_key")
