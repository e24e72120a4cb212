"""assessments (the automatic checks, bureau answer and score of an application) and the blacklist

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("bureau_status", sa.String(length=16), nullable=False),
        sa.Column("bureau", sa.JSON(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("score", sa.JSON(), nullable=False),
        sa.Column("scorecard_version", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=2), nullable=False),
        sa.Column("recommendation", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_no", "seq"),
    )
    with op.batch_alter_table("assessments") as batch_op:
        batch_op.create_index("ix_assessments_application_no", ["application_no"])
    op.create_table(
        "blacklist_entries",
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_number"),
    )


def downgrade() -> None:
    op.drop_table("blacklist_entries")
    with op.batch_alter_table("assessments") as batch_op:
        batch_op.drop_index("ix_assessments_application_no")
    op.drop_table("assessments")
