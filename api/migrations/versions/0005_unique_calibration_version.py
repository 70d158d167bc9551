"""one number per calibration version and project

Concurrent refits could store the same version number twice; readers then disagreed on which
version is the latest. Existing duplicates are renumbered in the order they were stored.
Decisions keep the version name they were stored with (two duplicates shared one name); the
next refit re-routes every judged pair under a fresh, unambiguous name.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, project_id, version FROM calibrationversion ORDER BY project_id, id")
    ).all()
    highest: dict[int, int] = {}
    for row_id, project_id, version in rows:
        if version <= highest.get(project_id, 0):
            version = highest[project_id] + 1
            connection.execute(
                sa.text("UPDATE calibrationversion SET version = :v WHERE id = :id"),
                {"v": version, "id": row_id},
            )
        highest[project_id] = version
    with op.batch_alter_table("calibrationversion", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_calibrationversion_project_version", ["project_id", "version"])


def downgrade() -> None:
    with op.batch_alter_table("calibrationversion", schema=None) as batch_op:
        batch_op.drop_constraint("uq_calibrationversion_project_version", type_="unique")
