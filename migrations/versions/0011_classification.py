"""loan_classifications (five-category history), portfolio_snapshots, and the index of the
reports' overdue scan

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_classifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_no", "seq"),
    )
    with op.batch_alter_table("loan_classifications") as batch_op:
        batch_op.create_index("ix_loan_classifications_application_no", ["application_no"])
    op.create_table(
        "portfolio_snapshots",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("loan_count", sa.Integer(), nullable=False),
        sa.Column("outstanding_principal", sa.BigInteger(), nullable=False),
        sa.Column("overdue_principal", sa.BigInteger(), nullable=False),
        sa.Column("par30", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("as_of"),
    )
    with op.batch_alter_table("installments") as batch_op:
        batch_op.create_index("ix_installments_status_due_date", ["status", "due_date"])


def downgrade() -> None:
    with op.batch_alter_table("installments") as batch_op:
        batch_op.drop_index("ix_installments_status_due_date")
    op.drop_table("portfolio_snapshots")
    with op.batch_alter_table("loan_classifications") as batch_op:
        batch_op.drop_index("ix_loan_classifications_application_no")
    op.drop_table("loan_classifications")
