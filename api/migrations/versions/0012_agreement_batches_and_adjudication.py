"""senior reviewers adjudicate disputed pairs

``reviewer.senior``: a senior reviewer is also served the adjudication queue (review items
with queue "adjudication": disputed pairs of a batch whose agreement is below the project's
threshold). Batches, agreement and the adjudicated label source need no other schema change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reviewer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("senior", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch would copy and drop the
    # reviewer table, which other tables' foreign keys point at.
    op.drop_column("reviewer", "senior")
