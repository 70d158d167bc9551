"""labels are append-only and carry reviewer-quality flags

``label.superseded_by_id``: an edited label points at the label that replaced it (only labels
with none are current). ``label.quarantined``: held back from calibration and export (a paused
reviewer's labels) until released. ``label.speed_flagged``: given faster than the minimum
reading time; never calibrates.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("quarantined", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(
            sa.Column("speed_flagged", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_foreign_key("fk_label_superseded_by_id", "label", ["superseded_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.drop_constraint("fk_label_superseded_by_id", type_="foreignkey")
        batch_op.drop_column("speed_flagged")
        batch_op.drop_column("quarantined")
        batch_op.drop_column("superseded_by_id")
