"""aspects: separate preference questions per project (issue 23)

Nullable JSON columns, NULL meaning "no aspects" (every row of before): ``project.aspects``
(the aspect settings), ``judgment.aspects`` (a judge's per-aspect verdicts), ``decision.aspects``
(the panel's per-aspect outcome), ``label.aspects`` (a human's per-aspect labels) and
``honeypot.aspects`` (known per-aspect answers).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("project", "judgment", "decision", "label", "honeypot")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("aspects", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Not a batch: on SQLite a batch copies and drops the table (see 0015).
    for table in reversed(TABLES):
        op.drop_column(table, "aspects")
