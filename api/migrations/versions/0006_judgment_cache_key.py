"""judgment cache keyed on everything that changes a judge's answer

The cache matched on (content hash, judge, prompt version, order) and ignored the endpoint,
the rubric and the call parameters: a project whose replay judge pointed at another file (or
that used another rubric) was served verdicts made under different conditions. Judgments now
carry ``judge_key`` (judge.client.judge_key); the ones stored before have none and are never
served from the cache.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("judgment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("judge_key", sa.String(length=64), nullable=True))
        batch_op.drop_index("ix_judgment_cache")
        batch_op.create_index("ix_judgment_cache_key", ["content_hash", "judge_key", "order"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("judgment", schema=None) as batch_op:
        batch_op.drop_index("ix_judgment_cache_key")
        batch_op.create_index(
            "ix_judgment_cache", ["content_hash", "judge", "prompt_version", "order"], unique=False
        )
        batch_op.drop_column("judge_key")
