"""a task row names the workflow that decides it when that is not the loan's own (a collections
episode, a reconciliation run)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("workflow_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE tasks DROP COLUMN workflow_id")
