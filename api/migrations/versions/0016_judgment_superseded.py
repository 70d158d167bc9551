"""judgments superseded by a retry

``judgment.superseded_at``: set when ``POST /v1/jobs/{id}/retry`` asks a failed or invalid
judge call again. The row stays in the call log (cost, calls) but routing, calibration and
results read only the current rows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("judgment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Not a batch: on SQLite a batch copies and drops the table (see 0015).
    op.drop_column("judgment", "superseded_at")
