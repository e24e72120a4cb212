"""borrowers' personal data encrypted at rest: the PII columns become text (ciphertext naming its
key id), blind index columns for the identity number (borrowers, blacklist), and every existing
row encrypted and indexed

Revision ID: 0015_pii
Revises: 0014_auth

The rows are encrypted with the install's PII keyring (``loanops.pii``, from the settings): run
the migration with the same ``LOANOPS_PII_*`` settings as the API and the worker. On SQLite the
columns' types change by copying each table (Alembic's batch mode) with foreign key enforcement
off for the copy (a table referenced by another cannot be dropped and recreated otherwise); it
is checked again (``PRAGMA foreign_key_check``) before the migration finishes.

The downgrade decrypts every value and restores the former column types.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_pii"
down_revision: str | None = "0015_perf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → column → its length before (VARCHAR(n)); nullable as it was.
_COLUMNS: dict[str, dict[str, tuple[int, bool]]] = {
    "borrowers": {
        "name": (64, False),
        "id_number": (18, False),
        "phone": (20, False),
        "bank_card": (32, False),
    },
    "borrower_versions": {"name": (64, False), "phone": (20, False), "bank_card": (32, False)},
    "documents": {"signer_name": (64, True), "payee_account": (32, True)},
    "disbursements": {"bank_card": (32, False)},
    "payouts": {"payee_account": (32, False), "payee_name": (128, False)},
    "contract_signatures": {"signer_name": (64, False)},
    "blacklist_entries": {"id_number": (18, False)},
}
_INDEXED = ("borrowers", "blacklist_entries")


def _foreign_keys(enabled: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # PRAGMA foreign_keys is ignored inside a transaction: end the one in progress first.
        dbapi = bind.connection.dbapi_connection
        assert dbapi is not None
        dbapi.commit()
        dbapi.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
        if enabled:
            problems = dbapi.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"foreign keys broken by the migration: {problems[:5]}")


def _retype(to_text: bool) -> None:
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column, (length, nullable) in columns.items():
                old: sa.types.TypeEngine[str] = sa.String(length=length)
                new: sa.types.TypeEngine[str] = sa.Text()
                batch.alter_column(
                    column,
                    existing_type=old if to_text else new,
                    type_=new if to_text else old,
                    existing_nullable=nullable,
                )


def upgrade() -> None:
    from loanops.pii import pii_keyring, reencrypt_rows, reindex_rows

    _foreign_keys(False)
    _retype(True)
    for table in _INDEXED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("id_number_index", sa.String(length=64), nullable=True))
            batch.create_index(f"ix_{table}_id_number_index", ["id_number_index"], unique=True)
    _foreign_keys(True)
    bind = op.get_bind()
    keyring = pii_keyring()
    reencrypt_rows(bind, keyring, commit=False)
    reindex_rows(bind, keyring)


def downgrade() -> None:
    from loanops.pii import PII_COLUMNS, pii_keyring

    bind = op.get_bind()
    keyring = pii_keyring()
    present = set(sa.inspect(bind).get_table_names())  # later migrations' tables are gone
    for table_name, (pk, columns) in PII_COLUMNS.items():
        if table_name not in present:
            continue
        rows = sa.table(table_name, *(sa.column(c) for c in {*pk, *columns}))
        for row in bind.execute(sa.select(rows)).mappings().all():
            values = {c: keyring.decrypt(row[c]) for c in columns if row[c] is not None}
            if not values:
                continue
            where = sa.and_(*(rows.c[k] == row[k] for k in pk))
            bind.execute(sa.update(rows).where(where).values(**values))
    _foreign_keys(False)
    for table in _INDEXED:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_id_number_index")
            batch.drop_column("id_number_index")
    _retype(False)
    _foreign_keys(True)
