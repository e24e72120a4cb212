"""documents and borrower versions: the dated versions of a borrower's data (each application keeps
the one it was submitted with), and uploaded documents (bytes in the document store, metadata in
``documents``)

Every existing borrower gets version 1 from its row as it stands (the row was updated in place
before this revision, so that is the best record there is), and every existing application is
pointed at it. Existing documents (contracts) keep their bytes in the row; their size is filled in.

Downgrading drops the versions and the uploaded documents' rows (their files stay in the store).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "borrower_versions",
        sa.Column("borrower_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("bank_card", sa.String(length=32), nullable=False),
        sa.Column("monthly_income", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["borrower_id"], ["borrowers.id"]),
        sa.PrimaryKeyConstraint("borrower_id", "version"),
    )
    op.execute(
        "INSERT INTO borrower_versions (borrower_id, version, name, phone, bank_card, "
        "monthly_income, recorded_at, recorded_by, reason) "
        "SELECT id, 1, name, phone, bank_card, monthly_income, created_at, 'system', "
        "'the borrower row at migration 0003' FROM borrowers"
    )
    with op.batch_alter_table("applications") as batch_op:
        batch_op.add_column(sa.Column("borrower_version", sa.Integer(), nullable=True))
    op.execute("UPDATE applications SET borrower_version = 1")
    with op.batch_alter_table("applications") as batch_op:
        batch_op.create_foreign_key(
            "fk_applications_borrower_version",
            "borrower_versions",
            ["borrower_id", "borrower_version"],
            ["borrower_id", "version"],
        )

    with op.batch_alter_table("documents") as batch_op:
        batch_op.alter_column("content", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("uploaded_by", sa.String(length=64), nullable=False, server_default="system")
        )
        batch_op.add_column(sa.Column("store_key", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column(
                "duplicate_of_borrower",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch_op.create_index("ix_documents_sha256", ["sha256"])
    op.execute("UPDATE documents SET size = length(content) WHERE content IS NOT NULL")


def downgrade() -> None:
    op.execute("DELETE FROM documents WHERE content IS NULL")
    with op.batch_alter_table("documents") as batch_op:
        batch_op.drop_index("ix_documents_sha256")
        batch_op.drop_column("duplicate_of_borrower")
        batch_op.drop_column("store_key")
        batch_op.drop_column("uploaded_by")
        batch_op.drop_column("size")
        batch_op.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("applications") as batch_op:
        batch_op.drop_constraint("fk_applications_borrower_version", type_="foreignkey")
        batch_op.drop_column("borrower_version")
    op.drop_table("borrower_versions")
