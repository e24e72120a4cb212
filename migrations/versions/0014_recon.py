"""the daily reconciliation of the bank's ledger with the records: its runs and differences

Revision ID: 0014_recon
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_recon"
down_revision: str | None = "0014_collections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("workflow_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bank_movements", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("in_grace", sa.Integer(), nullable=False),
        sa.Column("differences_found", sa.Integer(), nullable=False),
        sa.Column("differences_new", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("business_date"),
    )
    op.create_table(
        "reconciliation_differences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=True),
        sa.Column("bank_amount", sa.BigInteger(), nullable=True),
        sa.Column("record_amount", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.String(), nullable=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("reconciliation_differences") as batch_op:
        batch_op.create_index("ix_reconciliation_differences_business_date", ["business_date"])
        batch_op.create_index("ix_reconciliation_differences_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_differences") as batch_op:
        batch_op.drop_index("ix_reconciliation_differences_status")
        batch_op.drop_index("ix_reconciliation_differences_business_date")
    op.drop_table("reconciliation_differences")
    op.drop_table("reconciliation_runs")
