"""calibration versions carry the label-free shift detector's state

``calibration_version.shift`` (JSON, nullable): the state of ``calibration.shift.ShiftDetector``
over the pairs decided while the version is open, and the cursor of the last decision it read.
Versions stored before have none; the detector starts on the next maintenance pass.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calibrationversion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shift", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calibrationversion", schema=None) as batch_op:
        batch_op.drop_column("shift")
