"""a loan's penalty multiple (null: the loan policy's applies) and prepayment fee rate, from
its product version

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("loans", sa.Column("penalty_multiple", sa.BigInteger(), nullable=True))
    op.add_column(
        "loans",
        sa.Column("prepayment_fee_rate", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 and PostgreSQL).
    op.execute("ALTER TABLE loans DROP COLUMN prepayment_fee_rate")
    op.execute("ALTER TABLE loans DROP COLUMN penalty_multiple")
