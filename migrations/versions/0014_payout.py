"""payouts through the bank: each attempt's pre-check list and bank order (payouts), the
contract's payee account, the disbursement's bank order and value date

Revision ID: 0014_payout
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_payout"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("order_key", sa.String(length=100), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payee_account", sa.String(length=32), nullable=False),
        sa.Column("payee_name", sa.String(length=128), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("authorized_by", sa.JSON(), nullable=False),
        sa.Column("bank_order_id", sa.String(length=64), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_key"),
    )
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.create_index("ix_payouts_application_no", ["application_no"])
        batch_op.create_index("ix_payouts_status", ["status"])
    op.add_column("documents", sa.Column("payee_account", sa.String(length=32), nullable=True))
    op.add_column("disbursements", sa.Column("bank_order_id", sa.String(length=64), nullable=True))
    op.add_column("disbursements", sa.Column("value_date", sa.Date(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE disbursements DROP COLUMN value_date")
    op.execute("ALTER TABLE disbursements DROP COLUMN bank_order_id")
    op.execute("ALTER TABLE documents DROP COLUMN payee_account")
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.drop_index("ix_payouts_status")
        batch_op.drop_index("ix_payouts_application_no")
    op.drop_table("payouts")
