"""the funding pool: its row, reservations for payouts, and movements (manual ones maker-checker)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "funding_pools",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("account_no", sa.String(length=32), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("low_liquidity_threshold", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "funding_reservations",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("pool_code", sa.String(length=32), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reserved_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["pool_code"], ["funding_pools.code"]),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("funding_reservations") as batch_op:
        batch_op.create_index("ix_funding_reservations_application_no", ["application_no"])
        batch_op.create_index("ix_funding_reservations_status", ["status"])
    op.create_table(
        "funding_movements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("pool_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authorized_by", sa.String(length=64), nullable=True),
        sa.Column("authorized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["pool_code"], ["funding_pools.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("funding_movements") as batch_op:
        batch_op.create_index("ix_funding_movements_status", ["status"])
        batch_op.create_index("ix_funding_movements_application_no", ["application_no"])


def downgrade() -> None:
    with op.batch_alter_table("funding_movements") as batch_op:
        batch_op.drop_index("ix_funding_movements_application_no")
        batch_op.drop_index("ix_funding_movements_status")
    op.drop_table("funding_movements")
    with op.batch_alter_table("funding_reservations") as batch_op:
        batch_op.drop_index("ix_funding_reservations_status")
        batch_op.drop_index("ix_funding_reservations_application_no")
    op.drop_table("funding_reservations")
    op.drop_table("funding_pools")
