"""process layer: versioned loan policy, task context and escalation level, the offer's rate cap,
penalty accrual date on installments

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_policies",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("loan_policies") as batch_op:
        batch_op.create_index("ix_loan_policies_effective_from", ["effective_from"])
    with op.batch_alter_table("applications") as batch_op:
        batch_op.add_column(sa.Column("policy_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("loans") as batch_op:
        batch_op.add_column(sa.Column("rate_cap", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("installments") as batch_op:
        batch_op.add_column(sa.Column("penalty_accrued_through", sa.Date(), nullable=True))
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("context", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("excluded", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("policy_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("policy_version")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("excluded")
        batch_op.drop_column("context")
    with op.batch_alter_table("installments") as batch_op:
        batch_op.drop_column("penalty_accrued_through")
    with op.batch_alter_table("loans") as batch_op:
        batch_op.drop_column("rate_cap")
    with op.batch_alter_table("applications") as batch_op:
        batch_op.drop_column("policy_version")
    with op.batch_alter_table("loan_policies") as batch_op:
        batch_op.drop_index("ix_loan_policies_effective_from")
    op.drop_table("loan_policies")
