"""payment_refs: a bank reference claimed across all loans before any ledger books it

Revision ID: 0015_hardening
Revises: 0014_auth
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_hardening"
down_revision: str | None = "0015_pii"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_refs",
        sa.Column("external_ref", sa.String(length=100), primary_key=True),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_payment_refs_application_no", "payment_refs", ["application_no"])
    # The references already booked keep their loan.
    op.execute(
        "INSERT INTO payment_refs (external_ref, application_no, claimed_by, claimed_at) "
        "SELECT external_ref, application_no, recorded_by, created_at FROM payments"
    )


def downgrade() -> None:
    op.drop_index("ix_payment_refs_application_no", table_name="payment_refs")
    op.drop_table("payment_refs")
