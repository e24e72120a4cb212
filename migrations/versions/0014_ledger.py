"""payment reversals (payments.reversed_*) and settled loans' document archives (loan_archives)

Revision ID: 0014_ledger
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_ledger"
down_revision: str | None = "0014_payout"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reversed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reversal_requested_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reversal_reason", sa.String(length=500), nullable=True))
    op.create_table(
        "loan_archives",
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_on", sa.Date(), nullable=False),
        sa.Column("retain_until", sa.Date(), nullable=False),
        sa.Column("document_count", sa.Integer(), nullable=False),
        sa.Column("intact", sa.Boolean(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("bundle_key", sa.String(length=100), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("bundle_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("application_no"),
    )


def downgrade() -> None:
    op.drop_table("loan_archives")
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("reversal_reason")
        batch_op.drop_column("reversal_requested_by")
        batch_op.drop_column("reversed_by")
        batch_op.drop_column("reversed_at")
