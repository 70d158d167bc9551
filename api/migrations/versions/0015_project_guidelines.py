"""project guidelines for reviewers

``project.guidelines``: markdown an admin writes for the project's reviewers (what to look for,
worked examples, edge cases); the review page shows it with the rubric.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guidelines", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not a batch: on SQLite a batch copies and drops the project table, which others point at.
    op.drop_column("project", "guidelines")
