"""refunds: a settled loan's credit refunded through maker-checker tasks and one bank order

Revision ID: 0016_refund
Revises: 0015_hardening
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_refund"
down_revision: str | None = "0015_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("application_no", sa.String(length=32), primary_key=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payee_account", sa.Text(), nullable=True),
        sa.Column("payee_name", sa.Text(), nullable=True),
        sa.Column("order_key", sa.String(length=100), nullable=True),
        sa.Column("made_by", sa.String(length=64), nullable=True),
        sa.Column("checked_by", sa.String(length=64), nullable=True),
        sa.Column("bank_order_id", sa.String(length=64), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_refunds_status", "refunds", ["status"])


def downgrade() -> None:
    op.drop_index("ix_refunds_status", table_name="refunds")
    op.drop_table("refunds")
