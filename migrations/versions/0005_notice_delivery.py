"""notice delivery: attempts, the next attempt (lease and back-off), the gateway's message id,
sent and delivered times, the last error; statuses queued / sent / delivered / failed

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("provider_message_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch_op.create_index("ix_notices_status", ["status"])
        batch_op.create_index("ix_notices_provider_message_id", ["provider_message_id"])
    op.execute("UPDATE notices SET status = 'queued' WHERE status = 'pending'")


def downgrade() -> None:
    op.execute("UPDATE notices SET status = 'pending' WHERE status = 'queued'")
    with op.batch_alter_table("notices") as batch_op:
        batch_op.drop_index("ix_notices_provider_message_id")
        batch_op.drop_index("ix_notices_status")
        batch_op.drop_column("last_error")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("provider_message_id")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
