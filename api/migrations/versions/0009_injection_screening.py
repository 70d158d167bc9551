"""pairs carry the prompt-injection screen's findings

``pair.injection_reasons`` (JSON list, default ``[]``): what ``judge.injection`` found in the
pair's responses (text addressed to the judge). Not empty means the hard flag
``injection_suspected``: the pair is reviewed, never auto-accepted. Pairs stored before get
``[]``: the worker screens a pair when it judges it, so pairs judged before this revision stay
unscreened (a re-route reads the stored findings) until they are judged again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pair", schema=None) as batch_op:
        batch_op.add_column(sa.Column("injection_reasons", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("pair", schema=None) as batch_op:
        batch_op.drop_column("injection_reasons")
