"""versioned assessment rules (scorecards, carrying the intake checks' thresholds) and the
borrower's years of employment

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scorecards",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("scorecards") as batch_op:
        batch_op.create_index("ix_scorecards_effective_from", ["effective_from"])
    for table in ("borrowers", "borrower_versions"):
        op.add_column(table, sa.Column("employment_years", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 and PostgreSQL): a batch copy of
    # borrower_versions would drop a table the applications' foreign key points at.
    for table in ("borrower_versions", "borrowers"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN employment_years")
    with op.batch_alter_table("scorecards") as batch_op:
        batch_op.drop_index("ix_scorecards_effective_from")
    op.drop_table("scorecards")
