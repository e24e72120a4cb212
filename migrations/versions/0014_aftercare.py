"""aftercare: loan_risk_flags (raised by follow-up calls' answers) and post_loan_reviews

Revision ID: 0014_aftercare
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_aftercare"
down_revision: str | None = "0014_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_risk_flags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source_task_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("raised_by", sa.String(length=64), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.Column("cleared_by_review", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("loan_risk_flags") as batch_op:
        batch_op.create_index("ix_loan_risk_flags_application_no", ["application_no"])
        batch_op.create_index("ix_loan_risk_flags_open", ["application_no", "cleared_at"])
    op.create_table(
        "post_loan_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("period_key", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.Column("bureau_status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_reason", sa.String(length=500), nullable=True),
        sa.Column("effect", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_no", "period_key"),
    )
    with op.batch_alter_table("post_loan_reviews") as batch_op:
        batch_op.create_index("ix_post_loan_reviews_application_no", ["application_no"])


def downgrade() -> None:
    with op.batch_alter_table("post_loan_reviews") as batch_op:
        batch_op.drop_index("ix_post_loan_reviews_application_no")
    op.drop_table("post_loan_reviews")
    with op.batch_alter_table("loan_risk_flags") as batch_op:
        batch_op.drop_index("ix_loan_risk_flags_open")
        batch_op.drop_index("ix_loan_risk_flags_application_no")
    op.drop_table("loan_risk_flags")
