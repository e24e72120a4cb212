"""signing_codes (the borrower's one-time codes, hashed) and contract_signatures (the
signature's evidence, the signed PDF and the lender's seal)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signing_codes") as batch_op:
        batch_op.create_index("ix_signing_codes_document_id", ["document_id"])
        batch_op.create_index("ix_signing_codes_application_no", ["application_no"])
    op.create_table(
        "contract_signatures",
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("application_no", sa.String(length=32), nullable=False),
        sa.Column("signer_name", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("confirmed", sa.JSON(), nullable=False),
        sa.Column("code_id", sa.Uuid(), nullable=False),
        sa.Column("code_issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_document_id", sa.Uuid(), nullable=True),
        sa.Column("signed_sha256", sa.String(length=64), nullable=True),
        sa.Column("sealed_by", sa.String(length=64), nullable=True),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seal_refused_by", sa.String(length=64), nullable=True),
        sa.Column("seal_refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seal_refused_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("document_id"),
    )
    with op.batch_alter_table("contract_signatures") as batch_op:
        batch_op.create_index("ix_contract_signatures_application_no", ["application_no"])


def downgrade() -> None:
    with op.batch_alter_table("contract_signatures") as batch_op:
        batch_op.drop_index("ix_contract_signatures_application_no")
    op.drop_table("contract_signatures")
    with op.batch_alter_table("signing_codes") as batch_op:
        batch_op.drop_index("ix_signing_codes_application_no")
        batch_op.drop_index("ix_signing_codes_document_id")
    op.drop_table("signing_codes")
