"""collection_contacts (the collections log), loan_write_offs and write_off_recoveries

Revision ID: 0014_collections
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_collections"
down_revision: str | None = "0014_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collection_contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=128), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("promise_amount", sa.BigInteger(), nullable=True),
        sa.Column("promise_date", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=4000), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("collection_contacts") as batch_op:
        batch_op.create_index("ix_collection_contacts_application_no", ["application_no"])
    op.create_table(
        "loan_write_offs",
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("written_off_on", sa.Date(), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("interest", sa.BigInteger(), nullable=False),
        sa.Column("penalty", sa.BigInteger(), nullable=False),
        sa.Column("fees", sa.BigInteger(), nullable=False),
        sa.Column("recovered", sa.BigInteger(), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("written_off_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("application_no"),
    )
    op.create_table(
        "write_off_recoveries",
        sa.Column("external_ref", sa.String(length=100), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("recovered_total", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("external_ref"),
    )
    with op.batch_alter_table("write_off_recoveries") as batch_op:
        batch_op.create_index("ix_write_off_recoveries_application_no", ["application_no"])


def downgrade() -> None:
    with op.batch_alter_table("write_off_recoveries") as batch_op:
        batch_op.drop_index("ix_write_off_recoveries_application_no")
    op.drop_table("write_off_recoveries")
    op.drop_table("loan_write_offs")
    with op.batch_alter_table("collection_contacts") as batch_op:
        batch_op.drop_index("ix_collection_contacts_application_no")
    op.drop_table("collection_contacts")
